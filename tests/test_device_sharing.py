"""Two agents on one machine share its device id: the collector runs one job at a time on that
device, whichever agent holds it, and says so in `flopgap status` and its log."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from collector.store import JobState, Store
from tests.conftest import matmul_graph, save_model
from tests.fleet_helpers import (
    campaign_status,
    start_agent,
    start_collector,
    wait_for_campaign,
    write_campaign,
)
from tests.test_fleet import _submit

pytestmark = pytest.mark.integration


def test_two_agents_on_one_device_never_measure_at_once(tmp_path: Path) -> None:
    for i, width in enumerate((32, 64)):
        save_model(matmul_graph(batch=4, width=width), tmp_path / f"s{i}.onnx")
    # 2 models x 2 thread counts x 2 agents = 8 jobs on one device
    config = write_campaign(tmp_path, ["s0.onnx", "s1.onnx"], threads=[1, 2], name="shared")
    db = tmp_path / "shared.sqlite"
    collector, endpoint = start_collector(db)
    agents = [start_agent(endpoint, name, tmp_path) for name in ("a", "b")]
    try:
        collector.seen(r"agent a registered", 60)
        collector.seen(r"agent b registered", 60)
        collector.seen(r"agent \w shares device \w+ with \w: their jobs run one at a time", 10)
        sharing = {a["name"]: a["sharing"] for a in campaign_status(endpoint, "")["agents"]}
        assert sharing == {"a": ["b"], "b": ["a"]}
        _submit(config, endpoint)
        done = wait_for_campaign(endpoint, "shared", timeout=240)
    finally:
        for agent in agents:
            agent.stop()
        collector.stop()
    assert done["jobs"]["done"] == 8 and done["jobs"]["failed"] == 0
    assert set(done["per_agent"]) == {"a", "b"}
    store = Store(db)
    try:
        jobs = store.jobs()
        results = store.result_rows()
    finally:
        store.close()
    assert len(jobs) == 8 and all(j.state is JobState.DONE for j in jobs)
    assert len({r.device_id for r in results}) == 1  # one machine, one device
    # The collector's window of each job: from its dispatch to its stored result.
    windows = sorted((j.started or 0.0, j.updated, j.agent_id) for j in jobs)
    for (_, end, who), (start, _, next_who) in itertools.pairwise(windows):
        assert end <= start, f"a job on {next_who} started before one on {who} ended"
    assert {who for *_, who in windows} == {"a", "b"}
    # The agents' own windows, from the documents (to the second): none overlaps another.
    spans = sorted((doc["started_at"], doc["finished_at"], r.agent_id)
                   for r in results if (doc := r.document) is not None)  # fmt: skip
    assert len(spans) == 8
    for (_, end, who), (start, _, next_who) in itertools.pairwise(spans):
        assert end <= start, f"{next_who} measured while {who} still did"
