"""Parameter spaces of the spatial families: Conv, Conv+BN+activation, ConvTranspose, pooling.

Inputs are NCHW with batch 1 and square maps (edge inference); channels are multiples of 8, as
in the CNNs boards run. Each space is a dict of ``space.Family`` fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collector.sweep.draw import log_int, pick
from collector.sweep.record import Dims, Params
from collector.sweep.record import as_int as _i

KERNELS = (1, 3, 5, 7)
ACTIVATIONS = ("relu", "relu6", "hardswish", "silu")


def conv_pad(params: Params) -> int:
    """Per-side padding: ``same`` keeps the map size at stride 1, ``valid`` pads nothing."""
    return _i(params, "dilation") * (_i(params, "k") - 1) // 2 if params["pad"] == "same" else 0


def conv_out(params: Params) -> int:
    """Output map side: floor((size + 2 pad - dilation (k - 1) - 1) / stride) + 1."""
    reach = _i(params, "dilation") * (_i(params, "k") - 1) + 1
    return (_i(params, "size") + 2 * conv_pad(params) - reach) // _i(params, "stride") + 1


def _draw_conv(rng: np.random.Generator) -> dict[str, int | str]:
    k = pick(rng, KERNELS)
    mode = pick(rng, ("dense", "dense", "dense", "depthwise", "depthwise", "grouped"))
    cin = log_int(rng, 8, 512, 8)
    cout = cin if mode == "depthwise" else log_int(rng, 8, 512, 8)
    groups = {"dense": 1, "depthwise": cin, "grouped": pick(rng, (2, 4, 8, 16))}[mode]
    return {
        "k": k,
        "cin": cin,
        "cout": cout,
        "groups": groups,
        "size": log_int(rng, 7, 224),
        "stride": pick(rng, (1, 1, 2)),
        "dilation": pick(rng, (1, 1, 1, 2)) if k > 1 else 1,
        "pad": pick(rng, ("same", "same", "valid")),
    }


def _check_conv(p: Params) -> str | None:
    groups = _i(p, "groups")
    if _i(p, "cin") % groups or _i(p, "cout") % groups:
        return f"groups {groups} does not divide cin {p['cin']} and cout {p['cout']}"
    if conv_out(p) < 1:
        return "the kernel is larger than the padded map"
    return None


def _conv_inputs(p: Params) -> dict[str, Dims]:
    return {"x": (1, _i(p, "cin"), _i(p, "size"), _i(p, "size"))}


def conv_macs(p: Params) -> int:
    """cout x (cin / groups) x k^2 x out^2."""
    k, out = _i(p, "k"), conv_out(p)
    return _i(p, "cout") * (_i(p, "cin") // _i(p, "groups")) * k * k * out * out


def _conv_weights(p: Params) -> int:
    return _i(p, "cout") * (_i(p, "cin") // _i(p, "groups")) * _i(p, "k") ** 2 + _i(p, "cout")


def _draw_block(rng: np.random.Generator) -> dict[str, int | str]:
    return {**_draw_conv(rng), "act": pick(rng, ACTIVATIONS)}


def convt_geometry(p: Params) -> tuple[int, int, int]:
    """(pad, output_padding, out side) with pad (k - s + 1) // 2, so stride 2 doubles the map."""
    k, s, size = _i(p, "k"), _i(p, "stride"), _i(p, "size")
    pad = (k - s + 1) // 2
    extra = 2 * pad - (k - s) if s > 1 else 0
    return pad, extra, (size - 1) * s - 2 * pad + k + extra


def _draw_convt(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "k": pick(rng, (2, 3, 4)),
        "stride": pick(rng, (1, 2, 2)),
        "cin": log_int(rng, 8, 256, 8),
        "cout": log_int(rng, 8, 256, 8),
        "size": log_int(rng, 4, 112),
    }


