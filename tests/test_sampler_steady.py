"""The sampler in the steady window: few wakeups, and what the verdict needs read at the edges.

Real threads and a real ORT session; the board is a copy of a committed sysfs tree with
cpufreq statistics added, so a frequency change between two polls can be staged.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.engine.measure import MeasureSettings, measure
from agent.engine.sampler import Sampler
from agent.engine.session import SessionSettings
from agent.engine.timing import StopRule

ARM = Path(__file__).resolve().parent / "data" / "sysfs" / "synthetic-arm"
STATS = "sys/devices/system/cpu/cpu{}/cpufreq/stats/time_in_state"


def _board(tmp_path: Path) -> Path:
    """The synthetic ARM board (cpu0 2400 MHz, cpu1 1500 MHz) with time_in_state added."""
    root = tmp_path / "board"
    shutil.copytree(ARM, root)
    for cpu, mhz in ((0, 2400), (1, 1500)):
        _residency(root, cpu, {600_000: 10, mhz * 1000: 500})
    return root


def _residency(root: Path, cpu: int, rows: dict[int, int]) -> None:
    path = root / STATS.format(cpu)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{khz} {t}\n" for khz, t in rows.items()))


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        pause.wait(0.005)
    return False


def test_quiet_window_samples_at_its_edges_not_every_tick(tmp_path: Path) -> None:
    sampler = Sampler(interval_s=0.002, root=_board(tmp_path), steady_interval_s=30.0)
    sampler.start()
    assert _wait_for(lambda: sampler.report.samples >= 5, 5.0)  # fast ticks before the window
    sampler.quiet()
    at_quiet = sampler.report.samples
    threading.Event().wait(0.2)  # a window of 0.2 s: 100 ticks at 2 ms, none at 30 s
    in_window = sampler.report.samples - at_quiet
    sampler.loud()
    assert in_window <= 1  # at most the tick that was already waiting when quiet() came
    after_loud = sampler.report.samples
    assert _wait_for(lambda: sampler.report.samples > after_loud + 3, 5.0)  # fast again
    report = sampler.stop()
    assert report.steady_interval_ms == 30_000.0 and report.freq_residency


def test_a_frequency_dip_between_polls_is_seen_through_residency(tmp_path: Path) -> None:
    root = _board(tmp_path)
    sampler = Sampler(interval_s=0.01, root=root, steady_interval_s=30.0)
    sampler.start()
    sampler.quiet()
    _residency(root, 0, {600_000: 12, 2_400_000: 560})  # cpu0 spent 20 ms at 600 MHz
    sampler.loud()
    report = sampler.stop()
    assert report.freq_min_mhz == {0: 600.0, 1: 1500.0}  # scaling_cur_freq never showed it
    assert report.freq_max_mhz == {0: 2400.0, 1: 1500.0}


def test_measurement_is_invalid_when_the_steady_window_changed_frequency(
    tmp_path: Path, tiny_model: Path
) -> None:
    root = _board(tmp_path)

    def progress(phase: str, *_: object) -> None:
        if phase == "steady":  # between iterations, inside the window
            _residency(root, 1, {600_000: 40, 1_500_000: 520})

    settings = MeasureSettings(
        session=SessionSettings(threads=1), warmup_runs=2, warmup_seconds=0.0,
        stop=StopRule(min_iterations=10, min_seconds=1.2, max_seconds=10.0), power=False,
        root=str(root),
    )  # fmt: skip
    doc = measure(tiny_model, settings, on_progress=progress).document
    assert not doc["valid"]
    assert any("frequency changed" in r and "cpu1 600-1500" in r for r in doc["invalid_reasons"])
    assert "in the steady window" in doc["memory"]["method"]
