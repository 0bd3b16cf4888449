"""Background sampling of memory and CPU state while a model is measured.

Runs in its own thread and waits on an Event, so the timed loop never samples. RSS is read
every `interval_s` (default 10 ms); CPU frequencies every `freq_every` ticks because reading
one sysfs file per core costs more; temperatures once at start and once at stop plus every
second, since thermal zones update slowly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from agent.probes import cpufreq, memory, thermal


@dataclass
class SamplerReport:
    """What the sampler saw over its lifetime."""

    interval_ms: float
    samples: int = 0
    peak_rss_mb: float = 0.0
    freq_min_mhz: dict[int, float] = field(default_factory=dict)
    freq_max_mhz: dict[int, float] = field(default_factory=dict)
    temp_max_c: dict[str, float] = field(default_factory=dict)
    governors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Sampler:
    """Samples in a daemon thread between start() and stop()."""

    def __init__(
        self, interval_s: float = 0.01, root: Path | str = "/", freq_every: int = 10
    ) -> None:
        if interval_s <= 0:
            raise ValueError("sampling interval must be positive")
        self.interval_s = interval_s
        self.root = root
        self.freq_every = max(1, freq_every)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._cpu_dirs = cpufreq.cpu_dirs(root)
        self.report = SamplerReport(interval_ms=interval_s * 1000.0)

    def start(self) -> None:
        self._sample_slow()
        self._thread = threading.Thread(target=self._loop, name="flopgap-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> SamplerReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._sample_slow()
        return self.report

    def _loop(self) -> None:
        tick = 0
        next_temp = time.monotonic() + 1.0
        while not self._stop.wait(self.interval_s):
            tick += 1
            self._sample_rss()
            if tick % self.freq_every == 0:
                self._sample_freqs()
            if time.monotonic() >= next_temp:
                self._sample_temps()
                next_temp += 1.0

    def _sample_rss(self) -> None:
        try:
            rss = memory.rss_mb(self._process)
        except psutil.Error as exc:  # the process is ours; this is unexpected but not fatal
            self._note(f"rss: {exc}")
            return
        self.report.samples += 1
        self.report.peak_rss_mb = max(self.report.peak_rss_mb, rss)

    def _sample_freqs(self) -> None:
        freqs = cpufreq.frequencies_mhz(self._cpu_dirs)
        for cpu, mhz in (freqs or {}).items():
            lo = self.report.freq_min_mhz.get(cpu, mhz)
            hi = self.report.freq_max_mhz.get(cpu, mhz)
            self.report.freq_min_mhz[cpu] = min(lo, mhz)
            self.report.freq_max_mhz[cpu] = max(hi, mhz)

    def _sample_temps(self) -> None:
        for name, celsius in (thermal.temperatures_c(self.root) or {}).items():
            self.report.temp_max_c[name] = max(self.report.temp_max_c.get(name, celsius), celsius)

    def _sample_slow(self) -> None:
        for governor in cpufreq.governors(self._cpu_dirs) or []:
            if governor not in self.report.governors:
                self.report.governors.append(governor)
        self._sample_rss()
        self._sample_freqs()
        self._sample_temps()

    def _note(self, error: str) -> None:
        if len(self.report.errors) < 10:
            self.report.errors.append(error)
