"""The validity verdict: each rule can fail on its own."""

from __future__ import annotations

import numpy as np

from agent.engine.verdict import Limits, Observations, judge
from shared.stats import summarize


def _stats(n: int = 1000, spread: float = 0.01, outliers: int = 0) -> dict:
    rng = np.random.default_rng(1)
    x = 1_000_000 * (1 + spread * rng.standard_normal(n))
    x[:outliers] = 50_000_000
    return summarize(x.astype(np.int64))


def _obs(**kw: object) -> Observations:
    base = {
        "stats": _stats(),
        "freq_available": True,
        "freq_min_mhz": {0: 2000.0},
        "freq_max_mhz": {0: 2000.0},
    }
    base.update(kw)
    return Observations(**base)  # type: ignore[arg-type]


def test_clean_run_is_valid() -> None:
    valid, reasons, warnings = judge(_obs(), Limits())
    assert valid and reasons == [] and warnings == []


def test_too_few_runs_for_p90_is_invalid_and_p99_only_warns() -> None:
    valid, reasons, warnings = judge(_obs(stats=_stats(n=40)), Limits())
    assert not valid and any("p90 needs 44" in r for r in reasons)
    valid, reasons, warnings = judge(_obs(stats=_stats(n=100)), Limits())
    assert valid and any("p99 needs 459" in w for w in warnings)


def test_noisy_bulk_is_invalid_but_rare_outliers_only_warn() -> None:
    valid, reasons, _ = judge(_obs(stats=_stats(spread=0.3)), Limits(max_cv=0.10))
    assert not valid and any("robust CV" in r for r in reasons)
    valid, _, warnings = judge(_obs(stats=_stats(outliers=5)), Limits(max_cv=0.10))
    assert valid and any("outliers" in w for w in warnings)


def test_frequency_change_is_invalid() -> None:
    valid, reasons, _ = judge(_obs(freq_min_mhz={0: 1200.0}, freq_max_mhz={0: 3400.0}), Limits())
    assert not valid and "cpu0 1200-3400 MHz" in reasons[0]


def test_missing_cpufreq_is_a_warning_not_a_pass() -> None:
    valid, _, warnings = judge(_obs(freq_available=False, freq_max_mhz={}), Limits())
    assert valid and any("not exposed" in w for w in warnings)


def test_throttling_and_foreign_cpu_are_invalid() -> None:
    valid, reasons, _ = judge(_obs(throttle_events=3), Limits())
    assert not valid and "throttled" in reasons[0]
    valid, reasons, _ = judge(_obs(foreign_cpu_cores=0.9), Limits(max_foreign_cpu_cores=0.25))
    assert not valid and "0.90 CPU cores" in reasons[0]


def test_cap_before_minimum_is_invalid() -> None:
    valid, reasons, _ = judge(_obs(capped_before_minimum=True), Limits())
    assert not valid and "--max-seconds" in reasons[0]


def test_board_throttle_flags_make_a_result_invalid() -> None:
    from agent.engine.document import board_throttle

    power = {"throttle": {
        "before": {"throttled": {"now": [], "since_boot": ["under_voltage"]}},
        "after": {"throttled": {"now": ["throttled"],
                                "since_boot": ["under_voltage", "arm_frequency_capped"]}},
    }}  # fmt: skip
    flags = board_throttle(power)
    assert flags == ["arm_frequency_capped", "throttled"]
    assert board_throttle(None) == [] and board_throttle({"source": "rapl"}) == []
    valid, reasons, _ = judge(_obs(board_throttle=flags), Limits())
    assert not valid and "arm_frequency_capped, throttled" in reasons[0]
