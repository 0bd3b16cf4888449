"""Theoretical cost of ONNX models: MACs, FLOPs, params, bytes and arithmetic intensity.

The convention is ``docs/FLOPS.md`` (see ``CONVENTION``); ``count_model`` is the entry point.
Importing the package loads neither onnx nor onnxruntime: the export and the server read
``CONVENTION`` from here, and onnx is imported when a model is first counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from collector.flops.registry import DATA_MOVEMENT, FORMULAS, KNOWN_OP_TYPES, op_key
from collector.flops.report import CONVENTION, CostReport, NodeCost, OpTypeCost, Totals
from shared.hashing import file_sha256 as model_sha256

if TYPE_CHECKING:
    from collector.flops.counter import ModelLike
    from shared.input_values import InputValue

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
    "load_counter",
    "model_sha256",
    "op_key",
]


def count_model(
    model: ModelLike,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, InputValue] | None = None,
) -> CostReport:
    """Count ``model`` (a path or ModelProto) at ``input_shapes`` ({input name: dims}) and
    ``input_values`` ({input name: ``shared.input_values.InputValue``}).

    See ``collector.flops.counter.count_model``, which this imports on first use (with onnx).
    """
    from collector.flops.counter import count_model as count

    return count(model, input_shapes, input_values)


def load_counter() -> None:
    """Import the counter (and onnx, about a second) now. `flopgap serve` calls it before it
    listens, so that cost is paid at start-up, not inside the batch of the first result, whose
    acks would otherwise wait for it."""
    import collector.flops.counter  # noqa: F401
