"""What the system did over a window that is not a timed loop (the device calibration):
other processes' CPU use, CPU frequency range and thermal-throttle events.

Why: a calibration taken while another process competed stored 24.7 GB/s where the quiet box
streams 33.9 (issue 14), and every later roofline moved with it. The window is watched with
the measurement's own pieces (cpu_window at both ends, the background Sampler for the
frequencies, the cpufreq throttle counters) so the verdict (verdict.judge_system) applies the
same rules to it. The sampler ticks every `interval_s` (100 ms by default) and reads the
frequencies on every tick: ten reads a second are enough to catch a change that lasts, and
leave the cores to the calibration's own threads.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from agent.engine import cpu_window
from agent.engine.sampler import Sampler, SamplerReport
from agent.engine.verdict import SystemObservations
from agent.probes import cpufreq


class Watch:
    """A context manager around the watched window; read `observations()` and `system()` after."""

    def __init__(self, root: Path | str = "/", interval_s: float = 0.1) -> None:
        self._process = psutil.Process()
        self._cpu_dirs = cpufreq.cpu_dirs(root)
        self._sampler = Sampler(interval_s, root, freq_every=1)
        self._start: cpu_window.CpuSnapshot | None = None
        self._throttle_before: int | None = None
        self.window = cpu_window.CpuWindow(None, None, None, None)
        self.throttle_events: int | None = None
        self.report: SamplerReport = self._sampler.report

    def __enter__(self) -> Watch:
        self._sampler.start()
        self._throttle_before = cpufreq.throttle_count(self._cpu_dirs)
        self._start = cpu_window.snapshot(self._process)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._start is not None
        end = cpu_window.snapshot(self._process)
        after = cpufreq.throttle_count(self._cpu_dirs)
        self.report = self._sampler.stop()
        self.window = cpu_window.between(self._start, end)
        if self._throttle_before is not None and after is not None:
            self.throttle_events = after - self._throttle_before

    def observations(self) -> SystemObservations:
        """What the verdict judges."""
        return SystemObservations(
            freq_min_mhz=self.report.freq_min_mhz,
            freq_max_mhz=self.report.freq_max_mhz,
            freq_available=bool(self.report.freq_max_mhz),
            throttle_events=self.throttle_events,
            foreign_cpu_cores=self.window.foreign_cores,
            steal_fraction=self.window.steal_fraction,
        )

    def system(self) -> dict[str, Any]:
        """The same state as JSON, with the keys of a result document's `system`."""
        freqs = self.report.freq_max_mhz
        return {
            "cpu_freq_mhz": (
                {
                    "min": {str(c): v for c, v in self.report.freq_min_mhz.items()},
                    "max": {str(c): v for c, v in freqs.items()},
                }
                if freqs
                else None
            ),
            "governors": self.report.governors or None,
            "foreign_cpu_cores": self.window.foreign_cores,
            "own_cpu_cores": self.window.own_cores,
            "steal_fraction": self.window.steal_fraction,
            "throttle_events": self.throttle_events,
        }
