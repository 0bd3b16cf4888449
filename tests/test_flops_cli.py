"""The ``flopgap flops`` subcommand, run in-process through ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import onnx
import pytest
from onnx import helper

from collector.flops import cli
from shared.errors import ModelError, UsageError
from tests.test_flops_builders import init, model, vi


@pytest.fixture
def conv_model(tmp_path: Path) -> Path:
    """x [N, 3, 8, 8] -> Conv -> Relu, saved to disk."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    m = model(
        nodes, [vi("x", ["N", 3, 8, 8])], [vi("y", ["N", 4, 6, 6])], [init("w", [4, 3, 3, 3])]
    )
    path = tmp_path / "conv.onnx"
    onnx.save(m, path)
    return path


def parse(*argv: str) -> argparse.Namespace:
    """Parse ``flops ...`` through a parser set up the way collector/cli.py does."""
    parser = argparse.ArgumentParser(prog="flopgap")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["flops", *argv])


def test_parse_input_spec() -> None:
    assert cli.parse_input_specs(["images=1x3x640x640"]) == {"images": [1, 3, 640, 640]}
    assert cli.parse_input_specs(["a=b=2,3"]) == {"a=b": [2, 3]}
    for bad in ("images", "=1x3", "x=1xx3", "x=1x-3", "x=", "x=0x3"):
        with pytest.raises(UsageError) as info:
            cli.parse_input_specs([bad])
        assert info.value.hint
    with pytest.raises(UsageError, match="twice"):
        cli.parse_input_specs(["x=1", "x=2"])


def test_json_output(conv_model: Path) -> None:
    out = io.StringIO()
    args = parse(str(conv_model), "--input", "x=2x3x8x8", "--json")
    assert args.func(args, out) == 0
    doc = json.loads(out.getvalue())
    assert doc["total"]["macs"] == 2 * 4 * 36 * 27
    assert doc["inputs"] == {"x": [2, 3, 8, 8]} and "nodes" not in doc
    out = io.StringIO()
    cli.run(parse(str(conv_model), "--input", "x=1x3x8x8", "--json", "--per-node"), out)
    assert [n["name"] for n in json.loads(out.getvalue())["nodes"]] == ["conv", "relu"]


def test_table_output(conv_model: Path) -> None:
    out = io.StringIO()
    cli.run(parse(str(conv_model), "--input", "x=1x3x8x8", "--per-node"), out)
    text = out.getvalue()
    assert "x=1x3x8x8" in text and "convention: flopgap-flops/1" in text
    assert text.index("Conv ") < text.index("Relu ")  # sorted by FLOPs
    assert "uncounted (0 FLOPs, bytes counted): none" in text


def test_errors_propagate_for_the_main_cli(conv_model: Path) -> None:
    with pytest.raises(ModelError, match="'N'"):
        cli.run(parse(str(conv_model)), io.StringIO())
    with pytest.raises(UsageError):
        cli.run(parse(str(conv_model), "--input", "x=1x3"), io.StringIO())


def test_si_prefixes() -> None:
    assert cli.si(1_814_073_344) == "1.814 G"
    assert cli.si(512, "B") == "512 B"
    assert cli.si(None) == "-"
