"""The timed phases of a measurement: first inference, warm-up, steady state.

Nothing runs between the two timestamps of a measured inference except the inference itself:
inputs are allocated before, samples are stored after the second timestamp, sampling happens
in another thread, and the garbage collector is paused for the duration of the phases.
"""

from __future__ import annotations

import array
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.stats import median_ci_blocks

# A run function: called as run(output_names, feeds); returns ORT's outputs, which are dropped.
RunFn = Callable[[Any, Any], Any]
# Called between iterations (never between an iteration's timestamps) about once a second, as
# (phase, iterations so far, elapsed ns, the latencies so far in ns or None). The callback may
# read the samples (e.g. for a running median) but must not keep or change them.
ProgressFn = Callable[[str, int, int, "Sequence[int] | None"], None]

_PROGRESS_EVERY_NS = 1_000_000_000


_CI_CHECK_EVERY_NS = 200_000_000


@dataclass(frozen=True)
class StopRule:
    """When the steady state ends: both minimums met, or the cap reached.

    With `target_ci` (a fraction, e.g. 0.01), adaptive stopping: after `min_iterations`, stop
    as soon as the drift-aware 95 % confidence interval of the median (shared.stats.
    median_ci_blocks) lies within +-target_ci of it and the two halves' medians agree as
    closely (checked every 0.2 s, between iterations), or at the cap; `min_seconds` is then
    ignored. The interval covers this run of this session; see shared.stats for what it cannot.
    """

    min_iterations: int = 64
    min_seconds: float = 2.0
    max_seconds: float = 60.0
    target_ci: float | None = None


@dataclass(frozen=True)
class SteadyState:
    """Raw steady-state latencies (ns) and the window's perf_counter_ns bounds."""

    latencies_ns: np.ndarray
    start_ns: int
    end_ns: int
    capped: bool
    stop_reason: str = "minimums met"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect the young generations, then keep the cyclic collector out of the timed phases.

    A full collection of the agent's heap costs ~20 ms per job and frees nothing the
    measurement made; the young generations hold the session's leftovers.
    """
    was_enabled = gc.isenabled()
    gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_once(run: RunFn, outputs: Any, feeds: Any) -> int:
    """One inference, timed in ns (used for the cold first inference)."""
    t0 = time.perf_counter_ns()
    run(outputs, feeds)
    return time.perf_counter_ns() - t0


def warm_up(run: RunFn, outputs: Any, feeds: Any, n: int, min_seconds: float) -> np.ndarray:
    """Run until at least `n` runs and `min_seconds` have passed; returns each run's ns."""
    perf = time.perf_counter_ns
    samples = array.array("q")
    deadline = perf() + int(min_seconds * 1e9)
    while True:
        t0 = perf()
        run(outputs, feeds)
        t1 = perf()
        samples.append(t1 - t0)
        if len(samples) >= n and t1 >= deadline:
            return np.frombuffer(samples, dtype=np.int64).copy()


def steady_state(
    run: RunFn,
    outputs: Any,
    feeds: Any,
    rule: StopRule,
    on_progress: ProgressFn | None = None,
) -> SteadyState:
    """Time inferences until `rule` says stop; every latency kept in ns."""
    perf = time.perf_counter_ns
    samples = array.array("q")
    append = samples.append
    min_n = rule.min_iterations
    adaptive = rule.target_ci is not None
    start = perf()
    min_deadline = start + (0 if adaptive else int(rule.min_seconds * 1e9))
    max_deadline = start + int(rule.max_seconds * 1e9)
    next_progress = start + _PROGRESS_EVERY_NS
    next_check = start
    reason = "minimums met"
    while True:
        t0 = perf()
        run(outputs, feeds)
        t1 = perf()
        append(t1 - t0)
        if t1 >= min_deadline and len(samples) >= min_n:
            if not adaptive:
                break
            if t1 >= next_check:  # between iterations: the check is never timed
                if median_ci_within(samples, rule.target_ci or 0.0):
                    reason = f"median 95% CI (time blocks) within +-{rule.target_ci:g}"
                    break
                next_check = perf() + _CI_CHECK_EVERY_NS
        if t1 >= max_deadline:
            reason = "max seconds"
            break
        if on_progress is not None and t1 >= next_progress:
            on_progress("steady", len(samples), t1 - start, samples)
            next_progress = t1 + _PROGRESS_EVERY_NS
    latencies = np.frombuffer(samples, dtype=np.int64).copy()
    capped = reason == "max seconds" and (adaptive or len(samples) < min_n or t1 < min_deadline)
    return SteadyState(latencies, start, t1, capped, reason)


def median_ci_within(samples: Sequence[int], fraction: float) -> bool:
    """True when the drift-aware 95 % CI of the median is within +-fraction of the median,
    and the medians of the first and second halves agree within the same fraction (O(n)).

    An order-statistic interval alone assumes independent runs; measured latency is
    autocorrelated and drifts (clocks, caches, other load), and on a shared 2-core machine a
    run stopped on it after 0.1-0.3 s missed the rest of its own run's median in 15 of 24
    replays. The batch-median interval widens when the time blocks disagree; the halves
    check refuses a steady trend, which the blocks' spread understates.
    """
    values = np.asarray(samples, dtype=np.float64)
    ci = median_ci_blocks(values)
    if ci is None:
        return False
    mid = values.size // 2
    median = float(np.median(values))
    if median <= 0:
        return False
    half_width = max(median - ci[0], ci[1] - median)
    drift = abs(float(np.median(values[:mid])) - float(np.median(values[mid:])))
    return max(half_width, drift) <= fraction * median
