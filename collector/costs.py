"""The join of measurements with theory: each model's FLOPs counted once and kept.

Counts are keyed by the model's sha256 and the input shapes the agent actually ran (from the
result document), so a model measured at two resolutions has two counts. A model that cannot
be counted keeps the reason, and its rows show no FLOPs rather than a made-up number.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from collector.store import Store
from shared.errors import FlopgapError

log = logging.getLogger("flopgap.collector")


def shapes_key(document: dict[str, Any]) -> str:
    """Canonical JSON of the input shapes a result was measured at."""
    shapes = {name: meta["shape"] for name, meta in document["model"]["inputs"].items()}
    return json.dumps(shapes, sort_keys=True, separators=(",", ":"))


def ensure_cost(store: Store, sha256: str, model_path: Path, shapes: str) -> None:
    """Count `model_path` at `shapes` unless already counted (or already failed)."""
    if store.cost(sha256, shapes) is not None:
        return
    from collector.flops import count_model

    try:
        report = count_model(model_path, json.loads(shapes))
    except (FlopgapError, OSError) as exc:
        log.warning("cannot count FLOPs of %s: %s", model_path.name, exc)
        store.put_cost(sha256, shapes, None, None, str(exc))
        return
    total = report.to_json(per_node=False)
    store.put_cost(sha256, shapes, report.convention, total, None)


def cost_columns(store: Store, sha256: str, shapes: str, p50_ms: float | None) -> dict[str, Any]:
    """The export's theory columns for one result; empty where the count is missing."""
    row = store.cost(sha256, shapes)
    empty: dict[str, Any] = dict.fromkeys(COST_COLUMNS)
    if row is None:
        empty["flops_error"] = "not counted"
        return empty
    cost = row.cost
    if cost is None:
        empty["flops_error"] = row.error
        return empty
    total = cost["total"]
    flops = total["flops"]
    return {
        "macs": total["macs"],
        "flops": flops,
        "flops_2mac": total["flops_2mac"],
        "params": total["params"],
        "bytes": total["bytes"],
        "intensity": total["intensity"],
        "achieved_gflops": flops / (p50_ms * 1e6) if p50_ms else None,
        "flops_error": None,
    }


COST_COLUMNS = (
    "macs",
    "flops",
    "flops_2mac",
    "params",
    "bytes",
    "intensity",
    "achieved_gflops",
    "flops_error",
)
