"""Power sampling beside a measurement: a thread reads the board's power source, and windows
given by the timing loop's perf_counter_ns bounds become the result's `power` field.

    sampler, reason = open_sampler()          # (None, reason) when the board has no source
    sampler.start(); sampler.idle_baseline(2.0)   # before the model loads
    ... steady-state loop records start_ns, end_ns ...
    power = sampler.window(start_ns, end_ns, iterations); sampler.stop()

The thread waits on an Event between reads (never sleeps), at `rate_hz` (default 100 Hz)
capped by the source's update rate. Samples are stamped with perf_counter_ns, the clock of
the timing loop. Every raw sample is kept (NaN marks a gap; each gap keeps its reason).
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from agent.power import report as power_report
from agent.power.energy import Samples
from agent.power.report import Gap
from agent.probes.base import Reading, Source
from agent.probes.commands import CommandRunner
from agent.probes.registry import detect
from shared.errors import FlopgapError

DEFAULT_RATE_HZ = 100.0
MAX_GAPS_KEPT = 10_000


class PowerUnavailable(FlopgapError):
    """No usable power source on this board; the message says what was tried and why not."""


def effective_rate(rate_hz: float, source: Source) -> float:
    """`rate_hz` capped by the sensor's update rate and the source's own limit, in Hz."""
    caps = [rate_hz]
    if source.update_interval_s:
        caps.append(1.0 / source.update_interval_s)
    if source.max_rate_hz:
        caps.append(source.max_rate_hz)
    return min(caps)


class PowerSampler:
    """Samples one power source in a daemon thread between start() and stop()."""

    def __init__(
        self,
        source: Source | None = None,
        *,
        root: Path | str | None = None,
        runner: CommandRunner | None = None,
        rate_hz: float = DEFAULT_RATE_HZ,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError("power sampling rate must be positive")
        if source is None:
            detection = detect(root, runner)
            if detection.best is None:
                raise PowerUnavailable(detection.unavailable_reason())
            source = detection.best
        self.source = source
        self.rate_hz = effective_rate(rate_hz, source)
        self.idle_w: float | None = None
        self._notes: list[str] = []
        self._t = array("q")
        self._v = {rail.name: array("d") for rail in source.rails}
        self._gaps: list[Gap] = []
        self._gaps_dropped = 0
        self._cond = threading.Condition()
        self._count = 0
        self._last_t = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status_before: dict[str, Any] | None = None

    def start(self) -> None:
        """Record the source's status (throttle flags) and start sampling."""
        if self._thread is not None:
            return
        self._status_before = self.source.status()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="flopgap-power", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling; the samples stay available."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> PowerSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        period = 1.0 / self.rate_hz
        due = time.perf_counter()
        while not self._stop.is_set():
            self._take()
            due += period
            now = time.perf_counter()
            due = max(due, now)  # after a slow read, no burst to catch up
            if self._stop.wait(due - now):
                return

    def _take(self) -> None:
        try:
            reading = self.source.read()
        except Exception as exc:  # a source bug must not end the run: record it as a gap
            why = f"read failed: {exc!r}"
            reading = Reading(time.perf_counter_ns(), {}, {r.name: why for r in self.source.rails})
        with self._cond:
            self._t.append(reading.t_ns)
            for rail, column in self._v.items():
                column.append(reading.values.get(rail, math.nan))
            for rail, why in reading.gaps.items():
                if len(self._gaps) < MAX_GAPS_KEPT:
                    self._gaps.append(Gap(reading.t_ns, rail, why))
                else:
                    self._gaps_dropped += 1
            self._count += 1
            self._last_t = reading.t_ns
            self._cond.notify_all()

    def wait_samples(self, n: int, timeout_s: float) -> bool:
        """Wait (bounded) until `n` more samples have been taken; False on timeout."""
        with self._cond:
            target = self._count + n
            return self._cond.wait_for(lambda: self._count >= target, timeout_s)

    def _wait_past(self, t_ns: int) -> bool:
        """Wait (bounded) for a sample stamped at or after t_ns, so the window is bracketed."""
        if self._thread is None:
            return self._last_t >= t_ns
        timeout = max(2.0, 3.0 / self.rate_hz)
        with self._cond:
            return self._cond.wait_for(lambda: self._last_t >= t_ns, timeout)

    def raw(self) -> Samples:
        """A copy of every sample so far (NaN = gap)."""
        with self._cond:
            t = np.frombuffer(self._t, dtype=np.int64).copy()
            values = {
                rail: np.frombuffer(col, dtype=np.float64).copy() for rail, col in self._v.items()
            }
        return Samples(t, values)

    def gaps(self) -> list[Gap]:
        """Every gap so far (the first MAX_GAPS_KEPT), with its reason."""
        with self._cond:
            return list(self._gaps)

    def idle_baseline(self, seconds: float = 2.0) -> float | None:
        """Average headline power (W) over the next `seconds`, before the model loads."""
        self.start()
        start_ns = time.perf_counter_ns()
        self._stop.wait(seconds)  # the idle window itself; ends early only on stop()
        end_ns = time.perf_counter_ns()
        self._wait_past(end_ns)
        head = power_report.headline(self.source, self.raw(), start_ns, end_ns)
        self.idle_w = head.avg_w
        self._notes = power_report.quality_warnings(
            self.source, head, seconds, f"idle baseline ({seconds:g} s)"
        )
        return self.idle_w

    def window(self, start_ns: int, end_ns: int, iterations: int) -> dict[str, Any]:
        """The `power` result for a perf_counter_ns window holding `iterations` inferences."""
        notes = list(self._notes)
        if not self._wait_past(end_ns):
            notes.append("no sample after the window's end arrived in time")
        if self._gaps_dropped:
            notes.append(f"{self._gaps_dropped} further gaps were not kept")
        throttle = None
        if self._status_before is not None:
            throttle = {"before": self._status_before, "after": self.source.status()}
        return power_report.build(
            self.source,
            self.raw(),
            self.gaps(),
            (start_ns, end_ns),
            iterations,
            self.idle_w,
            notes,
            throttle,
        )


def open_sampler(
    root: Path | str | None = None,
    runner: CommandRunner | None = None,
    rate_hz: float = DEFAULT_RATE_HZ,
) -> tuple[PowerSampler | None, str | None]:
    """(sampler, None) for this board's preferred source, or (None, why there is none).

    The reason lists what was looked for and what was present but unusable, with what to do
    (e.g. the command that grants read access to RAPL): it is `power_unavailable_reason`.
    """
    detection = detect(root, runner)
    if detection.best is None:
        return None, detection.unavailable_reason()
    return PowerSampler(detection.best, rate_hz=rate_hz), None
