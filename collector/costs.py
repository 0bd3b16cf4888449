"""The join of measurements with theory: each model's FLOPs counted once and kept.

Counts are keyed by the model's sha256 and the input shapes the agent actually ran (from the
result document), so a model measured at two resolutions has two counts. A model that cannot
be counted keeps the reason, and its rows show no FLOPs rather than a made-up number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collector.store import Store
from shared.errors import FlopgapError
from shared.input_values import InputValue, parse_value, values_from_wire

log = logging.getLogger("flopgap.collector")

# The key under which a shapes key lists given input values; "@" starts no ONNX input name
# an exporter writes, and a key without it is the shapes-only key of older results.
VALUES_KEY = "@values"


def shapes_key(document: dict[str, Any]) -> str:
    """Canonical JSON of the inputs a result was measured at: shapes, and given values.

    A result measured with no given values keeps the key it always had ({name: shape}).
    An input fed a given value adds it, by its text or, for a file, its sha256, so that
    ``sr=16000`` and ``sr=8000`` (two branches of one model) are two counts, not one.
    """
    inputs = document["model"]["inputs"]
    shapes = {name: meta["shape"] for name, meta in inputs.items()}
    given = {
        name: meta.get("sha256") or meta.get("value")
        for name, meta in inputs.items()
        if meta.get("source", "synthesized") != "synthesized"
    }
    key: dict[str, Any] = shapes if not given else {VALUES_KEY: given, **shapes}
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _key_shapes(key: str) -> dict[str, Any]:
    """The input shapes a ``shapes_key`` holds."""
    shapes = json.loads(key)
    shapes.pop(VALUES_KEY, None)
    return shapes


def result_values(
    document: dict[str, Any], job_settings: dict[str, Any] | None
) -> dict[str, InputValue]:
    """The values a result's inputs were given: from its job's settings (which carry file
    bytes), else re-read from the document's value texts (files there have only a hash)."""
    if job_settings and job_settings.get("input_values"):
        return values_from_wire(job_settings["input_values"])
    out: dict[str, InputValue] = {}
    for name, meta in document.get("model", {}).get("inputs", {}).items():
        if meta.get("source") in ("literal", "fill") and meta.get("value"):
            out[name] = parse_value(name, str(meta["value"]))
    return out


def ensure_cost(
    store: Store,
    sha256: str,
    model_path: Path,
    shapes: str,
    values: Mapping[str, InputValue] | None = None,
) -> None:
    """Count `model_path` at `shapes` (a ``shapes_key``) and `values` unless already counted
    (or already failed)."""
    if store.cost(sha256, shapes) is not None:
        return
    from collector.flops import count_model

    try:
        report = count_model(model_path, _key_shapes(shapes), input_values=values or None)
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
        "unique_bytes": total.get("unique_bytes"),
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
    "unique_bytes",
)
