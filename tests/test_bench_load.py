"""The fleet-load bench on a small fleet: a real collector subprocess and 20 simulated agents
over real sockets on 127.0.0.1. What it asserts is behaviour (every agent registered, beat,
and had its one job stored; none was falsely missing), never a speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load_agents import Plan, figures, measure_load
from bench.load_sim import raise_fd_limit

pytestmark = pytest.mark.integration

AGENTS = 20


def test_a_small_fleet_registers_beats_and_stores_every_result(tmp_path: Path) -> None:
    plan = Plan(AGENTS, duration_s=3.0, jobs="spread", threads=2)
    m = measure_load(tmp_path, plan)
    assert m["registered"] == AGENTS
    assert m["missing"] == 0  # nobody falsely marked missing
    assert m["jobs"] == AGENTS and m["stored"] == AGENTS and m["lost"] == 0
    assert m["results_sent"] == AGENTS and m["acks"] == AGENTS
    assert m["beat_hz"] > 0  # the agents beat through the whole window
    rows = figures(plan, m)
    assert [r.name for r in rows] == [
        "load, 20 agents: agents falsely marked missing",
        "load, 20 agents: lost results",
        "load, 20 agents: collector CPU, share of one core",
    ]
    assert rows[0].met and rows[1].met


def test_the_200_agent_plan_keeps_issue_9s_rounds_and_5000_spreads_one_job_each() -> None:
    rounds, spread = Plan(200), Plan(5_000, jobs="spread")
    assert rounds.jobs_per_agent == 29 and rounds.hold_s(0) == rounds.hold_s(199) == 2.0
    assert spread.jobs_per_agent == 1
    holds = [spread.hold_s(i) for i in range(spread.agents)]
    assert holds[0] > 0 and holds[-1] == spread.duration_s  # results arrive over the window
    assert holds == sorted(holds)


def test_the_descriptor_limit_is_raised_to_what_the_fleet_needs() -> None:
    before, after = raise_fd_limit(AGENTS)
    assert after >= before and after >= AGENTS * 3
