"""Parameter spaces of the families the first sweep (``sweep:all``) lacked.

Why: predicting classic whole models from that sweep showed kernels it never produced, whose
time was then guessed from other families: LRN (AlexNet, GoogLeNet), SkipLayerNormalization
(transformers), fully-connected layers whose weights stream from DRAM (AlexNet, VGG), Softmax
over a non-last axis (YOLOv8's DFL head), and depthwise and grouped Conv blocks (MobileNet,
ShuffleNet), which ``conv`` holds too few of to learn. Each space is a dict of ``space.Family``
fields.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from collector.sweep.draw import log_int, pick
from collector.sweep.record import Dims, Params
from collector.sweep.record import as_int as _i

FC_MIN_WEIGHTS = 4_000_000  # 16 MB: below it a weight is the gemm family's (cache) regime
FC_MAX_WEIGHTS = 32_000_000  # 128 MB: past this machine's 32 MB L3, still fits a 1 GB board
FC_MAX_MACS = 1e9  # at batch 1 the layer is memory-bound, so its MACs may pass 5e8
DEPTHWISE_ACTS = ("none", "relu", "relu6", "hardswish")
GROUPS = (2, 3, 4, 8, 16)
MIN_PER_GROUP = 4


def _nchw(c: int, size: int) -> Dims:
    return (1, c, size, size)


def same_out(size: int, stride: int) -> int:
    """Output side of an odd-k Conv with ``same`` padding k // 2: ceil(size / stride)."""
    return (size - 1) // stride + 1


def _draw_lrn(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "window": pick(rng, (3, 5)),
        "bias": pick(rng, (1, 2)),
        "c": log_int(rng, 16, 512, 8),
        "size": log_int(rng, 7, 112),
    }


def _draw_skip(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "batch": pick(rng, (1, 1, 1, 2, 4, 8, 16)),
        "seq": log_int(rng, 1, 4096),
        "dim": log_int(rng, 64, 4096),
        "bias": pick(rng, (0, 1)),
    }


def _skip_elements(p: Params) -> int:
    """batch x seq x dim: the elements of x, of the residual and of the output."""
    return _i(p, "batch") * _i(p, "seq") * _i(p, "dim")


def _skip_inputs(p: Params) -> dict[str, Dims]:
    dims = (_i(p, "batch"), _i(p, "seq"), _i(p, "dim"))
    return {"x": dims, "residual": dims}


def _draw_fc(rng: np.random.Generator) -> dict[str, int | str]:
    form = pick(rng, ("gemm", "gemm", "matmul"))
    return {
        "m": pick(rng, (1, 0)) or log_int(rng, 2, 64),  # half of them at batch 1
        "k": log_int(rng, 512, 25088),
        "n": log_int(rng, 256, 4096),
        "form": form,
        "trans_b": pick(rng, (0, 1)) if form == "gemm" else 0,
        "relu": pick(rng, (0, 1)),
    }


def _check_fc(p: Params) -> str | None:
    if p["form"] == "matmul" and _i(p, "trans_b"):
        return "a MatMul has no transB"
    if _i(p, "k") * _i(p, "n") < FC_MIN_WEIGHTS:
        return f"K x N under {FC_MIN_WEIGHTS} weight elements is the gemm family's regime"
    return None


def fc_macs(p: Params) -> int:
    """M x K x N (bias and Relu are per-element work, not MACs)."""
    return _i(p, "m") * _i(p, "k") * _i(p, "n")


def _draw_softmax(rng: np.random.Generator) -> dict[str, int | str]:
    rank = pick(rng, (3, 4))
    first = 0 if rank == 3 else 1  # a rank-4 input is [1, ...]: its batch axis is no softmax axis
    dims = {f"d{i}": log_int(rng, 1, 8400) for i in range(first, rank)}
    return {"rank": rank, "axis": pick(rng, (*range(first, rank - 1), -1)), "d0": 1, **dims}


def softmax_shape(p: Params) -> Dims:
    """[d0, d1, d2] or [d0 = 1, d1, d2, d3]."""
    return tuple(_i(p, f"d{i}") for i in range(_i(p, "rank")))


def _check_softmax(p: Params) -> str | None:
    rank, axis = _i(p, "rank"), _i(p, "axis")
    if rank not in (3, 4) or not -1 <= axis < rank:
        return f"axis {axis} of a rank-{rank} input"
    if softmax_shape(p)[axis] < 2:
        return "a softmax over one element is a constant 1"
    return None


def _draw_depthwise(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "k": pick(rng, (3, 5, 7)),
        "c": log_int(rng, 16, 1024, 8),
        "size": log_int(rng, 7, 224),
        "stride": pick(rng, (1, 1, 2)),
        "act": pick(rng, DEPTHWISE_ACTS),
    }


def depthwise_macs(p: Params) -> int:
    """c x k^2 x out^2: each output channel reads one input channel."""
    return _i(p, "c") * _i(p, "k") ** 2 * same_out(_i(p, "size"), _i(p, "stride")) ** 2


def _draw_grouped(rng: np.random.Generator) -> dict[str, int | str]:
    groups = pick(rng, GROUPS)
    multiple = math.lcm(8, groups)  # channels on multiples of 8 that the groups divide
    return {
        "k": pick(rng, (1, 3)),
        "groups": groups,
        "cin": log_int(rng, 24, 960, multiple),
        "cout": log_int(rng, 24, 960, multiple),
        "size": log_int(rng, 7, 112),
        "stride": pick(rng, (1, 1, 2)),
    }


