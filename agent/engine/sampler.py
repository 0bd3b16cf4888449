"""Background sampling of memory and CPU state while a model is measured.

Runs in its own thread and waits on an Event, so the timed loop never samples. RSS is read
every `interval_s` (default 10 ms); CPU frequencies every `freq_every` ticks because reading
one sysfs file per core costs more; temperatures once at start and once at stop plus every
second, since thermal zones update slowly.

Inside the steady window (between `quiet()` and `loud()`) the thread wakes only every
`steady_interval_s` (default 0.5 s). At threads = logical cores there is no spare core: each
wakeup takes one from an ORT intra-op thread, and its siblings wait for it at the next
barrier. On a 2-core VM one wakeup of this thread cost ~250 us of CPU (~100 us with nothing
to read), and 10 ms ticks made the steady-state median 2-3 % slower than a bare loop. What the
verdict needs from the window is read at its edges instead, on the caller's thread outside the
timestamps: RSS and frequencies, and the kernel's cumulative cpufreq residency
(`cpufreq/stats/time_in_state`), whose growth names every frequency a core ran at in between,
however briefly. Peak memory is VmHWM, and foreign CPU and throttle events are cumulative
counters read at the edges (agent.engine.measure).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from agent.probes import cpufreq, memory, thermal
from agent.probes.sysfs import read_text

STEADY_INTERVAL_S = 0.5

Residency = dict[int, dict[int, int]]  # cpu -> {kHz: time spent there, in 10 ms units}


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
    steady_interval_ms: float | None = None
    freq_residency: bool = False  # the steady window's frequencies include time_in_state


class Sampler:
    """Samples in a daemon thread between start() and stop()."""

    def __init__(
        self,
        interval_s: float = 0.01,
        root: Path | str = "/",
        freq_every: int = 10,
        steady_interval_s: float = STEADY_INTERVAL_S,
    ) -> None:
        if interval_s <= 0 or steady_interval_s <= 0:
            raise ValueError("sampling interval must be positive")
        self.interval_s = interval_s
        self.steady_interval_s = max(interval_s, steady_interval_s)
        self.root = root
        self.freq_every = max(1, freq_every)
        self._period = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # the thread and the window's edges both sample
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._cpu_dirs = cpufreq.cpu_dirs(root)
        self._residency: Residency = {}
        self.report = SamplerReport(interval_ms=interval_s * 1000.0)

    def start(self) -> None:
        self._sample_slow()
        self._thread = threading.Thread(target=self._loop, name="flopgap-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> SamplerReport:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._sample_slow()
        return self.report

    def quiet(self) -> None:
        """The steady window starts: sample now, then wake only every steady_interval_s."""
        self._period = self.steady_interval_s
        self.report.steady_interval_ms = self.steady_interval_s * 1000.0
        self._residency = residency(self._cpu_dirs)
        self._sample_edge()

    def loud(self) -> None:
        """The steady window has ended: sample now, add the frequencies the kernel counted in
        between, and go back to interval_s."""
        self._sample_edge()
        after = residency(self._cpu_dirs)
        with self._lock:
            self.report.freq_residency = _fold(self.report, self._residency, after)
        self._period = self.interval_s
        self._wake.set()

    def _loop(self) -> None:
        tick = 0
        next_temp = time.monotonic() + 1.0
        while True:
            self._wake.wait(self._period)
            self._wake.clear()
            if self._stop.is_set():
                return
            tick += 1
            with self._lock:
                self._sample_rss()
                if tick % self.freq_every == 0 or self._period > self.interval_s:
                    self._sample_freqs()
                if time.monotonic() >= next_temp:
                    self._sample_temps()
                    next_temp = time.monotonic() + 1.0

    def _sample_edge(self) -> None:
        with self._lock:
            self._sample_rss()
            self._sample_freqs()

    def _sample_rss(self) -> None:
        try:
            rss = memory.rss_mb(self._process)
        except psutil.Error as exc:  # the process is ours; this is unexpected but not fatal
            self._note(f"rss: {exc}")
            return
        self.report.samples += 1
        self.report.peak_rss_mb = max(self.report.peak_rss_mb, rss)

    def _sample_freqs(self) -> None:
        for cpu, mhz in (cpufreq.frequencies_mhz(self._cpu_dirs) or {}).items():
            _widen(self.report, cpu, mhz)

    def _sample_temps(self) -> None:
        for name, celsius in (thermal.temperatures_c(self.root) or {}).items():
            self.report.temp_max_c[name] = max(self.report.temp_max_c.get(name, celsius), celsius)

    def _sample_slow(self) -> None:
        with self._lock:
            for governor in cpufreq.governors(self._cpu_dirs) or []:
                if governor not in self.report.governors:
                    self.report.governors.append(governor)
            self._sample_rss()
            self._sample_freqs()
            self._sample_temps()

    def _note(self, error: str) -> None:
        if len(self.report.errors) < 10:
            self.report.errors.append(error)


def residency(dirs: dict[int, Path]) -> Residency:
    """Each CPU's cumulative time per frequency (cpufreq/stats/time_in_state: "kHz time"
    lines, time in 10 ms units); CPUs without the statistics are left out."""
    found: Residency = {}
    for cpu, path in dirs.items():
        text = read_text(path / "cpufreq" / "stats" / "time_in_state")
        rows = {}
        for line in (text or "").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                rows[int(parts[0])] = int(parts[1])
        if rows:
            found[cpu] = rows
    return found


def _fold(report: SamplerReport, before: Residency, after: Residency) -> bool:
    """Widen each CPU's frequency range by the frequencies whose residency grew; True when
    any CPU had statistics at both edges."""
    for cpu, rows in after.items():
        used = [khz for khz, t in rows.items() if t > before.get(cpu, {}).get(khz, t)]
        for khz in used:
            _widen(report, cpu, khz / 1000.0)
    return bool(set(before) & set(after))


def _widen(report: SamplerReport, cpu: int, mhz: float) -> None:
    report.freq_min_mhz[cpu] = min(report.freq_min_mhz.get(cpu, mhz), mhz)
    report.freq_max_mhz[cpu] = max(report.freq_max_mhz.get(cpu, mhz), mhz)
