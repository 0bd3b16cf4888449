"""Protobuf wire-format writers, for the few protos flopgap builds as bytes.

The agent writes its calibration models without importing onnx, and the collector's FLOPs
counter assembles weight-free model copies from cached serialized pieces (setting fields from
Python costs 0.1-0.5 us each). Both need the same two encodings from the protobuf spec:
base-128 varints and tagged fields. Standard library only, so both sides can import it.
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    """A non-negative int as a protobuf base-128 varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def int_field(number: int, value: int) -> bytes:
    """A varint field (wire type 0) with its tag."""
    return varint(number << 3) + varint(value)


def field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (wire type 2: string, bytes or embedded message) with its tag."""
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data