def _check_grouped(p: Params) -> str | None:
    groups, cin, cout = _i(p, "groups"), _i(p, "cin"), _i(p, "cout")
    if cin % groups or cout % groups:
        return f"groups {groups} does not divide cin {cin} and cout {cout}"
    if min(cin, cout) // groups < MIN_PER_GROUP:
        return f"fewer than {MIN_PER_GROUP} channels per group"
    return None


def grouped_macs(p: Params) -> int:
    """cout x (cin / groups) x k^2 x out^2."""
    out = same_out(_i(p, "size"), _i(p, "stride"))
    return _i(p, "cout") * (_i(p, "cin") // _i(p, "groups")) * _i(p, "k") ** 2 * out * out


def _grouped_weights(p: Params) -> int:
    """Conv weights plus the four BatchNormalization vectors."""
    return _i(p, "cout") * (_i(p, "cin") // _i(p, "groups")) * _i(p, "k") ** 2 + 4 * _i(p, "cout")


SPACES: list[dict[str, Any]] = [
    {
        "name": "lrn",
        "description": "LRN across channels (alpha 1e-4, beta 0.75) on NCHW, as AlexNet has it",
        "ranges": {"window": "3, 5", "bias": "1, 2", "c": "16..512", "size": "7..112"},
        "draw": _draw_lrn,
        "check": lambda p: None,
        "inputs": lambda p: {"x": _nchw(_i(p, "c"), _i(p, "size"))},
        "macs": lambda p: 0,
        "weights": lambda p: 0,
        "work": lambda p: _i(p, "c") * _i(p, "size") ** 2,
        "unit": "elements",
    },
    {
        "name": "skip_layernorm",
        "description": "[bias] Add, residual Add, LayerNormalization: ORT's SkipLayerNormalization",
        "ranges": {
            "batch": "1, 2, 4, 8, 16",
            "seq": "1..4096 (batch x seq <= 4096)",
            "dim": "64..4096",
            "bias": "0, 1",
        },
        "draw": _draw_skip,
        "check": lambda p: None if _i(p, "batch") * _i(p, "seq") <= 4096 else "over 4096 rows",
        "inputs": _skip_inputs,
        "macs": lambda p: 0,
        "weights": lambda p: (2 + _i(p, "bias")) * _i(p, "dim"),
        "work": _skip_elements,
        "unit": "elements",
    },
    {
        "name": "fc_large",
        "description": "Gemm or MatMul+Add [+ Relu] whose 16..128 MB weight streams from DRAM",
        "ranges": {
            "m": "1..64 (half at 1)",
            "k": "512..25088",
            "n": "256..4096",
            "k x n": "4 M..32 M elements, made in the graph by ConstantOfShape",
            "form": "gemm, matmul",
            "trans_b": "0, 1 (gemm)",
            "relu": "0, 1",
        },
        "draw": _draw_fc,
        "check": _check_fc,
        "inputs": lambda p: {"a": (_i(p, "m"), _i(p, "k"))},
        "macs": fc_macs,
        "weights": lambda p: _i(p, "k") * _i(p, "n") + _i(p, "n"),  # as materialized, + bias
        "work": fc_macs,
        "unit": "MACs",
        "max_weights": FC_MAX_WEIGHTS,
        "work_bounds": (1e5, FC_MAX_MACS),
    },
    {
        "name": "softmax_axis",
        "description": "Softmax over a non-last axis or the last, on rank 3 or 4 (YOLOv8's DFL)",
        "ranges": {
            "rank": "3, 4 ([d0, d1, d2] or [1, d1, d2, d3])",
            "d0..d3": "1..8400",
            "axis": "a non-last axis (not a rank-4 batch) or -1",
        },
        "draw": _draw_softmax,
        "check": _check_softmax,
        "inputs": lambda p: {"x": softmax_shape(p)},
        "macs": lambda p: 0,
        "weights": lambda p: 0,
        "work": lambda p: math.prod(softmax_shape(p)),
        "unit": "elements",
    },
    {
        "name": "depthwise",
        "description": "depthwise Conv (group = channels) + BatchNormalization + activation",
        "ranges": {
            "k": "3, 5, 7",
            "c": "16..1024",
            "size": "7..224",
            "stride": "1, 2",
            "act": ", ".join(DEPTHWISE_ACTS),
        },
        "draw": _draw_depthwise,
        "check": lambda p: None if _i(p, "k") % 2 else "an even k has no same padding",
        "inputs": lambda p: {"x": _nchw(_i(p, "c"), _i(p, "size"))},
        "macs": depthwise_macs,
        "weights": lambda p: _i(p, "c") * (_i(p, "k") ** 2 + 4),
        "work": depthwise_macs,
        "unit": "MACs",
    },
    {
        "name": "grouped",
        "description": "grouped Conv + BatchNormalization + Relu (ShuffleNet, ResNeXt)",
        "ranges": {
            "k": "1, 3",
            "groups": ", ".join(map(str, GROUPS)),
            "cin, cout": "24..960, multiples of 8 the groups divide",
            "size": "7..112",
            "stride": "1, 2",
        },
        "draw": _draw_grouped,
        "check": _check_grouped,
        "inputs": lambda p: {"x": _nchw(_i(p, "cin"), _i(p, "size"))},
        "macs": grouped_macs,
        "weights": _grouped_weights,
        "work": grouped_macs,
        "unit": "MACs",
    },
]
