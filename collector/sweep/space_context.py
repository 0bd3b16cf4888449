"""Parameter spaces of the families that measure kernels in the context whole models give them.

Why: predicting whole models from the ``predict`` sweep (docs/PREDICT.md) missed in three ways
that single small kernels cannot teach. VGG's convolutions (1e9..2e9 MACs) lie past the 5e8
bound, where a conv runs more efficiently than the base fitted below it. At 2 threads, small
kernels measured one per model cost more than the same kernels back-to-back in a whole model
(the pool is spinning there), and one kernel per model cannot tell the per-run cost from the
per-kernel one, so the correction learns neither: ``chain`` runs 4..48 kernels in a row. And
ShuffleNet's channel shuffle, ``Sum`` and the Flatten/Squeeze of classifier heads had too few
samples or none: ``shuffle`` measures that data movement. Exporters also write elementwise ops
the ``binary`` and ``activation`` families lack (PaddlePaddle's hard-swish is Add, Clip and Div;
a BatchNormalization after an Add stays unfolded): ``elementwise`` measures them. Each space is
a dict of ``space.Family`` fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collector.sweep.draw import log_int, pick
from collector.sweep.record import Dims, Params
from collector.sweep.record import as_int as _i

LARGE_MACS = (5e8, 3e9)  # past the conv families' 5e8, up to VGG's 1.85e9 layers and beyond
CHAIN_KINDS = ("pointwise", "conv3", "depthwise", "inverted", "eltwise")
CHAIN_MAX_MACS = 5e8
SHUFFLE_KINDS = ("channel_shuffle", "nhwc", "heads", "sum", "flatten", "squeeze")
ELEMENTWISE_BINARY = ("Div", "Sub", "Max", "Min", "Pow")
ELEMENTWISE_UNARY = ("Clip", "Exp", "Abs", "Neg", "Erf", "HardSigmoid", "LeakyRelu",
                     "BatchNormalization")  # fmt: skip


def _nchw(c: int, size: int) -> Dims:
    return (1, c, size, size)


def _draw_large(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "k": pick(rng, (1, 3, 3, 3, 5)),
        "cin": log_int(rng, 32, 512, 8),
        "cout": log_int(rng, 32, 512, 8),
        "groups": 1,
        "size": log_int(rng, 14, 224),
        "stride": 1,
        "dilation": 1,
        "pad": "same",
    }


def large_macs(p: Params) -> int:
    """cout x cin x k^2 x size^2 (same padding, stride 1)."""
    return _i(p, "cout") * _i(p, "cin") * _i(p, "k") ** 2 * _i(p, "size") ** 2


def _draw_chain(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "kind": pick(rng, CHAIN_KINDS),
        "c": log_int(rng, 8, 256, 8),
        "size": log_int(rng, 7, 56),
        "length": log_int(rng, 4, 48),
    }


def chain_block_macs(p: Params) -> int:
    """MACs of one block: c^2 (1x1), 9 c^2 (3x3), 9 c (depthwise 3x3), the inverted block's
    two 1x1 and one depthwise, none for elementwise; times the map's size^2."""
    c, area = _i(p, "c"), _i(p, "size") ** 2
    per = {"pointwise": c * c, "conv3": 9 * c * c, "depthwise": 9 * c,
           "inverted": 2 * c * c + 9 * c, "eltwise": 0}[str(p["kind"])]  # fmt: skip
    return per * area


def chain_macs(p: Params) -> int:
    return _i(p, "length") * chain_block_macs(p)


def chain_weights(p: Params) -> int:
    c = _i(p, "c")
    per = {"pointwise": c * c + c, "conv3": 9 * c * c + c, "depthwise": 9 * c + c,
           "inverted": 2 * c * c + 9 * c + 3 * c, "eltwise": 2 * c}[str(p["kind"])]  # fmt: skip
    return _i(p, "length") * per


def _check_chain(p: Params) -> str | None:
    if chain_macs(p) > CHAIN_MAX_MACS:
        return f"{chain_macs(p)} MACs in the chain, over {CHAIN_MAX_MACS:g}"
    return None


def _draw_shuffle(rng: np.random.Generator) -> dict[str, int | str]:
    kind = pick(rng, SHUFFLE_KINDS)
    if kind == "heads":
        return {"kind": kind, "seq": log_int(rng, 8, 1024), "heads": pick(rng, (2, 4, 8, 12, 16)),
                "head_dim": pick(rng, (16, 32, 64, 128))}  # fmt: skip
    params: dict[str, int | str] = {"kind": kind, "c": log_int(rng, 16, 1024, 8),
                                    "size": log_int(rng, 1, 112)}  # fmt: skip
    if kind == "channel_shuffle":
        params["groups"] = pick(rng, (2, 3, 4, 8))
    if kind == "sum":
        params["n"] = pick(rng, (2, 2, 3, 4))
    return params


def shuffle_shape(p: Params) -> Dims:
    """[1, seq, heads, head_dim] for ``heads``, else NCHW."""
    if p["kind"] == "heads":
        return (1, _i(p, "seq"), _i(p, "heads"), _i(p, "head_dim"))
    return _nchw(_i(p, "c"), _i(p, "size"))


