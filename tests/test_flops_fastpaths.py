"""The counter's fast paths give what the slow ones gave: wire bytes, shape-only formulas."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import onnx
import pytest
from onnx import helper

from collector.flops import wire
from collector.flops.graphview import SMALL_FLOAT, GraphView
from collector.flops.registry import FORMULAS, SHAPE_ONLY
from collector.flops.shapes import light_models
from collector.flops.tensors import TensorInfo, add_value_infos, dims_of, typed_value_info
from tests.test_flops_builders import encoder


class _Tripwire(Mapping[str, object]):
    """Attributes that fail the test when a formula reads them."""

    def __getitem__(self, key: str) -> object:
        raise AssertionError(f"read attribute {key}")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("iterated attributes")

    def __len__(self) -> int:
        raise AssertionError("asked for the number of attributes")


@pytest.mark.parametrize("key", sorted(SHAPE_ONLY))
def test_shape_only_formulas_never_read_attributes(key: str) -> None:
    shapes = [(2, 4, 4, 4)] * 9
    FORMULAS[key](shapes, shapes[:3], _Tripwire())


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 1 << 20])
def test_varint_and_split_name_round_trip(n: int) -> None:
    name = "t" * n
    vi = typed_value_info(name, onnx.TensorProto.FLOAT, (1, "N", 3))
    data = vi.SerializeToString()
    parts = wire.split_name(data)
    assert parts is not None
    assert parts[0] == name
    assert onnx.ValueInfoProto.FromString(parts[1]).type == vi.type


def test_split_name_declines_protos_without_a_leading_name() -> None:
    assert wire.split_name(onnx.ValueInfoProto(doc_string="d").SerializeToString()) is None
    assert wire.split_name(b"") is None
    assert wire.split_name(b"\n\x85") is None  # truncated length


def test_value_infos_read_as_bytes_match_field_reads() -> None:
    infos = [
        typed_value_info("a", onnx.TensorProto.FLOAT, (1, 3)),
        typed_value_info("b", onnx.TensorProto.FLOAT, (1, 3)),
        typed_value_info("c", onnx.TensorProto.INT64, ("N", "?", 0)),
        helper.make_tensor_sequence_value_info("s", onnx.TensorProto.FLOAT, None),
        helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, None),
        onnx.ValueInfoProto(),
    ]
    table: dict[str, TensorInfo] = {}
    add_value_infos(table, infos)
    for vi in infos:
        assert table[vi.name] == TensorInfo.make(*dims_of(vi.type))


def test_light_models_from_wire_pieces_parse_as_before() -> None:
    proto = encoder(1, 16, 2, 4, 32)
    for_check, for_infer = light_models(proto, {"x": [1, 4, 16]}, GraphView.read(proto.graph))
    check, infer = onnx.ModelProto.FromString(for_check), onnx.ModelProto.FromString(for_infer)
    big = [t for t in proto.graph.initializer if math.prod(t.dims) > SMALL_FLOAT]
    assert big
    inputs = {vi.name: vi for vi in check.graph.input}
    stubs = {t.name: t for t in infer.graph.initializer}
    for t in big:
        assert inputs[t.name] == typed_value_info(t.name, t.data_type, tuple(t.dims))
        assert stubs[t.name] == onnx.TensorProto(name=t.name, data_type=t.data_type, dims=t.dims)
    assert len(check.graph.node) == len(infer.graph.node) == len(proto.graph.node)
    onnx.checker.check_model(check)
