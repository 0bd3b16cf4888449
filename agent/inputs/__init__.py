"""Concrete input shapes and synthetic input data for the model under test: the one import point.

Why: a benchmark must feed every input of an arbitrary ONNX model without the user writing code,
and the feeds must exist before the first timestamp, so that nothing is allocated or converted
inside a timed inference. The work is split by job, and this module re-exports each public name
so that callers keep importing from ``agent.inputs``:

- ``shared.input_specs``: parse ``--input NAME=DIMS`` flags into shapes.
- ``agent.inputs.shapes``: resolve every model input's dynamic dimensions against those flags.
- ``agent.inputs.data``: seeded, small, finite host data, one fill rule per kind of element type.
- ``agent.inputs.dtypes``: the supported element types, their ONNX codes (the agent never imports
  onnx), and whether a model needs OrtValues.
- ``agent.inputs.values``: given values (``--input-value``, ``--input-file``, a job's
  ``input_values``) checked against the session's inputs, and advice when control flow fails.
- ``agent.inputs.feeds``: build all feeds of one model, as numpy arrays or OrtValues.
"""

from __future__ import annotations

from agent.inputs.data import Fill
from agent.inputs.dtypes import (
    BFLOAT16,
    FLOAT8E4M3FN,
    FLOAT8E4M3FNUZ,
    FLOAT8E5M2,
    FLOAT8E5M2FNUZ,
    FLOAT8E8M0,
    INT2,
    INT4,
    SUPPORTED_ELEMENT_TYPES,
    UINT2,
    UINT4,
    numpy_dtype,
    output_needs_ort_values,
)
from agent.inputs.feeds import Feed, Feeds, model_feeds, synthesize_inputs
from agent.inputs.shapes import NodeArgLike, resolve_shapes
from agent.inputs.values import inference_hint
from shared.input_specs import Shape, parse_input_spec, parse_input_specs

__all__ = [
    "BFLOAT16",
    "FLOAT8E4M3FN",
    "FLOAT8E4M3FNUZ",
    "FLOAT8E5M2",
    "FLOAT8E5M2FNUZ",
    "FLOAT8E8M0",
    "INT2",
    "INT4",
    "SUPPORTED_ELEMENT_TYPES",
    "UINT2",
    "UINT4",
    "Feed",
    "Feeds",
    "Fill",
    "NodeArgLike",
    "Shape",
    "inference_hint",
    "model_feeds",
    "numpy_dtype",
    "output_needs_ort_values",
    "parse_input_spec",
    "parse_input_specs",
    "resolve_shapes",
    "synthesize_inputs",
]
