"""The phase loops' stopping rules, driven by a deterministic run function."""

from __future__ import annotations

import gc
from typing import Any

from agent.engine.timing import StopRule, gc_paused, steady_state, time_once, warm_up


class CountingRun:
    """A stand-in for session.run that only counts calls (the loop logic is under test)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, outputs: Any, feeds: Any) -> None:
        self.calls += 1


def test_steady_state_stops_when_both_minimums_are_met() -> None:
    run = CountingRun()
    steady = steady_state(run, None, {}, StopRule(min_iterations=500, min_seconds=0.0))
    assert steady.latencies_ns.size == run.calls == 500
    assert not steady.capped
    assert steady.latencies_ns.dtype.name == "int64" and (steady.latencies_ns >= 0).all()
    assert steady.end_ns - steady.start_ns >= int(steady.latencies_ns.sum())


def test_steady_state_runs_on_until_min_seconds() -> None:
    run = CountingRun()
    steady = steady_state(run, None, {}, StopRule(min_iterations=1, min_seconds=0.05))
    assert steady.end_ns - steady.start_ns >= 50_000_000
    assert run.calls > 1


def test_steady_state_cap_wins() -> None:
    run = CountingRun()
    rule = StopRule(min_iterations=10**9, min_seconds=0.0, max_seconds=0.02)
    steady = steady_state(run, None, {}, rule)
    assert steady.capped and steady.latencies_ns.size < 10**9


def test_progress_is_reported_between_iterations() -> None:
    seen: list[tuple[str, int]] = []
    steady_state(
        CountingRun(),
        None,
        {},
        StopRule(min_iterations=1, min_seconds=1.2),
        on_progress=lambda phase, n, _ns, samples: seen.append((phase, len(samples))),
    )
    assert seen and seen[0][0] == "steady" and seen[0][1] > 0


def test_warm_up_honours_count_and_time() -> None:
    run = CountingRun()
    assert warm_up(run, None, {}, n=25, min_seconds=0.0).size == 25
    assert time_once(run, None, {}) >= 0


def test_gc_is_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_adaptive_stopping_ends_once_the_median_is_pinned_down() -> None:
    run = CountingRun()
    rule = StopRule(min_iterations=200, min_seconds=100.0, max_seconds=30.0, target_ci=0.5)
    steady = steady_state(run, None, {}, rule)
    assert steady.stop_reason.startswith("median 95% CI (time blocks) within")
    assert steady.latencies_ns.size >= 200 and not steady.capped
    assert steady.end_ns - steady.start_ns < 30e9  # min_seconds is ignored when adaptive


def test_adaptive_stopping_gives_up_at_the_cap() -> None:
    calls = [0]

    def uneven(outputs: Any, feeds: Any) -> None:  # alternately short and ~100x longer runs
        calls[0] += 1
        sum(range(10 if calls[0] % 2 else 5000))

    rule = StopRule(min_iterations=10, max_seconds=0.3, target_ci=0.01)
    steady = steady_state(uneven, None, {}, rule)
    assert steady.stop_reason == "max seconds" and steady.capped


def test_median_ci_within_by_hand() -> None:
    from agent.engine.timing import median_ci_within

    assert median_ci_within([100] * 50, 0.01)
    # n=60: median 150; the order-statistic CI spans 100..200, half-width 50 = 33 % of the
    # median. Every block of 6 and both halves have median 150, so nothing widens it.
    assert not median_ci_within([100, 200] * 30, 0.33)
    assert median_ci_within([100, 200] * 30, 0.34)
    assert not median_ci_within([100] * 49, 0.5)  # too few runs for 10 blocks of 5


def test_adaptive_stopping_refuses_a_drifting_run() -> None:
    from agent.engine.timing import median_ci_within

    steady = [100] * 500 + [103] * 500  # tight within each half, 3 % apart between them
    assert not median_ci_within(steady, 0.01)
    assert median_ci_within(steady, 0.05)
