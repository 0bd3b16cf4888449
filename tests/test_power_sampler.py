"""PowerSampler on gauges: gaps mid-run, idle baseline and net energy, the Pi throttle summary,
and the result's exact shape."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agent.power.meter import PowerSampler, PowerUnavailable, open_sampler
from agent.probes.pi_pmic import CAVEAT

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
KEYS = {
    "source",
    "rails",
    "avg_w",
    "peak_w",
    "idle_w",
    "energy_j",
    "energy_j_per_inference",
    "net_energy_j_per_inference",
    "samples",
    "sensor_period_ms",
    "headline_rail",
    "caveat",
    "warnings",
}


def copy_board(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(SYSFS / name, tmp_path / name))


def until(sampler: PowerSampler, condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll `condition` after each new sample, up to a deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        sampler.wait_samples(1, timeout_s=0.5)


def test_files_that_go_bad_mid_run_are_gaps_with_reasons(tmp_path: Path) -> None:
    root = copy_board("jetson-orin", tmp_path)
    device = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    curr = device / "curr1_input"
    sampler = PowerSampler(root=root, rate_hz=100)
    assert sampler.source.name == "ina3221"
    start_ns = time.perf_counter_ns()
    with sampler:
        assert sampler.wait_samples(3, timeout_s=5.0)

        def gap_says(text: str) -> Callable[[], bool]:
            return lambda: any(text in g.reason for g in sampler.gaps())

        curr.write_text("")
        until(sampler, gap_says("empty"))
        curr.write_text("garbage\n")
        until(sampler, gap_says("not a number"))
        curr.unlink()
        until(sampler, gap_says("missing"))
        curr.mkdir()
        until(sampler, gap_says("is a directory"))
        curr.rmdir()
        curr.write_text("1000\n")
        mark = time.perf_counter_ns()
        until(
            sampler,
            lambda: (
                sampler.raw().t_ns[-1] > mark and not np.isnan(sampler.raw().values["VDD_IN"][-1])
            ),
        )
        end_ns = time.perf_counter_ns()
        result = sampler.window(start_ns, end_ns, iterations=10)
    vdd_in = sampler.raw().values["VDD_IN"]
    assert np.isnan(vdd_in).any() and not (vdd_in == 0).any()  # gaps are NaN, never 0
    assert np.nanmin(vdd_in) == pytest.approx(5.0)
    assert {g.rail for g in sampler.gaps()} == {"VDD_IN"}
    gap_warnings = " ".join(w for w in result["warnings"] if w.startswith("gap: VDD_IN"))
    for reason in ("empty", "not a number", "missing", "is a directory"):
        assert reason in gap_warnings
    assert result["avg_w"] == pytest.approx(5.0)  # the run completed, bridging the gaps
    assert result["rails"]["VDD_SOC"]["avg_w"] == pytest.approx(1.4)
    assert set(result) == KEYS


def test_idle_baseline_and_net_energy(tmp_path: Path) -> None:
    root = copy_board("rpi4-ina226", tmp_path)
    power = root / "sys/class/hwmon/hwmon2/power1_input"
    sampler = PowerSampler(root=root, rate_hz=100)
    assert sampler.rate_hz == pytest.approx(1 / 0.035)  # capped by update_interval
    with sampler:
        idle = sampler.idle_baseline(0.4)
        assert idle == pytest.approx(4.998)
        power.write_text("7998000\n")  # 7.998 W, in µW
        until(sampler, lambda: sampler.raw().values["ina226"][-1] == pytest.approx(7.998))
        assert sampler.wait_samples(1, timeout_s=5.0)
        start_ns = time.perf_counter_ns()
        assert sampler.wait_samples(12, timeout_s=5.0)
        end_ns = time.perf_counter_ns()
        result = sampler.window(start_ns, end_ns, iterations=4)
    window_s = (end_ns - start_ns) / 1e9
    assert result["avg_w"] == pytest.approx(7.998)
    assert result["peak_w"] == pytest.approx(7.998)
    assert result["idle_w"] == pytest.approx(4.998)
    assert result["energy_j"] == pytest.approx(7.998 * window_s)
    assert result["net_energy_j_per_inference"] == pytest.approx(3.0 * window_s / 4)
    assert result["sensor_period_ms"] == pytest.approx(35.0)
    assert "throttle" not in result


def test_pi5_result_has_the_caveat_throttle_summary_and_few_updates_warning() -> None:
    sampler = PowerSampler(root=SYSFS / "rpi5", rate_hz=100)
    assert sampler.rate_hz == 5.0  # one subprocess per read: capped
    with sampler:
        assert sampler.wait_samples(1, timeout_s=5.0)
        start_ns = time.perf_counter_ns()
        assert sampler.wait_samples(2, timeout_s=5.0)
        end_ns = time.perf_counter_ns()
        result = sampler.window(start_ns, end_ns, iterations=3)
    assert set(result) == KEYS | {"throttle"}
    assert result["source"] == "pi5-pmic" and result["caveat"] == CAVEAT
    assert result["throttle"]["before"]["throttled"]["now"] == ["under_voltage", "throttled"]
    assert result["throttle"]["after"]["temp_c"] == 48.8
    assert result["avg_w"] == pytest.approx(sum(v["avg_w"] for v in result["rails"].values()))
    assert any("fewer than 10" in w for w in result["warnings"])
    assert any("sensor_period_ms is observed" in w for w in result["warnings"])


def test_no_source_gives_none_and_the_reason() -> None:
    sampler, reason = open_sampler(SYSFS / "none")
    assert sampler is None and reason is not None and "looked for" in reason
    with pytest.raises(PowerUnavailable, match="looked for"):
        PowerSampler(root=SYSFS / "none")


def test_an_energy_counter_that_never_moves_is_missing_not_zero_watts() -> None:
    sampler = PowerSampler(root=SYSFS / "intel-laptop-rapl", rate_hz=100)  # a fixture: never moves
    with sampler:
        idle = sampler.idle_baseline(0.2)
        assert sampler.wait_samples(1, timeout_s=5.0)
        start_ns = time.perf_counter_ns()
        assert sampler.wait_samples(12, timeout_s=5.0)
        end_ns = time.perf_counter_ns()
        result = sampler.window(start_ns, end_ns, iterations=4)
    assert idle is None
    assert result["avg_w"] is None and result["energy_j"] is None and result["idle_w"] is None
    assert all(rail["avg_w"] is None for rail in result["rails"].values())
    assert result["energy_j_per_inference"] is None
    assert any("did not change" in w and "frozen" in w for w in result["warnings"])
