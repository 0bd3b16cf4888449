"""``flopgap flops --input-value/--input-file``: values set shapes, and bad ones are refused.

Why: a value that does not fit its input, a ``.npy`` of the wrong shape or dtype, or a value
for a name the model does not have must each be one line naming the input, what the model
expects and what was given, with exit 2 -- never an internal error. These go through the real
``flopgap`` entry point (``collector.cli.main``) in-process, on models saved to disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from collector.cli import main
from collector.flops import count_model
from shared.input_values import parse_values
from tests.control_flow_models import ELSE_MACS, if_on_sample_rate


@pytest.fixture
def sr_model(tmp_path: Path) -> Path:
    path = tmp_path / "sr.onnx"
    if_on_sample_rate(path)
    return path


@pytest.fixture
def dynamic_model(tmp_path: Path) -> Path:
    """x float [N, 4] -> Relu: a value's shape binds N."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "dyn.onnx"
    onnx.save(model, path)
    return path


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``flopgap flops ARGV``; assert exit 2 and one line of error; return that line."""
    assert main(["flops", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error" not in err
    return err


def test_a_value_that_does_not_fit_the_dtype(
    sr_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, str(sr_model), "--input-value", "sr=16000.5")
    assert "'sr'" in err and "int64" in err and "16000.5" in err and "whole number" in err


def test_a_value_that_does_not_fit_the_shape(
    sr_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, str(sr_model), "--input-value", "x=zeros[1,256]")
    assert "'x'" in err and "[1, 512]" in err and "[1, 256]" in err and "zeros[1,512]" in err


def test_a_npy_of_the_wrong_shape_or_dtype(
    sr_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((1, 256), dtype=np.float32))
    err = refused(capsys, str(sr_model), "--input-file", f"x={short}")
    assert "'x'" in err and "[1, 512]" in err and "[1, 256]" in err
    wide = tmp_path / "f64.npy"
    np.save(wide, np.zeros((1, 512), dtype=np.float64))
    err = refused(capsys, str(sr_model), "--input-file", f"x={wide}")
    assert "'x'" in err and "float32" in err and "float64" in err and "astype" in err


def test_a_value_for_a_name_that_is_not_an_input(
    sr_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, str(sr_model), "--input-value", "rate=16000")
    assert "'rate'" in err and "its inputs are: x, sr" in err


def test_a_value_and_a_shape_that_disagree(
    dynamic_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, str(dynamic_model), "--input", "x=2x4", "--input-value", "x=ones[3,4]")
    assert "'x'" in err and "[2, 4]" in err and "[3, 4]" in err


def test_a_scalar_given_dims_is_told_to_give_a_value(
    sr_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, str(sr_model), "--input", "sr=1")
    assert "scalar" in err and "needs no --input" in err and "--input-value sr=" in err
    err = refused(capsys, str(sr_model), "--input", "sr=")
    assert "needs no --input" in err and "--input-value sr=" in err


def test_a_value_sets_the_shape_and_shows_in_the_report(
    dynamic_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flops", str(dynamic_model), "--input-value", "x=ones[3,4]", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["inputs"] == {"x": [3, 4]} and doc["total"]["flops"] == 12
    assert doc["input_values"] == {"x": {"source": "fill", "shape": [3, 4], "value": "ones[3,4]"}}
    data = tmp_path / "x.npy"
    np.save(data, np.ones((5, 4), dtype=np.float32))
    assert main(["flops", str(dynamic_model), "--input-file", f"x={data}"]) == 0
    out = capsys.readouterr().out
    assert "inputs:     x=5x4   values: x=x.npy (float32 5x4)" in out


def test_the_text_report_says_at_these_inputs(
    sr_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flops", str(sr_model), "--input-value", "sr=8000"]) == 0
    out = capsys.readouterr().out
    assert "values: sr=8000" in out and "holds at these inputs" in out
    assert "condition is false at sr=8000: counted else_branch" in out
    report = count_model(sr_model, None, parse_values(["sr=8000"]))
    assert report.total.macs == ELSE_MACS
