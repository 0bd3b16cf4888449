"""Theoretical cost of ONNX models: MACs, FLOPs, params, bytes and arithmetic intensity.

The convention is ``docs/FLOPS.md`` (see ``CONVENTION``); ``count_model`` is the entry point.
"""

from __future__ import annotations

from collector.flops.counter import count_model
from collector.flops.registry import DATA_MOVEMENT, FORMULAS, KNOWN_OP_TYPES, op_key
from collector.flops.report import CONVENTION, CostReport, NodeCost, OpTypeCost, Totals
from shared.hashing import file_sha256 as model_sha256

__all__ = [
    "CONVENTION",
    "DATA_MOVEMENT",
    "FORMULAS",
    "KNOWN_OP_TYPES",
    "CostReport",
    "NodeCost",
    "OpTypeCost",
    "Totals",
    "count_model",
    "model_sha256",
    "op_key",
]
