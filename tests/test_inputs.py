"""Input shapes and synthetic data: every element type is fed to a real onnxruntime session.

Each dtype test builds a one-node model with onnx.helper, synthesizes its input, runs it and checks
that what came out is what went in, so a wrong packing or element code fails here, not on a board.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from agent.inputs import (
    SUPPORTED_ELEMENT_TYPES,
    Feeds,
    output_needs_ort_values,
    parse_input_spec,
    resolve_shapes,
    synthesize_inputs,
)
from shared.errors import ModelError, UsageError

SHAPE = (2, 3, 5)


@dataclass(frozen=True)
class FakeArg:
    """Stands in for onnxruntime.NodeArg where ORT cannot load such a model at all."""

    name: str
    type: str
    shape: Sequence[int | str | None]


def make_session(
    inputs: Sequence[onnx.ValueInfoProto],
    nodes: Sequence[onnx.NodeProto],
    outputs: Sequence[onnx.ValueInfoProto],
    opset: int = 17,
) -> ort.InferenceSession:
    """A CPU session for a graph built from the given pieces."""
    graph = helper.make_graph(list(nodes), "t", list(inputs), list(outputs))
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    try:
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's Fail has no stable import path across versions
        if "Unsupported model IR version" in str(exc):  # opset 25 (every type) is IR 13
            pytest.skip(f"onnxruntime {ort.__version__} cannot load opset {opset}: {exc}")
        raise


def identity_session(code: int, shape: Sequence[int | str | None] = SHAPE) -> ort.InferenceSession:
    """y = Identity(x) for element type ``code``."""
    return make_session(
        [helper.make_tensor_value_info("x", code, shape)],
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("y", code, shape)],
    )


def synthesize(session: ort.InferenceSession, seed: int = 0, **kwargs: bool) -> Feeds:
    """Feeds for a session whose inputs all have fixed shapes."""
    inputs = session.get_inputs()
    return synthesize_inputs(inputs, resolve_shapes(inputs, {}), seed, **kwargs)


# --- parse_input_spec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images=1x3x224x224", ("images", (1, 3, 224, 224))),
        ("input:0=2X8", ("input:0", (2, 8))),
        (" ids = 128 ", ("ids", (128,))),
        ("a=b=4x4", ("a=b", (4, 4))),
        ("x=1,3,8", ("x", (1, 3, 8))),
    ],
)
def test_parse_input_spec_accepts(text: str, expected: tuple[str, tuple[int, ...]]) -> None:
    assert parse_input_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "images", "=1x3", "images=", "x=1x", "x=1x-2", "x=1.5", "x=0x3", "x=1xax3", "x=１x2"],
)
def test_parse_input_spec_rejects(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_input_spec(text)
    assert err.value.hint and "--input" in err.value.hint


def test_an_input_given_twice_is_refused() -> None:
    from agent.inputs import parse_input_specs

    assert parse_input_specs(["a=1x2", "b=3"]) == {"a": (1, 2), "b": (3,)}
    with pytest.raises(UsageError, match="twice"):
        parse_input_specs(["x=1", "x=2"])


# --- resolve_shapes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamic_session() -> ort.InferenceSession:
    """Inputs x [batch, ?, 3] (one named and one unnamed dynamic dim) and y [2, 2] (fixed)."""
    return make_session(
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", None, 3]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2]),
        ],
        [helper.make_node("Identity", ["x"], ["x_out"]), helper.make_node("Neg", ["y"], ["y_out"])],
        [
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("y_out", TensorProto.FLOAT, None),
        ],
    )


def test_resolve_shapes_with_override(dynamic_session: ort.InferenceSession) -> None:
    shapes = resolve_shapes(dynamic_session.get_inputs(), {"x": (4, 7, 3)})
    assert shapes == {"x": (4, 7, 3), "y": (2, 2)}
    feeds = synthesize_inputs(dynamic_session.get_inputs(), shapes)
    x_out, y_out = dynamic_session.run(None, feeds.arrays)
    assert x_out.shape == (4, 7, 3)
    np.testing.assert_array_equal(y_out, -feeds.host["y"])


def test_resolve_shapes_unresolved_dynamic_dim(dynamic_session: ort.InferenceSession) -> None:
    with pytest.raises(UsageError) as err:
        resolve_shapes(dynamic_session.get_inputs(), {})
    message = err.value.message
    assert "'x'" in message
    assert "position 0 ('batch')" in message
    assert "position 1 (unnamed)" in message
    assert err.value.hint is not None and "--input x=?x?x3" in err.value.hint


def test_resolve_shapes_rank_mismatch(dynamic_session: ort.InferenceSession) -> None:
    with pytest.raises(UsageError, match=r"--input x: 2 dimensions given.*declares 3"):
        resolve_shapes(dynamic_session.get_inputs(), {"x": (4, 3)})


def test_resolve_shapes_fixed_dim_disagrees(dynamic_session: ort.InferenceSession) -> None:
    with pytest.raises(UsageError, match=r"--input y: .*position 1: model 2, given 5"):
        resolve_shapes(dynamic_session.get_inputs(), {"x": (1, 1, 3), "y": (2, 5)})
    with pytest.raises(UsageError, match=r"--input x: .*position 2: model 3, given 4"):
        resolve_shapes(dynamic_session.get_inputs(), {"x": (1, 1, 4)})


def test_resolve_shapes_unknown_name_lists_inputs(dynamic_session: ort.InferenceSession) -> None:
    with pytest.raises(UsageError) as err:
        resolve_shapes(dynamic_session.get_inputs(), {"x": (1, 1, 3), "images": (1, 3)})
    assert "'images'" in err.value.message
    assert "x [batch, ?, 3]" in err.value.message and "y [2, 2]" in err.value.message


def test_resolve_shapes_unknown_rank_takes_any_override() -> None:
    """ORT reports an input without a shape as [], so an override of any rank must be allowed."""
    session = make_session(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    assert resolve_shapes(session.get_inputs(), {"x": (2, 3)}) == {"x": (2, 3)}


# --- synthesize_inputs: every element type ------------------------------------------------------

# Types numpy holds natively: Identity model, run with numpy feeds and with OrtValue feeds.
NUMPY_TYPES = {
    "float": TensorProto.FLOAT,
    "double": TensorProto.DOUBLE,
    "float16": TensorProto.FLOAT16,
    "int8": TensorProto.INT8,
    "int16": TensorProto.INT16,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "uint8": TensorProto.UINT8,
    "uint16": TensorProto.UINT16,
    "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64,
    "bool": TensorProto.BOOL,
    "string": TensorProto.STRING,
}
# Floats numpy lacks that ORT's CPU Identity runs: checked through Identity, then Cast to float.
ORT_ONLY_FLOATS = {
    "bfloat16": TensorProto.BFLOAT16,
    "float8e4m3fn": TensorProto.FLOAT8E4M3FN,
    "float8e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
    "float8e5m2": TensorProto.FLOAT8E5M2,
    "float8e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ,
}
# Types ORT accepts as inputs but has no CPU Identity kernel for: checked through Cast only.
CAST_ONLY = {
    "float8e8m0": TensorProto.FLOAT8E8M0,
    "uint4": TensorProto.UINT4,
    "int4": TensorProto.INT4,
    "uint2": TensorProto.UINT2,
    "int2": TensorProto.INT2,
}


def skip_unless_fed(*codes: int) -> None:
    """Skip where this onnxruntime cannot make an OrtValue of these element types: 1.23, the
    newest on Python 3.10, lacks bfloat16, float8, int4 and int2 (agent.inputs says so then)."""
    for code in codes:
        item = np.uint16 if code == TensorProto.BFLOAT16 else np.uint8  # its bytes per element
        try:
            ort.OrtValue.ortvalue_from_numpy_with_onnx_type(np.zeros(2, item), code)
        except RuntimeError as exc:
            pytest.skip(f"onnxruntime {ort.__version__} cannot feed ONNX type {code}: {exc}")


def test_element_codes_match_onnx() -> None:
    """agent.inputs spells out ONNX codes because the agent cannot import onnx; keep them right."""
    import agent.inputs as inputs

    for name in {*ORT_ONLY_FLOATS, *CAST_ONLY}:
        assert getattr(inputs, name.upper()) == getattr(TensorProto, name.upper()), name


def test_every_supported_type_is_tested_here() -> None:
    assert set(SUPPORTED_ELEMENT_TYPES) == {*NUMPY_TYPES, *ORT_ONLY_FLOATS, *CAST_ONLY}


@pytest.mark.parametrize("name", sorted(NUMPY_TYPES))
def test_numpy_types_round_trip(name: str) -> None:
    session = identity_session(NUMPY_TYPES[name])
    feeds = synthesize(session)
    assert not feeds.needs_ort_values
    sent = feeds.arrays["x"]
    assert isinstance(sent, np.ndarray) and sent.shape == SHAPE
    (out,) = session.run(None, feeds.arrays)
    assert out.shape == SHAPE and out.dtype == sent.dtype
    np.testing.assert_array_equal(out, sent)
    if name != "string":
        assert np.isfinite(sent.astype(np.float64)).all()
        assert sent.astype(np.float64).min() >= (-10 if "float" in name or name == "double" else 0)


@pytest.mark.parametrize("name", sorted(set(NUMPY_TYPES) - {"string"}))
def test_numpy_types_as_ort_values(name: str) -> None:
    session = identity_session(NUMPY_TYPES[name])
    feeds = synthesize(session, as_ort_values=True)
    assert feeds.needs_ort_values
    (out,) = session.run_with_ort_values(None, feeds.arrays)
    np.testing.assert_array_equal(out.numpy(), feeds.host["x"])


def as_float_session(code: int, with_identity: bool) -> ort.InferenceSession:
    """f = Cast(x, float), after y = Identity(x) if ``with_identity``; opset 25 has every type."""
    nodes = [helper.make_node("Cast", ["y" if with_identity else "x"], ["f"], to=TensorProto.FLOAT)]
    outputs = [helper.make_tensor_value_info("f", TensorProto.FLOAT, SHAPE)]
    if with_identity:
        nodes.insert(0, helper.make_node("Identity", ["x"], ["y"]))
        outputs.insert(0, helper.make_tensor_value_info("y", code, SHAPE))
    return make_session([helper.make_tensor_value_info("x", code, SHAPE)], nodes, outputs, 25)


def unpack(host: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Decode a packed sub-byte buffer (low bits first) independently of agent.inputs."""
    count = int(np.prod(host.shape))
    codes = [(int(host.reshape(-1)[i * bits // 8]) >> (i * bits % 8)) & ((1 << bits) - 1)
             for i in range(count)]  # fmt: skip
    values = [c - (1 << bits) if signed and c >= 1 << (bits - 1) else c for c in codes]
    return np.array(values, dtype=np.float32).reshape(host.shape)


def expected_floats(name: str, host: np.ndarray) -> np.ndarray:
    """What Cast(x, float) must return for the host buffer behind input x."""
    if name in {"uint4", "int4", "uint2", "int2"}:
        return unpack(host, int(name[-1]), signed=name.startswith("int"))
    dtype = helper.tensor_dtype_to_np_dtype({**ORT_ONLY_FLOATS, **CAST_ONLY}[name])
    return host.view(dtype).astype(np.float32)


@pytest.mark.parametrize("name", sorted({*ORT_ONLY_FLOATS, *CAST_ONLY}))
def test_types_without_numpy_dtype(name: str) -> None:
    code = {**ORT_ONLY_FLOATS, **CAST_ONLY}[name]
    skip_unless_fed(code)
    session = as_float_session(code, with_identity=name in ORT_ONLY_FLOATS)
    assert session.get_inputs()[0].type == f"tensor({name})"
    feeds = synthesize(session)
    assert feeds.needs_ort_values
    assert output_needs_ort_values(session.get_outputs()) == (name in ORT_ONLY_FLOATS)
    sent = feeds.arrays["x"]
    assert isinstance(sent, ort.OrtValue)
    assert sent.data_type() == f"tensor({name})" and tuple(sent.shape()) == SHAPE
    assert sent.data_ptr() == feeds.host["x"].ctypes.data  # borrowed, not copied
    outs = session.run_with_ort_values(None, feeds.arrays)
    if name in ORT_ONLY_FLOATS:
        assert outs[0].data_type() == f"tensor({name})" and tuple(outs[0].shape()) == SHAPE
    as_float = outs[-1].numpy()
    assert np.isfinite(as_float).all()
    np.testing.assert_array_equal(as_float, expected_floats(name, feeds.host["x"]))
    assert len(np.unique(as_float)) > 1


def test_small_float_types_look_standard_normal() -> None:
    skip_unless_fed(*(ORT_ONLY_FLOATS[n] for n in ("bfloat16", "float8e4m3fn", "float8e5m2")))
    for name in ("bfloat16", "float8e4m3fn", "float8e5m2"):
        session = as_float_session(ORT_ONLY_FLOATS[name], with_identity=True)
        big = synthesize_inputs(session.get_inputs(), {"x": (4000,)})
        values = expected_floats(name, big.host["x"])
        assert abs(values.mean()) < 0.1 and 0.8 < values.std() < 1.2, name


def test_nbytes_counts_packed_and_string_data() -> None:
    skip_unless_fed(TensorProto.INT4, TensorProto.UINT2)
    assert synthesize(identity_session(TensorProto.FLOAT)).nbytes == 4 * 30
    assert synthesize(as_float_session(TensorProto.INT4, with_identity=False)).nbytes == 15
    assert synthesize(as_float_session(TensorProto.UINT2, with_identity=False)).nbytes == 8
    feeds = synthesize(identity_session(TensorProto.STRING))
    assert feeds.nbytes == sum(len(word) for word in feeds.host["x"].reshape(-1))


def test_scalar_input() -> None:
    session = identity_session(TensorProto.INT64, shape=[])
    feeds = synthesize(session)
    (out,) = session.run(None, feeds.arrays)
    assert out.shape == () and out == feeds.arrays["x"]


# --- determinism and errors ---------------------------------------------------------------------


def host_bytes(feeds: Feeds) -> dict[str, bytes]:
    """Comparable content of every host buffer."""
    return {name: repr(array.tolist()).encode() for name, array in feeds.host.items()}


@pytest.mark.parametrize("name", sorted(SUPPORTED_ELEMENT_TYPES))
def test_same_seed_same_data_other_seed_other_data(name: str) -> None:
    if name in ORT_ONLY_FLOATS or name in CAST_ONLY:
        skip_unless_fed({**ORT_ONLY_FLOATS, **CAST_ONLY}[name])
    args = [FakeArg("x", f"tensor({name})", [64])]
    shapes = {"x": (64,)}
    first, again = (synthesize_inputs(args, shapes, seed=7) for _ in range(2))
    assert host_bytes(first) == host_bytes(again)
    assert host_bytes(first) != host_bytes(synthesize_inputs(args, shapes, seed=8))


def test_adding_an_input_leaves_other_data_unchanged() -> None:
    one = [FakeArg("a", "tensor(float)", [8])]
    two = [FakeArg("z", "tensor(float)", [8]), *one]
    alone = synthesize_inputs(one, {"a": (8,)}, seed=3)
    both = synthesize_inputs(two, {"a": (8,), "z": (8,)}, seed=3)
    np.testing.assert_array_equal(alone.host["a"], both.host["a"])
    assert not np.array_equal(both.host["a"], both.host["z"])


def test_sequence_input_is_a_model_error() -> None:
    session = make_session(
        [helper.make_tensor_sequence_value_info("tokens", TensorProto.FLOAT, None)],
        [helper.make_node("SequenceLength", ["tokens"], ["n"])],
        [helper.make_tensor_value_info("n", TensorProto.INT64, [])],
    )
    assert session.get_inputs()[0].type == "seq(tensor(float))"
    with pytest.raises(ModelError, match=r"'tokens'.*seq\(tensor\(float\)\).*not"):
        synthesize_inputs(session.get_inputs(), {"tokens": ()})


@pytest.mark.parametrize("type_", ["map(int64,tensor(float))", "tensor(complex64)", "tensor(xyz)"])
def test_unsupported_types_are_model_errors(type_: str) -> None:
    with pytest.raises(ModelError, match="'m'") as err:
        synthesize_inputs([FakeArg("m", type_, [2])], {"m": (2,)})
    assert err.value.hint


def test_strings_cannot_join_ort_value_feeds() -> None:
    args = [FakeArg("s", "tensor(string)", [2]), FakeArg("b", "tensor(bfloat16)", [2])]
    with pytest.raises(ModelError, match="'s'"):
        synthesize_inputs(args, {"s": (2,), "b": (2,)})


def test_missing_shape_and_negative_seed_are_usage_errors() -> None:
    args = [FakeArg("x", "tensor(float)", [2])]
    with pytest.raises(UsageError, match="'x'"):
        synthesize_inputs(args, {})
    with pytest.raises(UsageError, match="seed"):
        synthesize_inputs(args, {"x": (2,)}, seed=-1)


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        (["tensor(float)", "tensor(int64)", "tensor(string)"], False),
        (["seq(tensor(float))", "map(string,tensor(double))"], False),
        (["tensor(float)", "tensor(bfloat16)"], True),
        (["seq(tensor(float8e5m2))"], True),
        (["tensor(int4)"], True),
    ],
)
def test_output_needs_ort_values(types: list[str], expected: bool) -> None:
    outputs = [FakeArg(f"o{i}", type_, []) for i, type_ in enumerate(types)]
    assert output_needs_ort_values(outputs) is expected


def test_an_onnxruntime_that_cannot_feed_a_type_says_which_input_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """onnxruntime 1.23, the newest on Python 3.10, refuses bfloat16/float8/int4 OrtValues
    with a bare RuntimeError; the agent names the input and the way out. (Its refusal is
    replayed here: this machine's onnxruntime feeds them all.)"""
    from agent.inputs import feeds
    from agent.inputs.dtypes import _ELEMENT_TYPES

    def refuse(host: np.ndarray, code: int) -> ort.OrtValue:
        raise RuntimeError(f"Not a valid ONNX Tensor data type: {code}")

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy_with_onnx_type", refuse)
    kind = _ELEMENT_TYPES["bfloat16"]
    with pytest.raises(ModelError, match=r"'x'.*cannot feed.*newer onnxruntime"):
        feeds._to_ort_value("x", np.zeros(4, np.uint16), kind)
