"""What the collector adds to a stored result, after acknowledging it: the model's FLOPs
count, the per-node profile joined to the graph ORT ran, and the device's calibration.

None of it delays an acknowledgement, and none of it can lose a result: a failure here is
logged and leaves the result without the extra data (the report then says what is missing).

A calibration is kept as the device's figure only when its verdict is valid (a stored row of
an older agent, without a verdict, counts as valid). An invalid one stays in its result's
document and in the log with its reasons, and the next job at those threads asks again, up to
MAX_INVALID_CALIBRATIONS times per (agent, threads, onnxruntime) in this collector's life, so
a board that is never quiet does not pay a calibration on every job; `flopgap calibrate`
forces one whatever that count says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from collector.costs import ensure_cost, result_values, shapes_key
from collector.store import Store
from collector.store.model_files import ModelStore
from shared.errors import FlopgapError
from shared.input_values import InputValue

log = logging.getLogger("flopgap.collector")

MAX_INVALID_CALIBRATIONS = 3
# Invalid calibrations seen by this process per (agent_id, threads, onnxruntime). In memory on
# purpose: a restarted collector tries again, which is what a user who fixed the board wants.
_invalid_calibrations: dict[tuple[str, int, str | None], int] = {}


def calibration_valid(detail: dict[str, Any]) -> bool:
    """A calibration's verdict; one without a verdict (an older agent) counts as valid."""
    return detail.get("valid", True) is not False


def needs_calibration(
    store: Store, agent_id: str, settings: dict[str, Any], onnxruntime: str | None
) -> bool:
    """True when this agent has no valid calibration at these threads with this onnxruntime
    (and has not yet had MAX_INVALID_CALIBRATIONS invalid ones here)."""
    threads = int(settings.get("threads", 0))
    for row in store.calibration_rows():
        if row.agent_id == agent_id and row.threads == threads:
            detail = row.detail
            if detail.get("onnxruntime") == onnxruntime and calibration_valid(detail):
                return False
    tries = _invalid_calibrations.get((agent_id, threads, onnxruntime), 0)
    return tries < MAX_INVALID_CALIBRATIONS


def keep_calibration(
    store: Store, agent_id: str, result_id: str, threads: int, calibration: dict[str, Any]
) -> bool:
    """Store a valid calibration as the device's figure at `threads`; log an invalid one with
    its reasons and count it. Returns whether it was stored."""
    key = (agent_id, threads, calibration.get("onnxruntime"))
    if calibration_valid(calibration):
        store.put_calibration(agent_id, {**calibration, "threads": threads})
        _invalid_calibrations.pop(key, None)
        return True
    _invalid_calibrations[key] = tries = _invalid_calibrations.get(key, 0) + 1
    again = (
        "asking again on a later job"
        if tries < MAX_INVALID_CALIBRATIONS
        else f"{tries} invalid in a row: not asking again until `flopgap calibrate --agent "
        f"{agent_id} --threads {threads}` or a collector restart"
    )
    log.warning(
        "calibration of %s at %d threads (result %s) is invalid, not stored: %s; %s",
        agent_id, threads, result_id[:8],
        "; ".join(calibration.get("invalid_reasons") or ["no reason given"]), again,
    )  # fmt: skip
    return False


def enrich(
    store: Store,
    models: ModelStore,
    agent_id: str,
    result_id: str,
    sha256: str,
    document: dict[str, Any],
    job_settings: dict[str, Any] | None = None,
) -> None:
    """Count FLOPs, join the op profile and keep the calibration of one stored result.

    ``job_settings`` are the settings the job was sent with: they carry the input values
    (file bytes included) the model is counted at."""
    values = result_values(document, job_settings)
    if store.model(sha256) is not None:
        ensure_cost(store, sha256, models.path(sha256), shapes_key(document), values)
    calibration = document.get("calibration")
    if calibration:
        threads = int(document["settings"].get("threads", 0))
        keep_calibration(store, agent_id, result_id, threads, calibration)
    profile = document.get("op_profile")
    if profile:
        _join_profile(store, models, result_id, sha256, document, profile, values)


def _join_profile(
    store: Store,
    models: ModelStore,
    result_id: str,
    sha256: str,
    document: dict[str, Any],
    profile: dict[str, Any],
    values: Mapping[str, InputValue],
) -> None:
    from collector.op_join import join_ops

    optimized = profile.get("optimized_model_sha256")
    if not optimized or optimized not in models:
        log.warning(
            "result %s: the optimized graph was not uploaded; no per-op join", result_id[:8]
        )
        return
    shapes = {n: m["shape"] for n, m in document["model"]["inputs"].items()}
    try:
        joined = join_ops(
            profile, models.path(optimized), models.path(sha256), shapes, values or None
        )
    except (FlopgapError, OSError, ValueError) as exc:
        log.warning("result %s: per-op join failed: %s", result_id[:8], exc)
        return
    rows = list(joined.rows) + [
        {**u, "node_name": u.get("node_name") or u.get("name"), "flops": None, "macs": None,
         "bytes": None}
        for u in joined.unmatched
    ]  # fmt: skip
    store.put_op_times(result_id, rows)
