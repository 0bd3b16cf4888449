"""Parameter spaces of the dense families: Gemm, MatMul (2-D and batched 3-D), attention, LayerNorm.

Gemm and MatMul draw M, K and N log-uniformly; a MatMul's right side is either a weight (a
projection, broadcast over the batch) or a second input (batched activations, as in attention).
Each space is a dict of ``space.Family`` fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collector.sweep.draw import log_int, pick
from collector.sweep.record import Dims, Params
from collector.sweep.record import as_int as _i


def _draw_gemm(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "m": log_int(rng, 1, 512),
        "k": log_int(rng, 16, 2048),
        "n": log_int(rng, 16, 2048),
        "trans_b": pick(rng, (0, 1)),
    }


def gemm_macs(p: Params) -> int:
    """M x K x N (the bias add is per-element work, not MACs)."""
    return _i(p, "m") * _i(p, "k") * _i(p, "n")


def _draw_matmul(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "batch": pick(rng, (0, 0, 1)) and log_int(rng, 2, 64),  # 0: a 2-D MatMul
        "m": log_int(rng, 1, 1024),
        "k": log_int(rng, 8, 2048),
        "n": log_int(rng, 8, 2048),
        "rhs": pick(rng, ("weight", "input")),
    }


def _lead(p: Params) -> Dims:
    return (_i(p, "batch"),) if _i(p, "batch") else ()


def _matmul_inputs(p: Params) -> dict[str, Dims]:
    inputs = {"a": (*_lead(p), _i(p, "m"), _i(p, "k"))}
    if p["rhs"] == "input":
        inputs["b"] = (*_lead(p), _i(p, "k"), _i(p, "n"))
    return inputs


def matmul_macs(p: Params) -> int:
    """max(batch, 1) x M x K x N."""
    return max(_i(p, "batch"), 1) * _i(p, "m") * _i(p, "k") * _i(p, "n")


def _draw_attention(rng: np.random.Generator) -> dict[str, int | str]:
    return {
        "heads": pick(rng, (1, 2, 4, 8, 12, 16)),
        "seq": log_int(rng, 8, 1024),
        "head_dim": pick(rng, (16, 32, 64, 128)),
    }


def attention_macs(p: Params) -> int:
    """2 x heads x seq^2 x head_dim: Q.K^T and P.V each cost heads x seq^2 x head_dim."""
    return 2 * _i(p, "heads") * _i(p, "seq") ** 2 * _i(p, "head_dim")


def _attention_inputs(p: Params) -> dict[str, Dims]:
    dims = (1, _i(p, "heads"), _i(p, "seq"), _i(p, "head_dim"))
    return {"q": dims, "k": dims, "v": dims}


def _tokens(p: Params) -> dict[str, Dims]:
    return {"x": (1, _i(p, "rows"), _i(p, "dim"))}


SPACES: list[dict[str, Any]] = [
    {
        "name": "gemm",
        "description": "Gemm A[M,K] x B + bias, B a weight, optionally stored transposed",
        "ranges": {"m": "1..512", "k, n": "16..2048", "trans_b": "0, 1"},
        "draw": _draw_gemm,
        "check": lambda p: None,
        "inputs": lambda p: {"a": (_i(p, "m"), _i(p, "k"))},
        "macs": gemm_macs,
        "weights": lambda p: _i(p, "k") * _i(p, "n") + _i(p, "n"),
        "work": gemm_macs,
        "unit": "MACs",
    },
    {
        "name": "matmul",
        "description": "MatMul 2-D or batched 3-D, right side a weight or a second input",
        "ranges": {
            "batch": "0 (2-D) or 2..64",
            "m": "1..1024",
            "k, n": "8..2048",
            "rhs": "weight, input",
        },
        "draw": _draw_matmul,
        "check": lambda p: None,
        "inputs": _matmul_inputs,
        "macs": matmul_macs,
        "weights": lambda p: _i(p, "k") * _i(p, "n") if p["rhs"] == "weight" else 0,
        "work": matmul_macs,
        "unit": "MACs",
    },
    {
        "name": "attention",
        "description": "softmax(Q.K^T / sqrt(d)).V over heads: Transpose, MatMul, Mul, Softmax",
        "ranges": {"heads": "1, 2, 4, 8, 12, 16", "seq": "8..1024", "head_dim": "16..128"},
        "draw": _draw_attention,
        "check": lambda p: None,
        "inputs": _attention_inputs,
        "macs": attention_macs,
        "weights": lambda p: 0,
        "work": attention_macs,
        "unit": "MACs",
    },
    {
        "name": "layernorm",
        "description": "LayerNormalization over the last axis of [1, rows, dim]",
        "ranges": {"rows": "1..4096", "dim": "16..4096"},
        "draw": lambda rng: {"rows": log_int(rng, 1, 4096), "dim": log_int(rng, 16, 4096)},
        "check": lambda p: None,
        "inputs": _tokens,
        "macs": lambda p: 0,
        "weights": lambda p: 2 * _i(p, "dim"),
        "work": lambda p: _i(p, "rows") * _i(p, "dim"),
        "unit": "elements",
    },
]
