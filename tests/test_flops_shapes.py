"""Shapes: symbolic dims from the user, the onnxruntime fallback, and never a guess."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from collector.flops import count_model
from shared.errors import ModelError, UsageError
from tests.test_flops_builders import init, ints, model, run, vi


def _dynamic_conv() -> onnx.ModelProto:
    """x [N, 3, 8, 8] -> Conv 4x3x3x3 -> [N, 4, 6, 6]."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    return model(
        [node], [vi("x", ["N", 3, 8, 8])], [vi("y", ["N", 4, 6, 6])], [init("w", [4, 3, 3, 3])]
    )


def test_symbolic_dim_resolved_from_input_shapes() -> None:
    m = _dynamic_conv()
    run(m)
    report = count_model(m, {"x": [2, 3, 8, 8]})
    assert report.total.macs == 2 * 4 * 36 * 27
    assert report.inputs == {"x": [2, 3, 8, 8]}


def test_symbolic_dim_without_input_shapes_names_node_and_dim() -> None:
    with pytest.raises(ModelError) as info:
        count_model(_dynamic_conv())
    err = info.value
    assert "'conv' (Conv)" in err.message and "dim 0 ('N')" in err.message
    assert err.hint is not None and "--input" in err.hint and "x=" in err.hint


def test_a_symbol_given_once_resolves_every_input_that_shares_it() -> None:
    node = helper.make_node("Add", ["a", "b"], ["y"])
    m = model([node], [vi("a", ["B", 4]), vi("b", ["B", 4])], [vi("y", ["B", 4])])
    report = count_model(m, {"a": [3, 4]})
    assert report.inputs == {"a": [3, 4], "b": [3, 4]}
    assert report.total.flops == 12


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        ({"nope": [1, 3, 8, 8]}, "no input named 'nope'"),
        ({"x": [1, 3, 8]}, "rank 4"),
        ({"x": [1, 5, 8, 8]}, "fixed at 3"),
        ({"x": [0, 3, 8, 8]}, "positive"),
    ],
)
def test_bad_input_shapes_are_usage_errors(shapes: dict[str, list[int]], match: str) -> None:
    with pytest.raises(UsageError, match=match) as info:
        count_model(_dynamic_conv(), shapes)
    assert info.value.hint


def test_conflicting_values_for_one_symbol() -> None:
    m = model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [vi("a", ["B"]), vi("b", ["B"])],
        [vi("y", ["B"])],
    )
    with pytest.raises(UsageError, match="'B'"):
        count_model(m, {"a": [2], "b": [3]})


def _channel_split_conv() -> onnx.ModelProto:
    """Slice half the channels via Shape -> Gather -> Div -> Unsqueeze, then Conv.

    ONNX data propagation stops at Div; the chain needs only static shapes and constants.
    """
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
        helper.make_node("Div", ["c", "two"], ["h"]),
        helper.make_node("Unsqueeze", ["h", "axis0"], ["end"]),
        helper.make_node("Slice", ["x", "zero", "end", "axis1"], ["xs"]),
        helper.make_node("Conv", ["xs", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    inits = [
        onnx.numpy_helper.from_array(np.array(1, np.int64), "one"),
        onnx.numpy_helper.from_array(np.array(2, np.int64), "two"),
        ints("axis0", [0]),
        ints("zero", [0]),
        ints("axis1", [1]),
        init("w", [2, 4, 3, 3]),
    ]
    return model(nodes, [vi("x", [1, 8, 6, 6])], [vi("y", [1, 2, 6, 6])], inits)


def test_shape_arithmetic_onnx_leaves_unknown_is_folded_exactly() -> None:
    m = _channel_split_conv()
    run(m)
    inferred = onnx.shape_inference.infer_shapes(m, data_prop=True)
    xs = next(v for v in inferred.graph.value_info if v.name == "xs")
    assert not xs.type.tensor_type.shape.dim[1].HasField("dim_value"), "ONNX now folds Div"
    report = count_model(m)
    assert report.total.macs == 2 * 36 * 4 * 9
    assert report.assumptions == []  # folded from shapes and constants: no model run needed


def _weight_dependent_conv() -> onnx.ModelProto:
    """Slice as many channels as twice the largest weight value (2 x 2.0 = 4), then Conv.

    The slice end depends on tensor values, not shapes: only running the model tells it.
    """
    nodes = [
        helper.make_node("ReduceMax", ["scale"], ["top"], keepdims=1),
        helper.make_node("Cast", ["top"], ["top_int"], to=TensorProto.INT64),
        helper.make_node("Mul", ["top_int", "two"], ["end"]),
        helper.make_node("Slice", ["x", "zero", "end", "axis1"], ["xs"]),
        helper.make_node("Conv", ["xs", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]
    inits = [
        init("scale", [100], value=2.0),
        ints("two", [2]),
        ints("zero", [0]),
        ints("axis1", [1]),
        init("w", [2, 4, 3, 3]),
    ]
    return model(nodes, [vi("x", [1, 8, 6, 6])], [vi("y", [1, 2, 6, 6])], inits)


def test_dim_only_onnxruntime_can_resolve_uses_the_fallback_and_says_so() -> None:
    m = _weight_dependent_conv()
    run(m)
    report = count_model(m)
    assert report.total.macs == 2 * 36 * 4 * 9
    assert any("onnxruntime run" in a for a in report.assumptions)


def test_no_fallback_when_onnx_resolves_everything() -> None:
    report = count_model(_dynamic_conv(), {"x": [1, 3, 8, 8]})
    assert report.assumptions == []


def test_unknown_dim_after_a_failed_fallback_is_an_error_naming_the_node() -> None:
    nodes = [
        helper.make_node("Frobnicate", ["x"], ["f"], domain="my.ops"),
        helper.make_node("Relu", ["f"], ["y"], name="relu"),
    ]
    m = model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], extra_opsets=[("my.ops", 1)])
    with pytest.raises(ModelError, match="'relu' \\(Relu\\): tensor 'f'") as info:
        count_model(m)
    assert info.value.hint is not None and "onnxruntime" in info.value.hint


def test_contradictory_matmul_names_the_node() -> None:
    node = helper.make_node("MatMul", ["a", "b"], ["y"], name="mm1")
    m = model([node], [vi("a", [2, 3]), vi("b", [4, 5])], [vi("y", [2, 5])])
    with pytest.raises(ModelError, match="mm1") as info:
        count_model(m)
    assert "contradictory" in info.value.message


@pytest.mark.parametrize("build", [_channel_split_conv, _weight_dependent_conv])
def test_input_model_is_not_modified(build: Callable[[], onnx.ModelProto]) -> None:
    m = build()
    before = m.SerializeToString()
    count_model(m)
    assert m.SerializeToString() == before
    assert [o.name for o in m.graph.output] == ["y"]
