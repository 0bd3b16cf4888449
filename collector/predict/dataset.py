"""What a predictor learns from: the store's valid results of one device key.

Why a key of five parts: a kernel's cost depends on the board, the onnxruntime build that
picked its kernels, the intra-op threads, the provider and the optimisation level (which
decides the fusions); results that differ in any of them never train one predictor.

Only results that are the job's result, ok and judged valid (collector's verdict: steady,
uncontended, no throttling) count: an invalid measurement neither trains nor scores. A
result trains kernels when it carries a per-op profile whose optimized graph the store holds;
every valid result counts as a whole model for the per-device correction and for scoring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import onnx

from collector.predict.families import model_family
from collector.predict.features import FEATURE_VERSION, kernel_rows
from collector.store import Store
from collector.store.rows import ResultRow, ResultStatus
from shared.errors import UsageError
from shared.input_values import InputValue


@dataclass(frozen=True, order=True)
class DeviceKey:
    """The five things a kernel cost depends on besides its shapes."""

    agent: str
    onnxruntime: str
    threads: int
    provider: str
    opt_level: str

    def text(self) -> str:
        """The canonical form the store keys predictors by."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def label(self) -> str:
        """How a person reads it: ``box t1 CPU all ort 1.32.0``."""
        provider = self.provider.removesuffix("ExecutionProvider")
        return f"{self.agent} t{self.threads} {provider} {self.opt_level} ort {self.onnxruntime}"


@dataclass(frozen=True)
class Measured:
    """One valid result of a whole model: what scoring and the correction read."""

    result_id: str
    model_sha256: str
    model_name: str
    family: str
    p50_us: float
    input_shapes: dict[str, list[int]]
    profile: dict[str, Any] | None  # the agent's op_profile, when the result has one
    optimized_sha256: str | None
    campaign_id: str
    flops: int | None  # the model's FLOPs as counted at its inputs (None: not counted)
    input_values: dict[str, InputValue] = field(default_factory=dict)  # given, not synthesized


def key_of(row: ResultRow) -> DeviceKey | None:
    """The device key of a stored result (None for an error result)."""
    doc = row.document
    if doc is None:
        return None
    settings = doc.get("settings") or {}
    device = doc.get("device") or {}
    return DeviceKey(
        agent=row.agent_id,
        onnxruntime=str(device.get("onnxruntime") or "?"),
        threads=int(settings.get("threads") or 0),
        provider=str(settings.get("provider") or "CPUExecutionProvider"),
        opt_level=str(settings.get("opt_level") or "all"),
    )


def usable(row: ResultRow) -> bool:
    """The job's own result, ok, and judged valid: the only kind that trains or scores."""
    return row.status == ResultStatus.OK and row.job_result == 1 and row.valid == 1


def measured(
    store: Store, rows: Iterable[ResultRow], key: DeviceKey, models_dir: Path
) -> list[Measured]:
    """Every usable result of `key`, oldest first, with its model's FLOPs from the store."""
    from collector.costs import cost_columns, result_values, shapes_key

    found = []
    for row in rows:
        if not usable(row) or key_of(row) != key:
            continue
        doc = row.document or {}
        profile = doc.get("op_profile") or None
        optimized = (profile or {}).get("optimized_model_sha256")
        if optimized and not (models_dir / f"{optimized}.onnx").is_file():
            optimized = None
        inputs = (doc.get("model") or {}).get("inputs") or {}
        found.append(
            Measured(
                result_id=row.result_id,
                model_sha256=row.model_sha256,
                model_name=row.model_name,
                family=model_family(row.model_name),
                p50_us=float(doc["latency_ms"]["p50"]) * 1000.0,
                input_shapes={n: list(m.get("shape") or []) for n, m in inputs.items()},
                profile=profile,
                optimized_sha256=optimized,
                campaign_id=row.campaign_id,
                flops=cost_columns(store, row.model_sha256, shapes_key(doc), None)["flops"],
                input_values=result_values(doc, None),
            )
        )
    return found


def device_keys(rows: Iterable[ResultRow]) -> list[DeviceKey]:
    """Every key with at least one usable result."""
    return sorted({k for r in rows if usable(r) and (k := key_of(r)) is not None})


def resolve(rows: Sequence[ResultRow], device: str, threads: int | None = None) -> DeviceKey:
    """The device key a user means by `device` (an agent name, hostname, device id or a
    prefix of one) and `threads`; a UsageError lists the choices when it is not exactly one."""
    keys = device_keys(rows)
    names: dict[str, set[str]] = {}
    for row in rows:
        desc = json.loads(row.descriptor_json) if row.descriptor_json else {}
        names.setdefault(row.agent_id, set()).update(
            {row.agent_id, row.device_id, str(desc.get("hostname") or row.agent_id)}
        )
    agents = {a for a, ns in names.items() if device in ns}
    if not agents:
        agents = {a for a, ns in names.items() if any(n.startswith(device) for n in ns)}
    chosen = [k for k in keys if k.agent in agents and (threads is None or k.threads == threads)]
    if len(chosen) == 1:
        return chosen[0]
    choices = ", ".join(k.label() for k in keys) or "none: the store has no valid results"
    if not chosen:
        raise UsageError(
            f"no valid results for device {device!r}"
            + (f" at {threads} thread(s)" if threads is not None else ""),
            f"devices with valid results: {choices}",
        )
    raise UsageError(
        f"device {device!r} has results under {len(chosen)} settings",
        f"pick one with --threads (and the others if needed): {choices}",
    )


@lru_cache(maxsize=256)
def _graph(path: Path) -> onnx.GraphProto:
    return onnx.load(str(path), load_external_data=False).graph


def kernel_samples(models: Sequence[Measured], models_dir: Path) -> list[dict[str, Any]]:
    """One row per profiled node of every model that has a profile: features, the measured
    kernel time, and which result and model family it came from."""
    rows: list[dict[str, Any]] = []
    for m in models:
        if m.profile is None or m.optimized_sha256 is None:
            continue
        graph = _graph(models_dir / f"{m.optimized_sha256}.onnx")
        for row in kernel_rows(graph, m.profile.get("nodes") or []):
            if row["kernel_time_us"] is None or row["kernel_time_us"] <= 0:
                continue
            rows.append(
                {**row, "result_id": m.result_id, "model": m.model_name, "model_family": m.family}
            )
    return rows


def data_hash(models: Iterable[Measured], *parts: str) -> str:
    """What a trained predictor is versioned by: its results, the feature definitions, and
    whatever else the caller's training depends on (`parts`)."""
    digest = hashlib.sha256(" ".join((f"features {FEATURE_VERSION}", *parts)).encode())
    for result_id in sorted(m.result_id for m in models):
        digest.update(result_id.encode())
    return digest.hexdigest()
