"""Parameter spaces of the memory-bound families: binary ops, activations, data movement.

Their cost follows the bytes they touch, so their bound is on tensor elements, not MACs. Each
space is a dict of ``space.Family`` fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collector.sweep.draw import log_int, pick
from collector.sweep.record import Dims, Params
from collector.sweep.record import as_int as _i

ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "Gelu", "HardSwish", "Softmax")
MOVEMENTS = ("Concat", "Split", "Reshape", "Transpose", "Resize")


def _nchw(p: Params) -> Dims:
    return (1, _i(p, "c"), _i(p, "size"), _i(p, "size"))


def _elements(p: Params) -> int:
    return _i(p, "c") * _i(p, "size") ** 2


def _draw_binary(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "op": pick(rng, ("Add", "Mul")),
        "broadcast": pick(rng, ("none", "channel", "scalar")),
        "c": log_int(rng, 8, 512, 8),
        "size": log_int(rng, 7, 224),
    }


def _binary_inputs(p: Params) -> dict[str, Dims]:
    return {"x": _nchw(p), "y": _nchw(p)} if p["broadcast"] == "none" else {"x": _nchw(p)}


def _draw_movement(rng: np.random.Generator) -> dict[str, int | str]:
    op = pick(rng, MOVEMENTS)
    params: dict[str, int | str] = {
        "op": op,
        "c": log_int(rng, 8, 512, 8),
        "size": log_int(rng, 7, 112),
    }
    if op == "Resize":
        params["mode"] = pick(rng, ("nearest", "linear"))
    return params


def _movement_inputs(p: Params) -> dict[str, Dims]:
    return {"x": _nchw(p), "y": _nchw(p)} if p["op"] == "Concat" else {"x": _nchw(p)}


def _movement_work(p: Params) -> int:
    """Output elements: twice the input for Concat, four times for a 2x Resize."""
    return _elements(p) * {"Concat": 2, "Resize": 4}.get(str(p["op"]), 1)


SPACES: list[dict[str, Any]] = [
    {
        "name": "binary",
        "description": "Add or Mul on NCHW, with a same-shape input, a per-channel or a scalar",
        "ranges": {
            "op": "Add, Mul",
            "broadcast": "none, channel, scalar",
            "c": "8..512",
            "size": "7..224",
        },
        "draw": _draw_binary,
        "check": lambda p: None,
        "inputs": _binary_inputs,
        "macs": lambda p: 0,
        "weights": lambda p: {"none": 0, "channel": _i(p, "c"), "scalar": 1}[str(p["broadcast"])],
        "work": _elements,
        "unit": "elements",
    },
    {
        "name": "activation",
        "description": "one activation on [1, rows, dim]; Gelu is the Erf pattern ORT fuses",
        "ranges": {"op": ", ".join(ACTIVATIONS), "rows": "1..4096", "dim": "8..4096"},
        "draw": lambda rng: {
            "op": pick(rng, ACTIVATIONS),
            "rows": log_int(rng, 1, 4096),
            "dim": log_int(rng, 8, 4096),
        },
        "check": lambda p: None,
        "inputs": lambda p: {"x": (1, _i(p, "rows"), _i(p, "dim"))},
        "macs": lambda p: 0,
        "weights": lambda p: 0,
        "work": lambda p: _i(p, "rows") * _i(p, "dim"),
        "unit": "elements",
    },
    {
        "name": "movement",
        "description": "Concat, Split (two halves), Reshape, Transpose (to NHWC) or 2x Resize",
        "ranges": {
            "op": ", ".join(MOVEMENTS),
            "c": "8..512",
            "size": "7..112",
            "mode": "nearest, linear (Resize)",
        },
        "draw": _draw_movement,
        "check": lambda p: None,
        "inputs": _movement_inputs,
        "macs": lambda p: 0,
        "weights": lambda p: 0,
        "work": _movement_work,
        "unit": "elements",
    },
]
