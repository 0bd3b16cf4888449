"""The built-in zoo: every model is valid ONNX, runs in onnxruntime, and is reproducible per seed.

No timing assertions: latency depends on the host. The size checks only guard against a model
silently growing out of the "a few milliseconds" budget through a typo in its widths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from agent.inputs import resolve_shapes, synthesize_inputs
from collector.zoo import ZOO, build, write_zoo
from shared.errors import UsageError

NAMES = sorted(ZOO)


def test_zoo_has_the_four_models() -> None:
    assert NAMES == ["convnet", "dwsep", "mlp", "transformer"]
    assert all(entry.name == name and entry.description for name, entry in ZOO.items())


@pytest.mark.parametrize("name", NAMES)
def test_model_passes_the_full_checker(name: str) -> None:
    model = build(name)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    assert model.ir_version == onnx.helper.find_min_ir_version_for(model.opset_import)
    assert model.doc_string == ZOO[name].description
    assert {p.key: p.value for p in model.metadata_props} == {
        "flopgap.zoo": name,
        "flopgap.zoo.seed": "0",
    }
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert params < 5_000_000
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input)
    weights = [t for t in model.graph.initializer if t.data_type != onnx.TensorProto.INT64]
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in weights)


@pytest.mark.parametrize("name", NAMES)
def test_model_runs_with_synthesized_inputs(name: str) -> None:
    model = build(name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    inputs = session.get_inputs()
    shapes = resolve_shapes(inputs, {})  # fixed shapes: no --input needed
    feeds = synthesize_inputs(inputs, shapes)
    outputs = session.run(None, feeds.arrays)
    declared = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output]
    assert [list(out.shape) for out in outputs] == declared
    for out in outputs:
        assert out.dtype == np.float32
        assert np.isfinite(out).all()
        assert 0 < np.abs(out).max() < 1e4


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes(name: str) -> None:
    first = build(name, seed=3).SerializeToString()
    assert first == build(name, seed=3).SerializeToString()
    assert first != build(name, seed=4).SerializeToString()


def test_write_zoo_writes_every_model(tmp_path: Path) -> None:
    paths = write_zoo(tmp_path / "zoo", seed=1)
    assert sorted(paths) == NAMES
    for name, path in paths.items():
        assert path == tmp_path / "zoo" / f"{name}.onnx"
        assert path.read_bytes() == build(name, seed=1).SerializeToString()
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == [f"{n}.onnx" for n in NAMES]


def test_write_zoo_subset(tmp_path: Path) -> None:
    assert list(write_zoo(tmp_path, names=["mlp"])) == ["mlp"]
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.onnx"]


def test_unknown_name_lists_the_zoo(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="resnet") as err:
        build("resnet")
    assert all(name in err.value.message for name in NAMES)
    with pytest.raises(UsageError):
        write_zoo(tmp_path, names=["mlp", "resnet"])
    assert not list(tmp_path.iterdir())  # nothing written when one name is wrong


def test_negative_seed_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="seed"):
        build("mlp", seed=-1)