def _shuffle_inputs(p: Params) -> dict[str, Dims]:
    if p["kind"] == "sum":
        return {f"x{i}": shuffle_shape(p) for i in range(_i(p, "n"))}
    if p["kind"] == "squeeze":
        return {"x": (1, _i(p, "c"), 1, 1)}
    return {"x": shuffle_shape(p)}


def shuffle_elements(p: Params) -> int:
    """Elements moved: the output's (a Sum reads n of them)."""
    if p["kind"] == "squeeze":
        return _i(p, "c")
    return int(np.prod(shuffle_shape(p))) * (_i(p, "n") if p["kind"] == "sum" else 1)


def _check_shuffle(p: Params) -> str | None:
    if p["kind"] == "channel_shuffle" and _i(p, "c") % _i(p, "groups"):
        return f"groups {p['groups']} does not divide c {p['c']}"
    return None


def _draw_elementwise(rng: np.random.Generator) -> dict[str, int | str]:
    op = pick(rng, (*ELEMENTWISE_BINARY, *ELEMENTWISE_UNARY))
    params: dict[str, int | str] = {"op": op, "c": log_int(rng, 8, 512, 8),
                                    "size": log_int(rng, 7, 224)}  # fmt: skip
    if op in ELEMENTWISE_BINARY:
        # Pow's exponent is a scalar, as exporters write x ** 2
        params["broadcast"] = "scalar" if op == "Pow" else pick(rng, ("none", "channel", "scalar"))
    return params


def _elementwise_inputs(p: Params) -> dict[str, Dims]:
    x = _nchw(_i(p, "c"), _i(p, "size"))
    return {"x": x, "y": x} if p.get("broadcast") == "none" else {"x": x}


def _elementwise_weights(p: Params) -> int:
    if p["op"] == "BatchNormalization":
        return 4 * _i(p, "c")
    return {"none": 0, "channel": _i(p, "c"), "scalar": 1}.get(str(p.get("broadcast")), 0)


SPACES: list[dict[str, Any]] = [
    {
        "name": "conv_large",
        "description": "dense Conv + Relu past 5e8 MACs, as VGG's and a detector's stem layers",
        "ranges": {
            "k": "1, 3, 5",
            "cin": "32..512",
            "cout": "32..512",
            "size": "14..224",
            "stride": "1",
            "MACs": "5e8..3e9",
        },
        "draw": _draw_large,
        "check": lambda p: None,
        "inputs": lambda p: {"x": _nchw(_i(p, "cin"), _i(p, "size"))},
        "macs": large_macs,
        "weights": lambda p: _i(p, "cout") * _i(p, "cin") * _i(p, "k") ** 2 + _i(p, "cout"),
        "work": large_macs,
        "unit": "MACs",
        "work_bounds": LARGE_MACS,
    },
    {
        "name": "chain",
        "description": "4..48 same-shape blocks back to back: kernels as whole models run them",
        "ranges": {
            "kind": ", ".join(CHAIN_KINDS),
            "c": "8..256",
            "size": "7..56",
            "length": "4..48",
            "MACs": f"<= {CHAIN_MAX_MACS:g} in all",
        },
        "draw": _draw_chain,
        "check": _check_chain,
        "inputs": lambda p: {"x": _nchw(_i(p, "c"), _i(p, "size"))},
        "macs": chain_macs,
        "weights": chain_weights,
        "work": lambda p: _i(p, "length") * _i(p, "c") * _i(p, "size") ** 2,
        "unit": "elements",
    },
    {
        "name": "shuffle",
        "description": "channel shuffle, NHWC and attention-head Transposes, Sum, Flatten, Squeeze",
        "ranges": {
            "kind": ", ".join(SHUFFLE_KINDS),
            "c": "16..1024",
            "size": "1..112",
            "groups": "2, 3, 4, 8 (channel_shuffle)",
            "n": "2..4 (sum)",
            "seq, heads, head_dim": "8..1024, 2..16, 16..128 (heads)",
        },
        "draw": _draw_shuffle,
        "check": _check_shuffle,
        "inputs": _shuffle_inputs,
        "macs": lambda p: 0,
        "weights": lambda p: 0,
        "work": shuffle_elements,
        "unit": "elements",
        "work_bounds": (1e2, 1.6e7),
    },
    {
        "name": "elementwise",
        "description": "the elementwise ops exporters write beyond Add/Mul and the activations",
        "ranges": {
            "op": ", ".join((*ELEMENTWISE_BINARY, *ELEMENTWISE_UNARY)),
            "broadcast": "none, channel, scalar (binary ops; Pow: scalar)",
            "c": "8..512",
            "size": "7..224",
        },
        "draw": _draw_elementwise,
        "check": lambda p: None,
        "inputs": _elementwise_inputs,
        "macs": lambda p: 0,
        "weights": _elementwise_weights,
        "work": lambda p: _i(p, "c") * _i(p, "size") ** 2,
        "unit": "elements",
    },
]
