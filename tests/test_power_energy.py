"""Window integration as pure functions: wrap correction, edge interpolation, trapezoids."""

from __future__ import annotations

import numpy as np
import pytest

from agent.power.energy import counter_delta, cumulative, integrate, observed_period_s
from agent.probes.base import ENERGY_COUNTER, POWER_GAUGE

S = 1_000_000_000  # ns per s


def test_counter_delta_wraps() -> None:
    assert counter_delta(95.0, 5.0, 100.0) == 10.0
    assert counter_delta(5.0, 95.0, 100.0) == 90.0
    assert counter_delta(5.0, 95.0, None) == 90.0


def test_cumulative_unwraps_each_step() -> None:
    assert cumulative(np.array([90.0, 95.0, 3.0, 8.0]), 100.0).tolist() == [0, 5, 13, 18]


def test_counter_window_interpolates_at_the_edges() -> None:
    t = np.array([0, 1, 2]) * S
    result = integrate(t, np.array([0.0, 10.0, 30.0]), ENERGY_COUNTER, S // 2, 3 * S // 2)
    assert result.energy_j == pytest.approx(15.0)  # 5 J of the first step + 10 J of the second
    assert result.avg_w == pytest.approx(15.0)
    assert result.peak_w == pytest.approx(20.0)
    assert result.coverage == 1.0 and result.samples == 1


def test_gauge_window_is_a_trapezoid_with_interpolated_edges() -> None:
    t = np.array([0, 1, 2]) * S
    w = np.array([2.0, 10.0, 20.0])
    whole = integrate(t, w, POWER_GAUGE, 0, 2 * S)
    assert whole.energy_j == pytest.approx(6.0 + 15.0)
    inner = integrate(t, w, POWER_GAUGE, S // 2, 3 * S // 2)
    assert inner.energy_j == pytest.approx((6 + 10) / 2 * 0.5 + (10 + 15) / 2 * 0.5)
    assert inner.peak_w == pytest.approx(15.0)


def test_window_not_covered_by_samples_is_none_not_zero() -> None:
    t = np.array([0, 1, 2]) * S
    result = integrate(t, np.array([1.0, 1.0, 1.0]), POWER_GAUGE, -S, 2 * S)
    assert result.energy_j is None and result.avg_w is None
    assert result.coverage == pytest.approx(2 / 3)
    assert integrate(t[:1], np.array([1.0]), POWER_GAUGE, 0, S).energy_j is None


def test_observed_period_is_the_median_time_between_changes() -> None:
    t = np.arange(10) * (S // 100)  # samples every 10 ms
    v = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 2)  # value changes every 20 ms
    assert observed_period_s(t, v) == pytest.approx(0.02)
    assert observed_period_s(t, np.ones(10)) is None
