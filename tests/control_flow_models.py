"""Models whose control flow depends on an input's value, built with ``onnx.helper``.

Why: a voice-activity model picks its STFT branch with an ``If`` on a scalar sample-rate input;
counting or timing it with a random ``sr`` measures a branch the user never runs. These small
graphs have the same structure with branches of known, different cost, so a test can check that
the branch taken is the one counted and timed, for each value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Then-branch (sr == 16000): x[1,512] @ W16[512,256] @ Wt[256,256]
THEN_MACS = 512 * 256 + 256 * 256
# Else-branch: Reshape(x, outer-scope shape [2,256]) @ W8[256,256], then ReduceSum over rows.
# The Reshape's target is an initializer of the *main* graph, so the branch's shapes can only
# be inferred with that outer-scope value, not just its type.
ELSE_MACS = 2 * 256 * 256
SR_THEN = 16000


def _init(name: str, shape: tuple[int, ...], seed: int) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.01, name)


def _finish(graph: onnx.GraphProto, path: Path | None) -> onnx.ModelProto:
    """The checked opset-17 model of ``graph``, saved to ``path`` when one is given."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model


def if_on_sample_rate(path: Path | None = None, sr_rank1: bool = False) -> onnx.ModelProto:
    """x float32 [1,512] and sr int64 scalar ([1] with ``sr_rank1``) -> y float32 [1,256].

    ``If(sr == 16000)`` picks a branch; the branches differ in MACs (``THEN_MACS`` and
    ``ELSE_MACS``) and both read main-graph initializers from the outer scope.
    """
    then_g = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W16"], ["t0"], name="then_mm0"),
            helper.make_node("MatMul", ["t0", "Wt"], ["then_y"], name="then_mm1"),
        ],
        "then_branch",
        [],
        [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, None)],
    )
    else_g = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "shape2x256"], ["e0"], name="else_reshape"),
            helper.make_node("MatMul", ["e0", "W8"], ["e1"], name="else_mm"),
            helper.make_node("ReduceSum", ["e1", "axis0"], ["else_y"], name="else_sum", keepdims=1),
        ],
        "else_branch",
        [],
        [helper.make_tensor_value_info("else_y", TensorProto.FLOAT, None)],
    )
    sr_shape: list[int] = [1] if sr_rank1 else []
    graph = helper.make_graph(
        [
            helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="is_16k"),
            helper.make_node(
                "If", ["is16k_scalar" if sr_rank1 else "is16k"], ["y"], name="If_0",
                then_branch=then_g, else_branch=else_g,
            ),
        ]
        if not sr_rank1
        else [
            helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="is_16k"),
            helper.make_node("Squeeze", ["is16k"], ["is16k_scalar"], name="squeeze_cond"),
            helper.make_node(
                "If", ["is16k_scalar"], ["y"], name="If_0",
                then_branch=then_g, else_branch=else_g,
            ),
        ],
        "if_on_sample_rate",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, sr_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
        initializer=[
            _init("W16", (512, 256), 1),
            _init("Wt", (256, 256), 2),
            _init("W8", (256, 256), 3),
            numpy_helper.from_array(np.array(SR_THEN, dtype=np.int64).reshape(sr_shape), "sr16k"),
            numpy_helper.from_array(np.array([2, 256], dtype=np.int64), "shape2x256"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        ],
    )  # fmt: skip
    return _finish(graph, path)


def only_output_unresolved(path: Path | None = None) -> onnx.ModelProto:
    """A graph whose one tensor ONNX inference cannot size is a graph output.

    ``NonZero``'s output length depends on the data, so ONNX infers ``[2, ?]`` at best while
    everything else is static. The onnxruntime fallback must ask for exactly that output
    (never for an empty list of outputs, which onnxruntime reads as "all of them").
    """
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("NonZero", ["r"], ["nz"], name="nonzero_out"),
        ],
        "only_output_unresolved",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("nz", TensorProto.INT64, [2, "nonzeros"])],
    )
    return _finish(graph, path)
