"""What the counter knows about each tensor: element type, shape and size in bytes.

A shape is a tuple whose entries are ints for known dims and strings for unknown ones (the
symbolic name, or ``"?"``); ``None`` means even the rank is unknown. Sizes are exact bytes,
including sub-byte types (int4, float4) packed two per byte.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, MutableMapping
from typing import NamedTuple

import onnx

Dims = tuple[int | str, ...]

_BITS = {
    "FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32, "INT64": 64,
    "BOOL": 8, "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64, "COMPLEX64": 64,
    "COMPLEX128": 128, "BFLOAT16": 16, "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8,
    "FLOAT8E5M2FNUZ": 8, "UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "FLOAT8E8M0": 8, "UINT2": 2,
    "INT2": 2,
}  # fmt: skip
BITS: dict[int, int] = {
    getattr(onnx.TensorProto, name): bits
    for name, bits in _BITS.items()
    if hasattr(onnx.TensorProto, name)
}
_FLOATS = (
    "FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2",
    "FLOAT8E5M2FNUZ", "FLOAT4E2M1", "FLOAT8E8M0",
)  # fmt: skip
FLOAT_TYPES = frozenset(
    getattr(onnx.TensorProto, n) for n in _FLOATS if hasattr(onnx.TensorProto, n)
)


class TensorInfo(NamedTuple):
    """Element type, shape, whether every dim is known, and the size in bytes when it is.

    A NamedTuple rather than a dataclass: thousands are built per model and tuples are cheap.
    """

    elem_type: int
    shape: Dims | None
    static: bool
    nbytes: int | None

    @staticmethod
    def make(elem_type: int, shape: Dims | None) -> TensorInfo:
        """Build the info and precompute ``static`` and ``nbytes`` once per tensor."""
        static = shape is not None and all(type(d) is int for d in shape)
        bits = BITS.get(elem_type)
        nbytes = None
        if static and bits is not None:
            nbytes = (math.prod(shape) * bits + 7) // 8  # type: ignore[arg-type]
        return TensorInfo(elem_type, shape, static, nbytes)


Table = MutableMapping[str, TensorInfo]


def dims_of(type_proto: onnx.TypeProto) -> tuple[int, Dims | None]:
    """(elem_type, dims) of a tensor type; non-tensor types have elem_type 0 and no shape."""
    if type_proto.WhichOneof("value") != "tensor_type":
        return 0, None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    proto_dims = tt.shape.dim
    values = [d.dim_value for d in proto_dims]
    if all(v > 0 for v in values):  # the common case: every dim known
        return tt.elem_type, tuple(values)
    dims: list[int | str] = []
    for d, value in zip(proto_dims, values, strict=True):
        # dim_value reads 0 both when unset and for a real empty dim: ask only then
        if value > 0 or (value == 0 and d.WhichOneof("value") == "dim_value"):
            dims.append(value)
        else:
            dims.append(d.dim_param or "?")
    return tt.elem_type, tuple(dims)


def add_value_infos(table: Table, infos: Iterable[onnx.ValueInfoProto]) -> None:
    """Record the types of ``infos``, never replacing a known shape with a less known one."""
    bits_of = BITS.get
    for vi in infos:
        old = table.get(vi.name)
        if old is not None and old.static:
            continue
        tt = vi.type.tensor_type  # an empty default for non-tensor types: no shape, type 0
        if tt.HasField("shape"):
            values = [d.dim_value for d in tt.shape.dim]
            bits = bits_of(tt.elem_type)
            if min(values, default=1) > 0 and bits is not None:  # fast path: fully known
                nbytes = (math.prod(values) * bits + 7) // 8
                table[vi.name] = TensorInfo(tt.elem_type, tuple(values), True, nbytes)
                continue
        elem, shape = dims_of(vi.type)
        if old is not None and shape is None:
            continue
        table[vi.name] = TensorInfo.make(elem or (old.elem_type if old else 0), shape)


def add_initializers(table: Table, tensors: Iterable[onnx.TensorProto]) -> None:
    """Initializers have exact dims in their proto; reading them never touches the data."""
    for t in tensors:
        table[t.name] = TensorInfo.make(t.data_type, tuple(t.dims))


def constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a Constant node holds, when it is given as a tensor (``value``)."""
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return attr.t
    return None
