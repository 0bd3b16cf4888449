"""Cold starts: K fresh processes each load the model and run it once (``--cold-runs K``).

Why a distribution: a model loaded on demand (a camera that wakes on motion) pays the load and
the first inference every time, and one sample of each says little about the next. Each run is
a new interpreter started with ``subprocess`` (``agent.engine.cold_child``), one after another
after the timed runs, so none shares the measurement's warmed process and none overlaps it.
The page cache is stated (``agent.engine.page_cache``): warm unless ``--drop-caches`` was
given and the system let us drop it before each run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.engine import page_cache
from shared.errors import MeasurementError
from shared.stats import percentile

if TYPE_CHECKING:
    from agent.engine.measure import MeasureSettings

CHILD_TIMEOUT_S = 300.0  # one load and one inference; a hung child must not hold the job
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the agent this process runs


def cold_starts(model_path: Path, settings: MeasureSettings) -> dict[str, Any]:
    """The document's ``cold_starts`` section: K samples of each time and their p50/p90/max."""
    job = json.dumps({"model": str(model_path), "settings": _child_settings(settings)})
    samples: list[dict[str, Any]] = []
    refusals: list[str] = []
    for index in range(settings.cold_runs):
        if settings.drop_caches:
            refused = page_cache.drop(settings.root)
            if refused is not None:
                refusals.append(refused)
        samples.append(_one(job, index))
    dropped = settings.drop_caches and not refusals
    note = None
    if refusals:
        note = f"--drop-caches refused, the cache stayed warm: {refusals[0]}"
    return {
        "runs": len(samples),
        "pids": [s["pid"] for s in samples],
        "page_cache": "dropped" if dropped else "warm",
        "page_cache_note": note,
        "method": "each run a fresh `python -m agent.engine.cold_child` (subprocess, not a "
        "fork), one after another: load_ms is session creation, first_inference_ms the first "
        "run, import_ms the interpreter's imports before it, process_ms spawn to exit",
        **{key: distribution([s[key] for s in samples])
           for key in ("load_ms", "first_inference_ms", "import_ms", "process_ms")},
    }  # fmt: skip


def distribution(values: list[float]) -> dict[str, Any]:
    """p50, p90 and max (type-7 percentiles, as every other figure) with every sample."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return {
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "max": float(ordered[-1]),
        "samples": [float(v) for v in values],
    }


def _child_settings(settings: MeasureSettings) -> dict[str, Any]:
    """The job's settings on the wire, without the passes a cold start must not repeat."""
    raw = settings.as_dict(wire_values=True)
    raw.update(cold_runs=0, drop_caches=False, profile_ops=False, calibrate=False, power=False)
    return raw


def _one(job: str, index: int) -> dict[str, Any]:
    """One child's times (ms); a child that fails or hangs fails the measurement, named."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    started = time.perf_counter_ns()
    try:
        done = subprocess.run([sys.executable, "-m", "agent.engine.cold_child"], input=job,
                              capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S,
                              check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise MeasurementError(
            f"cold run {index + 1} did not finish within {CHILD_TIMEOUT_S:g} s",
            hint="the model loads far slower in a fresh process: lower --cold-runs or check it",
        ) from exc
    process_ms = (time.perf_counter_ns() - started) / 1e6
    lines = done.stdout.strip().splitlines()
    out = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    if out is None or "error" in out:
        why = out["error"] if out else (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MeasurementError(
            f"cold run {index + 1} failed: {why}",
            hint=(out or {}).get("hint") or "run `flopgap-agent bench` on it to see the error",
        )
    return {**out, "process_ms": process_ms}
