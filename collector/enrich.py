"""What the collector adds to a stored result, after acknowledging it: the model's FLOPs
count, the per-node profile joined to the graph ORT ran, and the device's calibration.

None of it delays an acknowledgement, and none of it can lose a result: a failure here is
logged and leaves the result without the extra data (the report then says what is missing).
"""

from __future__ import annotations

import logging
from typing import Any

from collector.costs import ensure_cost, shapes_key
from collector.store import Store
from collector.store.model_files import ModelStore
from shared.errors import FlopgapError

log = logging.getLogger("flopgap.collector")


def needs_calibration(
    store: Store, agent_id: str, settings: dict[str, Any], onnxruntime: str | None
) -> bool:
    """True when this agent has no calibration at these threads with this onnxruntime."""
    threads = int(settings.get("threads", 0))
    for row in store.calibration_rows():
        if row.agent_id == agent_id and row.threads == threads:
            return row.detail.get("onnxruntime") != onnxruntime
    return True


def enrich(
    store: Store,
    models: ModelStore,
    agent_id: str,
    result_id: str,
    sha256: str,
    document: dict[str, Any],
) -> None:
    """Count FLOPs, join the op profile and keep the calibration of one stored result."""
    if store.model(sha256) is not None:
        ensure_cost(store, sha256, models.path(sha256), shapes_key(document))
    calibration = document.get("calibration")
    if calibration:
        threads = int(document["settings"].get("threads", 0))
        store.put_calibration(agent_id, {**calibration, "threads": threads})
    profile = document.get("op_profile")
    if profile:
        _join_profile(store, models, result_id, sha256, document, profile)


def _join_profile(
    store: Store,
    models: ModelStore,
    result_id: str,
    sha256: str,
    document: dict[str, Any],
    profile: dict[str, Any],
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
        joined = join_ops(profile, models.path(optimized), models.path(sha256), shapes)
    except (FlopgapError, OSError, ValueError) as exc:
        log.warning("result %s: per-op join failed: %s", result_id[:8], exc)
        return
    rows = list(joined.rows) + [
        {**u, "node_name": u.get("node_name") or u.get("name"), "flops": None, "macs": None,
         "bytes": None}
        for u in joined.unmatched
    ]  # fmt: skip
    store.put_op_times(result_id, rows)
