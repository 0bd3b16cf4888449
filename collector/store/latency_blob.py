"""Raw latencies packed losslessly for the store: frame-of-reference, byte-aligned.

Each result's steady-state latencies (int64 ns) are stored as `base` (their minimum) and every
value's offset from it in the fewest whole bytes that hold the largest offset. A run's spread
is small next to its values: 10,000 runs between 50 and 60 us need 2 bytes each instead of
8, a 1 ms model with outliers up to 16 ms needs 3. The durable write was the collector's
ingest ceiling (SQLite WAL with synchronous=FULL writes each byte twice, and its cost grows
linearly with the bytes: measured 236 us of CPU per 80 kB row against 68 us per 20 kB row),
so a quarter of the bytes is most of the cost of storing a result.

Byte-aligned on purpose: packing and unpacking are a subtraction and a cast or strided copy in
numpy (10-60 us for 10,000 values; widths 1, 2 and 4 are the fast casts), where zlib at level 1
took 255 us for a similar size. Width 8 with base 0 is the plain little-endian int64 layout
of store schema 2, so rows written before packing existed read back unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from shared.errors import StoreError

_WHOLE = {1: "<u1", 2: "<u2", 4: "<u4"}  # widths numpy has an unsigned type for


class Packed(NamedTuple):
    base: int  # ns: the smallest value
    width: int  # bytes per value, 1..8
    data: bytes  # n * width bytes: each value - base, little-endian, low bytes first


def pack(values_ns: npt.NDArray[np.integer]) -> Packed:
    """Pack non-negative int64 latencies; `unpack` gives back exactly the same array."""
    values = np.ascontiguousarray(values_ns, dtype="<i8")
    if values.size == 0:
        return Packed(0, 8, b"")
    base = int(values.min())
    offsets = (values - base).astype("<u8", copy=False)  # 0 .. max - min, which fits since min >= 0
    span = int(offsets.max())
    width = max(1, (span.bit_length() + 7) // 8)
    if width == 8:
        return Packed(0, 8, values.tobytes())
    if width in _WHOLE:  # a plain cast: several times faster than the strided byte copy
        return Packed(base, width, offsets.astype(_WHOLE[width]).tobytes())
    low_bytes = offsets.view(np.uint8).reshape(-1, 8)[:, :width]
    return Packed(base, width, np.ascontiguousarray(low_bytes).tobytes())


def unpack(n: int, base: int, width: int, data: bytes) -> npt.NDArray[np.int64]:
    """The int64 ns array `pack` was given; StoreError when the row cannot be one."""
    if not 1 <= width <= 8 or len(data) != n * width:
        raise StoreError(
            f"latency blob of {len(data)} bytes cannot hold {n} values of {width} bytes",
            hint="the database is damaged: restore it from a backup",
        )
    if width == 8:
        return np.frombuffer(data, dtype="<i8").astype(np.int64) + base
    if width in _WHOLE:
        return np.frombuffer(data, dtype=_WHOLE[width]).astype(np.int64) + base
    wide = np.zeros((n, 8), dtype=np.uint8)
    wide[:, :width] = np.frombuffer(data, dtype=np.uint8).reshape(n, width)
    return wide.view("<u8").reshape(n).astype(np.int64) + base
