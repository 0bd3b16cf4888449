"""--concurrency and --sessions on real ONNX Runtime sessions, and the verdict's own threads.

No speed is asserted: the checks are that N threads really had N requests in flight, that the
inferences/s figure is the requests over the window and agrees with the per-request latencies
(N threads busy back to back cannot exceed N / mean latency), and that our own threads never
count as another process's load.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.engine.concurrent import max_in_flight
from agent.engine.measure import measure
from agent.engine.options import settings_from_dict
from agent.engine.verdict import Limits, SystemObservations, judge_system
from collector.campaign import load_campaign
from shared.errors import UsageError
from tests.conftest import FAST, Runner, matmul_graph, save_model
from tests.test_campaign_config import SMALLEST, write

QUICK = {"min_iterations": 200, "min_seconds": 0.3, "warmup_runs": 2, "warmup_seconds": 0,
         "power": False, "threads": 1}  # fmt: skip


@pytest.fixture
def busy_model(tmp_path: Path) -> Path:
    """A matmul of about 4 M MACs: long enough per request that two threads overlap."""
    return save_model(matmul_graph(batch=64, width=256), tmp_path / "busy.onnx")


def _consistent(doc: dict, concurrency: int) -> None:
    tp, lat = doc["throughput"], doc["latency_ms"]
    assert tp["requests"] == lat["n"] == sum(tp["per_thread_requests"])
    assert tp["inferences_per_s"] == pytest.approx(tp["requests"] / tp["window_s"])
    bound = concurrency / (lat["mean"] / 1e3)  # every thread busy for the whole window
    assert 0.5 * bound <= tp["inferences_per_s"] <= bound * (1 + 1e-6)


def test_concurrency_puts_n_requests_in_flight(busy_model: Path) -> None:
    doc = measure(busy_model, settings_from_dict({**QUICK, "concurrency": 2})).document
    tp = doc["throughput"]
    assert (tp["concurrency"], tp["sessions"], tp["max_in_flight"]) == (2, 1, 2)
    assert len(tp["per_thread_requests"]) == 2 and min(tp["per_thread_requests"]) > 0
    assert doc["settings"]["concurrency"] == 2
    assert doc["system"]["own_threads"] == 2
    _consistent(doc, 2)


def test_one_session_per_thread_reports_its_memory(busy_model: Path) -> None:
    doc = measure(busy_model, settings_from_dict({**QUICK, "concurrency": 2, "sessions": 2}))
    tp = doc.document["throughput"]
    assert (tp["sessions"], tp["max_in_flight"]) == (2, 2)
    assert isinstance(tp["extra_session_mb"], float)
    _consistent(doc.document, 2)


def test_one_thread_reports_throughput_too(busy_model: Path) -> None:
    doc = measure(busy_model, settings_from_dict(QUICK)).document
    assert doc["throughput"]["max_in_flight"] == 1
    _consistent(doc, 1)


def test_max_in_flight_counts_overlaps() -> None:
    starts = np.array([0, 5, 10, 30], dtype=np.int64)
    lats = np.array([10, 10, 5, 1], dtype=np.int64)  # 0-10, 5-15, 10-15, 30-31
    assert max_in_flight(starts, lats) == 2  # the end at 10 comes before the start at 10
    assert max_in_flight(starts[:0], lats[:0]) == 0


def test_more_sessions_than_threads_is_refused() -> None:
    with pytest.raises(UsageError, match="--sessions 3 is more than --concurrency 2"):
        settings_from_dict({"concurrency": 2, "sessions": 3})
    with pytest.raises(UsageError, match="--concurrency must be >= 1"):
        settings_from_dict({"concurrency": 0})


def test_own_threads_on_every_core_are_not_contention() -> None:
    """Concurrency 2 x 1 intra-op thread on this 2-core box: both cores busy with our threads,
    and the little CPU others used stays below the limit; not called contended."""
    ours = SystemObservations(foreign_cpu_cores=0.05, own_threads=2, cores=2, freq_available=True)
    valid, reasons, warnings = judge_system(ours, Limits())
    assert valid and not reasons and not warnings
    over = SystemObservations(foreign_cpu_cores=0.05, own_threads=4, cores=2, freq_available=True)
    valid, reasons, warnings = judge_system(over, Limits())
    assert valid and any("our own 4 threads" in w for w in warnings)
    busy = SystemObservations(foreign_cpu_cores=0.8, own_threads=2, cores=2, freq_available=True)
    valid, reasons, _ = judge_system(busy, Limits())
    assert not valid and "our own 2 threads not counted" in reasons[0]


def test_a_campaign_sweeps_concurrency_and_session_config(tmp_path: Path) -> None:
    text = SMALLEST.replace(
        "threads = [1, 2]",
        "threads = [1]\nconcurrency = [1, 2]\nsessions = [1]\n"
        'session_config = [{"session.intra_op.allow_spinning" = "0"}, {}]',
    )
    spec = load_campaign(write(tmp_path, text))
    grid = [(s["concurrency"], s["session_config"]) for s in spec.settings_grid()]
    spin = {"session.intra_op.allow_spinning": "0"}
    assert grid == [(1, spin), (2, spin), (1, {}), (2, {})]
    with pytest.raises(UsageError, match=r"matrix\.concurrency\[0\]: must be >= 1"):
        load_campaign(write(tmp_path, SMALLEST.replace("threads = [1, 2]", "concurrency = [0]")))


def test_adaptive_stopping_works_under_concurrency(busy_model: Path) -> None:
    settings = settings_from_dict({**QUICK, "concurrency": 2, "target_ci": 0.5, "max_seconds": 20})
    doc = measure(busy_model, settings).document
    assert doc["stop_reason"].startswith("median 95% CI") or doc["stop_reason"] == "max seconds"
    _consistent(doc, 2)


def test_bench_cli_measures_concurrently_and_cold(agent_cli: Runner, busy_model: Path) -> None:
    proc = agent_cli("bench", busy_model, *FAST, "--no-power", "--threads", "1",
                     "--concurrency", "2", "--cold-runs", "1", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["throughput"]["max_in_flight"] == 2 and doc["cold_starts"]["runs"] == 1
    table = agent_cli("bench", busy_model, *FAST, "--no-power", "--concurrency", "2")
    assert "inferences/s | concurrency 2 on 1 session(s)" in table.stdout, table.stderr