def _check_convt(p: Params) -> str | None:
    _, extra, out = convt_geometry(p)
    return None if out >= 1 and 0 <= extra < _i(p, "stride") else "no valid output size"


def convt_macs(p: Params) -> int:
    """cin x cout x k^2 x size^2: each input pixel scatters a k x k patch to every output map."""
    return _i(p, "cin") * _i(p, "cout") * _i(p, "k") ** 2 * _i(p, "size") ** 2


def _draw_pool(rng: np.random.Generator) -> dict[str, int | str]:
    kind = pick(rng, ("max", "max", "avg", "global"))
    params: dict[str, int | str] = {
        "kind": kind,
        "c": log_int(rng, 8, 512, 8),
        "size": log_int(rng, 7, 112),
    }
    if kind != "global":
        params |= {"k": pick(rng, (2, 3)), "stride": pick(rng, (1, 2, 2))}
    return params


def pool_out(p: Params) -> int:
    """Output side without padding: floor((size - k) / stride) + 1 (1 for a global pool)."""
    if p["kind"] == "global":
        return 1
    return (_i(p, "size") - _i(p, "k")) // _i(p, "stride") + 1


def _nchw(p: Params) -> dict[str, Dims]:
    return {"x": (1, _i(p, "c"), _i(p, "size"), _i(p, "size"))}


def _no_macs(p: Params) -> int:
    return 0


_CONV_RANGES = {
    "k": "1, 3, 5, 7",
    "cin, cout": "8..512, multiples of 8, log-uniform",
    "groups": "1 (dense), cin (depthwise) or 2, 4, 8, 16",
    "size": "7..224 (square NCHW map, batch 1)",
    "stride": "1, 2",
    "dilation": "1, 2 (k > 1)",
    "pad": "same, valid",
}

SPACES: list[dict[str, Any]] = [
    {
        "name": "conv",
        "description": "Conv k x k with bias: dense, grouped or depthwise, strided, dilated",
        "ranges": _CONV_RANGES,
        "draw": _draw_conv,
        "check": _check_conv,
        "inputs": _conv_inputs,
        "macs": conv_macs,
        "weights": _conv_weights,
        "work": conv_macs,
        "unit": "MACs",
    },
    {
        "name": "conv_bn_act",
        "description": "Conv + BatchNormalization + activation, the block ORT fuses into one node",
        "ranges": {**_CONV_RANGES, "act": ", ".join(ACTIVATIONS)},
        "draw": _draw_block,
        "check": _check_conv,
        "inputs": _conv_inputs,
        "macs": conv_macs,
        "weights": lambda p: _conv_weights(p) + 3 * _i(p, "cout"),
        "work": conv_macs,
        "unit": "MACs",
    },
    {
        "name": "conv_transpose",
        "description": "ConvTranspose k x k (decoder upsampling), stride 2 doubles the map",
        "ranges": {"k": "2, 3, 4", "stride": "1, 2", "cin, cout": "8..256", "size": "4..112"},
        "draw": _draw_convt,
        "check": _check_convt,
        "inputs": lambda p: {"x": (1, _i(p, "cin"), _i(p, "size"), _i(p, "size"))},
        "macs": convt_macs,
        "weights": lambda p: _i(p, "cin") * _i(p, "cout") * _i(p, "k") ** 2 + _i(p, "cout"),
        "work": convt_macs,
        "unit": "MACs",
    },
    {
        "name": "pool",
        "description": "MaxPool, AveragePool (no padding) or GlobalAveragePool",
        "ranges": {
            "kind": "max, avg, global",
            "c": "8..512",
            "size": "7..112",
            "k": "2, 3",
            "stride": "1, 2",
        },
        "draw": _draw_pool,
        "check": lambda p: None if pool_out(p) >= 1 else "window larger than the map",
        "inputs": _nchw,
        "macs": _no_macs,
        "weights": _no_macs,
        "work": lambda p: _i(p, "c") * _i(p, "size") ** 2,
        "unit": "elements",
    },
]
