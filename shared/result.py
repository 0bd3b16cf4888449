"""The versioned result document: what one measurement of one model on one device says.

`flopgap-agent bench --json` prints it, the agent sends it inside a `Result` message, and the
collector stores it. Fields are named plainly with their unit in the name (``_ms``, ``_mb``).
Raw steady-state latencies do not live in the document: they travel as a binary int64 frame
beside it and are stored as a blob.

Bump RESULT_SCHEMA_VERSION whenever a field changes meaning or disappears; adding an optional
field does not need a bump.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from shared import schema
from shared.errors import ProtocolError
from shared.schema import ANY, Flag, ListOf, Num, Obj, Text

RESULT_SCHEMA_VERSION = 1

# Top-level keys every result document carries, with the keys required inside the nested ones.
REQUIRED: dict[str, tuple[str, ...]] = {
    "schema_version": (),
    "model": ("name", "sha256", "size_bytes"),
    "load_ms": (),
    "first_inference_ms": (),
    "warmup": ("n", "ms"),
    "latency_ms": (
        "p50",
        "p90",
        "p95",
        "p99",
        "mean",
        "std",
        "cv",
        "mad",
        "robust_cv",
        "min",
        "max",
        "n",
        "median_ci95",
    ),
    "memory": ("rss_before_mb", "rss_after_load_mb", "peak_rss_mb", "hwm_mb", "method"),
    "valid": (),
    "invalid_reasons": (),
    "warnings": (),
    "system": (),
    "device": ("device_id", "hostname", "arch", "cpu_model", "logical_cores"),
    "settings": ("provider", "threads", "inter_threads", "opt_level"),
    "power": (),
    "power_unavailable_reason": (),
}


MAX_SAMPLES = 50_000_000  # as shared.protocol.MAX_LATENCY_SAMPLES
ORDERED_PERCENTILES = ("min", "p50", "p90", "p95", "p99", "max")
_MS = Num(low=0.0)  # a duration in ms: finite and >= 0
_MS_OR_NONE = Num(low=0.0, nullable=True)
_COUNT = Num(low=0, integer=True)
_SHORT = Text(max_len=256)
_REASONS = ListOf(Text(max_len=4096), max_len=256)

# The declared schema of what the collector reads from a document (shared.schema): other
# keys may be there (a newer agent may add optional ones) and are kept as sent.
DOCUMENT = Obj({
    "model": Obj({
        "name": _SHORT,
        "sha256": Text(max_len=64),
        "size_bytes": _COUNT,
        "inputs": Obj(values=Obj({"type": Text(max_len=256, nullable=True),
                                  "shape": ListOf(Num(low=0, integer=True), max_len=32)},
                                 required=frozenset({"shape"})), max_keys=1024),
    }, required=frozenset({"name", "sha256", "size_bytes", "inputs"})),
    "load_ms": _MS,
    "first_inference_ms": _MS,
    "warmup": Obj({"n": _COUNT, "ms": _MS}),
    "latency_ms": Obj({
        **{k: _MS for k in ("p50", "p90", "p95", "p99", "mean", "mad", "min", "max")},
        "std": _MS_OR_NONE, "cv": _MS_OR_NONE, "robust_cv": _MS_OR_NONE,
        "n": Num(low=1, high=MAX_SAMPLES, integer=True),
        "median_ci95": ListOf(_MS, min_len=2, max_len=2, nullable=True),
    }),
    "memory": Obj({"method": Text(max_len=256, nullable=True)}, values=ANY),
    "valid": Flag(),
    "invalid_reasons": _REASONS,
    "warnings": _REASONS,
    "system": Obj(nullable=True, values=ANY),
    "device": Obj({**{k: Text(max_len=256, nullable=True)
                      for k in ("device_id", "hostname", "arch", "cpu_model")},
                   "logical_cores": Num(low=0, integer=True, nullable=True)}, values=ANY),
    "settings": Obj({"provider": _SHORT, "threads": _COUNT, "inter_threads": _COUNT,
                     "opt_level": _SHORT}, values=ANY),
    "power": ANY,
    "power_unavailable_reason": Text(max_len=4096, nullable=True),
})  # fmt: skip


# Optional top-level keys: (key, what it holds). Older documents lack them and stay valid.
OPTIONAL: dict[str, str] = {
    "started_at": "UTC ISO 8601 time the measurement started",
    "finished_at": "UTC ISO 8601 time its last pass (profiling, calibration) ended",
}


def check_document(doc: Mapping[str, Any]) -> None:
    """Raise ProtocolError unless `doc` is a result document of this schema version, with
    every field the collector reads of the right type and range (DOCUMENT) and its
    percentiles in order: nothing that makes no sense is stored or exported."""
    if not isinstance(doc, Mapping):
        raise ProtocolError("result document is not a JSON object")
    version = doc.get("schema_version")
    if version != RESULT_SCHEMA_VERSION:
        raise ProtocolError(
            f"result schema_version {schema.short(version)}, expected {RESULT_SCHEMA_VERSION}",
            hint="run the same flopgap version on the agent and the collector",
        )
    for key, inner in REQUIRED.items():
        if key not in doc:
            raise ProtocolError(f"result document lacks {key!r}")
        if inner:
            value = doc[key]
            if not isinstance(value, Mapping):
                raise ProtocolError(f"result field {key!r} is not an object")
            missing = [k for k in inner if k not in value]
            if missing:
                raise ProtocolError(f"result field {key!r} lacks {', '.join(missing)}")
    schema.check(DOCUMENT, dict(doc), "result")
    lat = doc["latency_ms"]
    for low_key, high_key in itertools.pairwise(ORDERED_PERCENTILES):
        low, high = lat[low_key], lat[high_key]
        if low > high * (1 + 1e-9):
            raise ProtocolError(
                f"result latency_ms.{low_key} ({low}) is above latency_ms.{high_key} ({high})",
                hint="percentiles must be ordered min <= p50 <= p90 <= p95 <= p99 <= max",
            )
    finished = doc.get("finished_at")
    if finished is not None and not _is_iso_time(finished):
        raise ProtocolError(
            f"result field 'finished_at' is not an ISO 8601 time: {schema.short(finished)}"
        )


def check_latencies(doc: Mapping[str, Any], latencies_ns: npt.NDArray[np.int64]) -> None:
    """Raise ProtocolError unless the raw latency frame is the one the document summarises:
    `latency_ms.n` values, every one a positive duration in ns."""
    n = doc["latency_ms"]["n"]
    if int(latencies_ns.size) != n:
        raise ProtocolError(
            f"result latency frame holds {latencies_ns.size} values, latency_ms.n says {n}",
            hint="send every steady-state latency the statistics were computed from",
        )
    if latencies_ns.size and int(latencies_ns.min()) <= 0:
        raise ProtocolError("result latency frame holds a duration <= 0 ns",
                            hint="check the clock the agent times with")  # fmt: skip


def _is_iso_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
