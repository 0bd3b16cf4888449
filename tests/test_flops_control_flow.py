"""The counter on control flow that depends on input values, and on the fallback's edge cases.

Why: a voice-activity model's ``If`` on a scalar sample rate was counted on a random ``sr``, the
branch not taken was never sized, and a graph whose only unresolved tensor is a graph output
crashed the onnxruntime fallback (exit 70). These run real inference sessions on small graphs
built with ``onnx.helper`` (``tests/control_flow_models.py``).
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from collector.cli import main
from collector.flops import count_model
from shared.errors import UsageError
from shared.input_values import parse_values
from tests.control_flow_models import (
    ELSE_MACS,
    THEN_MACS,
    if_on_sample_rate,
    only_output_unresolved,
)


@pytest.mark.parametrize("rank1", [False, True])
@pytest.mark.parametrize(
    ("sr", "macs", "taken", "truth"),
    [(16000, THEN_MACS, "then_branch", "true"), (8000, ELSE_MACS, "else_branch", "false")],
)
def test_the_branch_the_value_picks_is_counted_and_stated(
    rank1: bool, sr: int, macs: int, taken: str, truth: str
) -> None:
    report = count_model(if_on_sample_rate(sr_rank1=rank1), None, parse_values([f"sr={sr}"]))
    assert report.total.macs == macs
    (line,) = [a for a in report.assumptions if a.startswith("If 'If_0'")]
    assert f"condition is {truth} at sr={sr}" in line and f"counted {taken}" in line
    assert "not run" in line
    assert report.at_these_inputs
    assert report.input_values["sr"]["value"] == str(sr)
    assert all(n.name.startswith(f"If_0/{taken}/") for n in report.nodes if n.macs)


@pytest.mark.parametrize("rank1", [False, True])
def test_without_a_value_the_larger_branch_is_counted_with_both_sized(rank1: bool) -> None:
    report = count_model(if_on_sample_rate(sr_rank1=rank1))
    assert report.total.macs == max(THEN_MACS, ELSE_MACS) == THEN_MACS
    (line,) = [a for a in report.assumptions if a.startswith("If 'If_0'")]
    assert "condition not resolved" in line and "--input-value sr=VALUE" in line
    assert "counted then_branch, the larger branch" in line and "an assumption" in line
    # The else branch (Reshape to an outer-scope initializer) was sized: its FLOPs are listed.
    assert "else_branch: 262656 FLOPs" in line
    assert not report.at_these_inputs


def test_a_condition_from_constants_needs_no_value() -> None:
    """An If on Shape(x) == const resolves from x's shape alone, and says so."""
    model = if_on_sample_rate()
    graph = model.graph
    cond = [
        helper.make_node("Shape", ["x"], ["xs"], name="shape_x"),
        helper.make_node("ReduceProd", ["xs"], ["n"], name="n", keepdims=0),
        helper.make_node("Cast", ["n"], ["n64"], to=TensorProto.INT64, name="cast"),
        helper.make_node("Equal", ["n64", "sr16k"], ["is16k"], name="is_16k"),
    ]
    nodes = [n for n in graph.node if n.name != "is_16k"]
    del graph.node[:]
    graph.node.extend(cond + nodes)
    report = count_model(model)
    assert report.total.macs == ELSE_MACS  # 512 != 16000
    assert any("condition is false from constants" in a for a in report.assumptions)
    assert not report.at_these_inputs


def test_only_output_unresolved_counts() -> None:
    report = count_model(only_output_unresolved())
    assert report.total.flops == 12  # Relu over 2x6; NonZero has no formula-bearing work
    assert report.at_these_inputs
    assert any("onnxruntime run on seeded random inputs" in a for a in report.assumptions)


def test_only_output_unresolved_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nz.onnx"
    only_output_unresolved(path)
    assert main(["flops", str(path)]) == 0
    out = capsys.readouterr()
    assert "internal error" not in out.err and "holds at these inputs" in out.out


def test_a_missing_switch_is_named_when_the_fallback_needs_it() -> None:
    """An If whose output sizes a later MatMul needs the fallback: sr is refused, not made up."""
    model = if_on_sample_rate()
    graph = model.graph
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["a", "b"]))
    graph.node.append(helper.make_node("MatMul", ["y", "Wt"], ["z"], name="after_if"))
    with pytest.raises(UsageError, match="'sr'") as info:
        count_model(model)
    assert "--input-value sr=" in (info.value.hint or "")
    assert count_model(model, None, parse_values(["sr=8000"])).total.macs == ELSE_MACS + 256 * 256


def test_nested_if_inside_an_unresolved_branch_keeps_the_larger_rule() -> None:
    inner = if_on_sample_rate()
    outer_then = helper.make_graph(
        list(inner.graph.node), "outer_then", [], [helper.make_tensor_value_info("y", 1, None)]
    )
    outer_else = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["xe"])],
        "outer_else",
        [],
        [helper.make_tensor_value_info("xe", 1, None)],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["flag"], ["flag_b"], to=TensorProto.BOOL, name="cast"),
            helper.make_node(
                "If", ["flag_b"], ["out"], name="outer", then_branch=outer_then,
                else_branch=outer_else,
            ),
        ],
        "nested",
        [*inner.graph.input, helper.make_tensor_value_info("flag", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["a", "b"])],
        initializer=list(inner.graph.initializer),
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    report = count_model(model)
    assert report.total.macs == THEN_MACS
    assert any("If 'outer'" in a and "'flag'" in a for a in report.assumptions)
    assert any("If 'outer/then_branch/If_0'" in a for a in report.assumptions)
    both = count_model(model, None, parse_values(["flag=1", "sr=8000"]))
    assert both.total.macs == ELSE_MACS
    assert any("If 'outer/then_branch/If_0': condition is false" in a for a in both.assumptions)
