"""Every reason the agent's verdict can give has a short kind, so fleet counts never fall back
to a sentence; and the one-line summary every command prints."""

from __future__ import annotations

from agent.engine.verdict import Limits, Observations, judge
from shared.verdicts import KINDS, count_kinds, reason_kind, summary, tally

KNOWN = {kind for kind, _ in KINDS}


def _every_reason() -> list[str]:
    """A measurement that fails every check at once."""
    stats = {"n": 3, "median_ci95": None, "robust_cv": 0.5, "cv": 0.5}
    obs = Observations(
        stats=stats,
        capped_before_minimum=True,
        freq_min_mhz={0: 1000.0},
        freq_max_mhz={0: 3000.0},
        freq_available=True,
        throttle_events=4,
        foreign_cpu_cores=1.5,
        board_throttle=["under-voltage"],
    )
    valid, reasons, _ = judge(obs, Limits())
    assert not valid
    return reasons


def test_each_verdict_reason_has_a_known_kind() -> None:
    reasons = _every_reason()
    assert len(reasons) >= 7
    assert {r: reason_kind(r) for r in reasons if reason_kind(r) not in KNOWN} == {}
    assert set(count_kinds([reasons])) == KNOWN  # every kind is reachable


def test_an_unknown_reason_is_named_by_its_first_clause() -> None:
    assert reason_kind("the moon was full: rerun tomorrow") == "the moon was full"


def test_tally_counts_job_results_and_the_summary_line() -> None:
    rows = [
        ("ok", 1, None),
        ("ok", 0, '["other processes used 1.00 CPU cores; stop them"]'),
        ("ok", 0, '["CPU frequency changed during the window"]'),
        ("ok", 0, '["other processes used 0.50 CPU cores"]'),
        ("error", None, None),
    ]
    counts = tally(rows)
    assert (counts["valid"], counts["invalid"], counts["failed"]) == (1, 3, 1)
    assert counts["invalid_reasons"] == {"other processes": 2, "frequency changed": 1}
    line = summary(1, 3, 1, counts["invalid_reasons"])
    assert (
        line == "5 results: 1 valid, 3 invalid (other processes 2, frequency changed 1), 1 failed"
    )
