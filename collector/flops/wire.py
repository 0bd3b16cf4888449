"""Protobuf wire-format pieces, so thousands of small protos are built and read as bytes.

Reading or setting a field of a protobuf message from Python costs 0.1-0.5 us, and a model of
2,000 nodes has thousands of value infos and weights. Serialized protos compose by
concatenation (a repeated or embedded field seen twice merges), so a light model is built from
cached byte pieces, and a value info is read as its name plus the bytes of its type, which most
tensors of a model share. Only length-delimited fields are written here; the rest is left to
the protobuf library.
"""

from __future__ import annotations

from shared.protobuf_bytes import field, varint  # noqa: F401  (the writers, used via wire.*)

# Field numbers of the ONNX protos (onnx/onnx.proto), for the fields written here.
MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
GRAPH_INPUT = 11
VALUE_INFO_NAME = 1
TENSOR_NAME = 8


def split_name(data: bytes) -> tuple[str, bytes] | None:
    """(name, rest) of a serialized message whose field 1 is a string written first.

    The protobuf library writes fields in number order, so the name of a ValueInfoProto comes
    first; None when it does not (no name, or another writer), and the caller reads the proto.
    """
    if data[:1] != b"\n":
        return None
    size, shift, pos = 0, 0, 1
    while pos < len(data):
        byte = data[pos]
        size |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            end = pos + size
            return data[pos:end].decode("utf-8"), data[end:]
        shift += 7
    return None


def graph_patch(inputs: list[bytes], initializers: list[bytes]) -> bytes:
    """Serialized ModelProto whose graph holds only these inputs and initializers.

    Appended to a serialized model, it parses as that model with these added.
    """
    body = b"".join([field(GRAPH_INPUT, v) for v in inputs])
    body += b"".join([field(GRAPH_INITIALIZER, t) for t in initializers])
    return field(MODEL_GRAPH, body) if body else b""
