"""Two real collectors on one store, four real agents that fail over, on 127.0.0.1.

Each collector holds two agents; a campaign submitted to one of them covers all four. It ends
with exactly one result per job, and when one collector is SIGKILLed mid-campaign its agents
move to the other, which expires the dead one's lease: nothing is lost or stored twice, and
a consistency query over jobs and results finds nothing wrong.

The store's location comes from the `store_location` fixture alone: pointing these tests at
another backend is a one-line change there.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.procs import Child
from collector.store import Store, consistency
from tests.conftest import REPO, matmul_graph, save_model
from tests.fleet_helpers import start_collector, wait_for_campaign, write_campaign

pytestmark = pytest.mark.integration

HEARTBEAT_S = 0.5  # a collector is judged dead, and an agent moves on, after 5 of these


@pytest.fixture
def store_location(store_url: str) -> str:
    """The one store both collectors use: a SQLite file, then a PostgreSQL database."""
    return store_url


class TwoCollectors:
    """Collectors A and B on one store; agents a0, a1 prefer A, b0, b1 prefer B."""

    def __init__(self, tmp: Path, db: str) -> None:
        self.tmp = tmp
        self.collectors: dict[str, Child] = {}
        self.endpoints: dict[str, str] = {}
        for name in ("A", "B"):
            child, endpoint = start_collector(Path(db), heartbeat=HEARTBEAT_S)
            self.collectors[name], self.endpoints[name] = child, endpoint
        self.agents: dict[str, Child] = {}
        for name in ("a0", "a1", "b0", "b1"):
            first, other = ("A", "B") if name.startswith("a") else ("B", "A")
            self.agents[name] = self._agent(name, [self.endpoints[first], self.endpoints[other]])
        for name in ("a0", "a1"):
            self.collectors["A"].seen(rf"agent {name} registered", 60)
        for name in ("b0", "b1"):
            self.collectors["B"].seen(rf"agent {name} registered", 60)

    def _agent(self, name: str, endpoints: list[str]) -> Child:
        argv = [sys.executable, "-m", "agent", "run", "--name", name,
                "--spool", str(self.tmp / name / "spool"),
                "--cache", str(self.tmp / name / "cache")]  # fmt: skip
        for endpoint in endpoints:
            argv += ["--collector", endpoint]
        return Child(argv, name)

    def submit(self, config: Path, to: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "collector", "campaign", "run", str(config),
                               "--collector", self.endpoints[to], "--detach"],
                              capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
        assert proc.returncode == 0 and "accepted" in proc.stdout, proc.stdout + proc.stderr

    def stop(self) -> None:
        for child in self.agents.values():
            child.stop()
        for child in self.collectors.values():
            if child.proc.poll() is None:
                child.stop()


@pytest.fixture
def fleet(tmp_path: Path, store_location: str) -> Iterator[TwoCollectors]:
    two = TwoCollectors(tmp_path, store_location)
    try:
        yield two
    finally:
        two.stop()


def _models(folder: Path, count: int) -> list[str]:
    names = []
    for i, width in enumerate((32, 48, 64)[:count]):
        save_model(matmul_graph(batch=4, width=width), folder / f"m{i}.onnx")
        names.append(f"m{i}.onnx")
    return names


def _check_store(location: str, expected_jobs: int, agents: set[str]) -> None:
    store = Store(location)
    try:
        assert consistency.problems(store.db, finished=True) == []
        jobs, results = store.jobs(), store.result_rows()
        assert len(jobs) == expected_jobs
        assert len(results) == len(jobs)  # exactly one result per job: none lost, none doubled
        assert len({r.result_id for r in results}) == len(results)
        assert {r.job_id for r in results} == {j.job_id for j in jobs}
        assert {r.agent_id for r in results} == agents
        assert all(r.status == "ok" for r in results), [r.error for r in results]
    finally:
        store.close()


def test_a_campaign_submitted_to_one_collector_runs_on_the_agents_of_both(
    tmp_path: Path, store_location: str, fleet: TwoCollectors
) -> None:
    config = write_campaign(tmp_path, _models(tmp_path, 2), threads=[1])
    fleet.submit(config, to="A")
    fleet.collectors["B"].seen(r"accepted by another collector: 4 jobs queued", 30)
    done = wait_for_campaign(fleet.endpoints["B"], "fleet", timeout=180)  # B sees it finish
    assert done["jobs"]["done"] == 4 * 2
    _check_store(store_location, 4 * 2, {"a0", "a1", "b0", "b1"})


def test_sigkill_of_one_collector_moves_its_agents_to_the_other(
    tmp_path: Path, store_location: str, fleet: TwoCollectors
) -> None:
    config = write_campaign(tmp_path, _models(tmp_path, 3), threads=[1, 2])
    fleet.submit(config, to="A")
    fleet.collectors["B"].seen(r"result \w+: .* on b[01] ", 120)  # B is storing results
    fleet.collectors["B"].kill()
    for name in ("b0", "b1"):
        fleet.agents[name].seen(rf"moving to {fleet.endpoints['A']}", 30)
        fleet.collectors["A"].seen(rf"agent {name} registered", 30)
    fleet.collectors["A"].seen(r"has not renewed its lease for [\d.]+ s: expired", 30)
    done = wait_for_campaign(fleet.endpoints["A"], "fleet", timeout=240)
    assert done["jobs"]["done"] == 4 * 6
    _check_store(store_location, 4 * 6, {"a0", "a1", "b0", "b1"})
