"""A small graph builder and the node groups the zoo models share (conv+BN+act, linear, norm).

Why: four hand-written graphs would repeat the same initializer and naming boilerplate; here each
model reads as its architecture. Weights are float32, drawn from the caller's seeded generator, and
He-scaled so activations stay near unit variance and outputs stay finite.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization needs 17; old enough for onnxruntime >= 1.17 on boards
Shape = Sequence[int]


class GraphBuilder:
    """Collects nodes and seeded initializers for one model, with unique readable names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: Counter[str] = Counter()
        self._scalars: dict[float, str] = {}

    def name(self, prefix: str) -> str:
        """A fresh tensor or node name: ``prefix_0``, ``prefix_1``, ..."""
        self._counts[prefix] += 1
        return f"{prefix}_{self._counts[prefix] - 1}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        """Add ``array`` as an initializer and return its name."""
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar(self, value: float) -> str:
        """A float32 rank-0 constant, shared by every node that uses the same value."""
        if value not in self._scalars:
            self._scalars[value] = self.const("scalar", np.array(value, np.float32))
        return self._scalars[value]

    def weight(self, prefix: str, shape: Shape, fan_in: int) -> str:
        """He-normal float32 weights: std sqrt(2 / fan_in) keeps ReLU outputs near unit scale."""
        values = self.rng.standard_normal(tuple(shape)) * np.sqrt(2.0 / fan_in)
        return self.const(prefix, values.astype(np.float32))

    def bias(self, prefix: str, size: int) -> str:
        """Small float32 biases, so an Add is real work for the kernel, not a zero."""
        return self.const(prefix, (0.01 * self.rng.standard_normal(size)).astype(np.float32))

    def op(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs: Any) -> str:
        """Append one single-output node and return its output (``out``, or a fresh name)."""
        node_name = self.name(op_type.lower())
        out = out or node_name
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=node_name, **attrs))
        return out

    def finish(
        self, name: str, doc: str, inputs: dict[str, Shape], outputs: dict[str, Shape]
    ) -> onnx.ModelProto:
        """The model: fixed-shape float32 inputs/outputs, opset 17, tagged ``flopgap.zoo``."""
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in inputs.items()],
            [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in outputs.items()],
            initializer=self.initializers,
        )
        opsets = [helper.make_opsetid("", OPSET)]
        model = helper.make_model(graph, opset_imports=opsets, doc_string=doc)
        model.ir_version = helper.find_min_ir_version_for(opsets)
        model.producer_name = "flopgap.zoo"
        helper.set_model_props(model, {"flopgap.zoo": name})
        return model


def relu6(b: GraphBuilder, x: str) -> str:
    """Clip(x, 0, 6), MobileNet's activation."""
    return b.op("Clip", [x, b.scalar(0.0), b.scalar(6.0)])


def batch_norm(b: GraphBuilder, x: str, channels: int) -> str:
    """Inference BatchNormalization with plausible trained statistics (ORT folds it into Conv)."""
    rng = b.rng
    params = (
        rng.uniform(0.8, 1.2, channels),  # scale
        0.1 * rng.standard_normal(channels),  # bias
        0.1 * rng.standard_normal(channels),  # running mean
        rng.uniform(0.5, 1.5, channels),  # running variance
    )
    names = [
        b.const(p, v.astype(np.float32))
        for p, v in zip(("gamma", "beta", "mean", "var"), params, strict=True)
    ]
    return b.op("BatchNormalization", [x, *names], epsilon=1e-5)


def conv_bn(
    b: GraphBuilder, x: str, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, group: int = 1
) -> str:
    """Bias-free Conv (same padding) followed by BatchNormalization, as exported by PyTorch."""
    w = b.weight("conv_w", (c_out, c_in // group, kernel, kernel), fan_in=c_in // group * kernel**2)
    pad = kernel // 2
    y = b.op(
        "Conv", [x, w], kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pad] * 4, group=group
    )
    return batch_norm(b, y, c_out)


def linear(b: GraphBuilder, x: str, d_in: int, d_out: int) -> str:
    """x @ W + b with MatMul and Add, which works for any leading batch dims."""
    y = b.op("MatMul", [x, b.weight("w", (d_in, d_out), fan_in=d_in)])
    return b.op("Add", [y, b.bias("b", d_out)])


def layer_norm(b: GraphBuilder, x: str, dim: int) -> str:
    """LayerNormalization over the last axis (opset 17), scale 1 and bias 0 as at initialisation."""
    scale = b.const("ln_scale", np.ones(dim, np.float32))
    shift = b.const("ln_bias", np.zeros(dim, np.float32))
    return b.op("LayerNormalization", [x, scale, shift], axis=-1, epsilon=1e-5)
