"""Bad input gives the right exception, with a message and a hint that say what to do."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import helper

from collector.flops import count_model, model_sha256
from shared.errors import ModelError, UsageError
from tests.test_flops_builders import init, model, single, vi


def _weighted() -> onnx.ModelProto:
    """A MatMul with a 64 KiB weight, so that a truncated file cuts through tensor data."""
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    return model([node], [vi("x", [1, 128])], [vi("y", [1, 128])], [init("w", [128, 128])])


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found") as info:
        count_model(tmp_path / "absent.onnx")
    assert info.value.hint
    with pytest.raises(UsageError, match="not a file"):
        count_model(tmp_path)


@pytest.mark.parametrize("content", [b"this is not an onnx file at all", b""])
def test_not_onnx_is_a_model_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        count_model(path)
    assert str(path) in info.value.message and info.value.hint


def test_truncated_file_is_a_model_error(tmp_path: Path) -> None:
    data = _weighted().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        count_model(path)


def test_checker_failure_is_a_model_error() -> None:
    m = single("Relu", [[2]], [2])
    m.graph.node[0].op_type = "Reluu"
    with pytest.raises(ModelError, match="checker") as info:
        count_model(m)
    assert "Reluu" in info.value.message or "Reluu" in str(info.value.__cause__)


def test_opset_newer_than_onnx_supports() -> None:
    m = single("Relu", [[2]], [2])
    m.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    with pytest.raises(ModelError, match="opset") as info:
        count_model(m)
    assert "upgrade onnx" in (info.value.hint or "")


def test_ir_version_newer_than_onnx_supports() -> None:
    m = single("Relu", [[2]], [2])
    m.ir_version = onnx.IR_VERSION + 1
    with pytest.raises(ModelError, match="IR version"):
        count_model(m)


def test_missing_and_short_external_data(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save(_weighted(), path, save_as_external_data=True, location="w.bin", size_threshold=0)
    assert count_model(path).total.macs == 128 * 128
    weights = tmp_path / "w.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelError, match="tensor 'w'") as info:
        count_model(path)
    assert "weight file" in (info.value.hint or "")
    weights.unlink()
    with pytest.raises(ModelError, match=r"w\.bin"):
        count_model(path)


def test_model_sha256_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "m.onnx"
    onnx.save(_weighted(), path)
    assert model_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_gzipped_models_are_read_as_they_come(tmp_path: Path) -> None:
    import gzip

    from onnx import TensorProto, helper

    from collector.flops import count_model

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "relu.onnx.gz"
    path.write_bytes(gzip.compress(model.SerializeToString()))
    assert count_model(path).total.flops == 6
