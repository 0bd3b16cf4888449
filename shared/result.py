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
from collections.abc import Mapping
from typing import Any

from shared.errors import ProtocolError

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


# Optional top-level keys: (key, what it holds). Older documents lack them and stay valid.
OPTIONAL: dict[str, str] = {
    "started_at": "UTC ISO 8601 time the measurement started",
    "finished_at": "UTC ISO 8601 time its last pass (profiling, calibration) ended",
}


def check_document(doc: Mapping[str, Any]) -> None:
    """Raise ProtocolError unless `doc` is a result document of this schema version."""
    if not isinstance(doc, Mapping):
        raise ProtocolError("result document is not a JSON object")
    version = doc.get("schema_version")
    if version != RESULT_SCHEMA_VERSION:
        raise ProtocolError(
            f"result schema_version {version!r}, expected {RESULT_SCHEMA_VERSION}",
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
    if not isinstance(doc["valid"], bool):
        raise ProtocolError("result field 'valid' is not true/false")
    finished = doc.get("finished_at")
    if finished is not None and not _is_iso_time(finished):
        raise ProtocolError(f"result field 'finished_at' is not an ISO 8601 time: {finished!r}")


def _is_iso_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
