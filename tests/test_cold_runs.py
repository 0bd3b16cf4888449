"""--cold-runs: K fresh processes, K samples, and the page cache stated, never pretended.

These tests never drop this shared machine's page cache: the dropping path is exercised on a
tree of the test's own under the injected root (``agent.engine.page_cache`` reads
``<root>/proc/sys/vm/drop_caches``), where a write drops nothing.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from agent.engine import page_cache
from agent.engine.cold_starts import cold_starts, distribution
from agent.engine.measure import measure
from agent.engine.options import settings_from_dict
from shared.errors import MeasurementError

QUICK = {"min_iterations": 60, "min_seconds": 0, "warmup_runs": 2, "warmup_seconds": 0,
         "power": False, "threads": 1}  # fmt: skip


def test_cold_runs_start_k_fresh_processes(tiny_model: Path) -> None:
    doc = measure(tiny_model, settings_from_dict({**QUICK, "cold_runs": 3})).document
    cold = doc["cold_starts"]
    assert cold["runs"] == 3
    assert len(set(cold["pids"])) == 3 and os.getpid() not in cold["pids"]
    for key in ("load_ms", "first_inference_ms", "import_ms", "process_ms"):
        got = cold[key]
        assert len(got["samples"]) == 3 and all(v > 0 for v in got["samples"])
        assert got["p50"] <= got["p90"] <= got["max"] == max(got["samples"])
    assert (cold["page_cache"], cold["page_cache_note"]) == ("warm", None)
    assert doc["settings"]["cold_runs"] == 3


def test_no_cold_runs_no_section(tiny_model: Path) -> None:
    assert "cold_starts" not in measure(tiny_model, settings_from_dict(QUICK)).document


def test_distribution_is_type_7() -> None:
    assert distribution([4.0, 1.0, 3.0, 2.0]) == {
        "p50": 2.5, "p90": pytest.approx(3.7), "max": 4.0, "samples": [4.0, 1.0, 3.0, 2.0],
    }  # fmt: skip


def test_a_refused_drop_is_stated_and_the_cache_called_warm(
    tiny_model: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / page_cache.DROP_CACHES).mkdir(parents=True)  # a directory: the write must fail
    settings = settings_from_dict({**QUICK, "cold_runs": 1, "drop_caches": True})
    cold = cold_starts(tiny_model, dataclasses.replace(settings, root=str(root)))
    assert cold["page_cache"] == "warm"
    assert "--drop-caches refused" in cold["page_cache_note"]
    assert str(root / page_cache.DROP_CACHES) in cold["page_cache_note"]


def test_dropping_writes_one_to_the_rooted_file(tmp_path: Path) -> None:
    target = tmp_path / page_cache.DROP_CACHES
    target.parent.mkdir(parents=True)
    target.write_text("0\n")
    refused = page_cache.drop(str(tmp_path))
    if os.geteuid() != 0:
        assert refused is not None and "needs root" in refused
        assert target.read_text() == "0\n"
    else:
        assert refused is None and target.read_text() == "1\n"


def test_a_failing_cold_run_is_named(tiny_model: Path, tmp_path: Path) -> None:
    settings = settings_from_dict({**QUICK, "cold_runs": 1})
    gone = tmp_path / "gone.onnx"
    with pytest.raises(MeasurementError, match=r"cold run 1 failed: model file not found"):
        cold_starts(gone, settings)
