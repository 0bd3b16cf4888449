"""One pure builder per kernel family: a sample's parameters in, an ``onnx.ModelProto`` out.

Why: a predictor learns a board's cost of the kernels ORT runs, so each model is one kernel or
the small block ORT fuses into one (Conv+BN+Relu, the Erf Gelu, Transpose+MatMul). Inputs have
static shapes (``KernelSample.inputs``, the same the campaign loader reads), weights are seeded
float32 from the sample's id, opset 17 and IR version 8 so onnxruntime >= 1.17 loads them.
Output shapes come from onnx shape inference, so no builder repeats its shape arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, shape_inference

from collector.sweep import (
    families_context,
    families_dense,
    families_elementwise,
    families_extra,
    families_spatial,
)
from collector.sweep.record import KernelSample
from collector.sweep.space import make_sample
from collector.zoo._builder import OPSET, GraphBuilder

IR_VERSION = 8
Builder = Callable[[GraphBuilder, KernelSample], list[str]]

BUILDERS: dict[str, Builder] = {
    **families_spatial.BUILDERS,
    **families_dense.BUILDERS,
    **families_elementwise.BUILDERS,
    **families_extra.BUILDERS,
    **families_context.BUILDERS,
}


def build_model(sample: KernelSample) -> onnx.ModelProto:
    """The model of ``sample``, its parameters checked again (a hand-made sample too)."""
    checked = make_sample(sample.family, sample.params)
    b = GraphBuilder(np.random.default_rng(checked.weight_seed))
    outputs = BUILDERS[checked.family](b, checked)
    graph = helper.make_graph(
        b.nodes,
        checked.id,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in checked.inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=b.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=f"flopgap sweep kernel {checked.family} {json.dumps(dict(checked.params))}",
    )
    model.ir_version = IR_VERSION
    model.producer_name = "flopgap.sweep"
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    helper.set_model_props(
        model,
        {
            "flopgap.sweep.id": checked.id,
            "flopgap.sweep.family": checked.family,
            "flopgap.sweep.params": json.dumps(dict(checked.params), sort_keys=True),
        },
    )
    return model
