"""The steady state under concurrency: N threads calling ``run`` at once, as a server would.

Why threads in one process: ORT's ``InferenceSession.run`` releases the GIL and is safe to call
from several threads on one session (``onnxruntime_perf_test -c`` does the same), so N Python
threads make N requests in flight. Each thread keeps its own samples (start and latency in ns,
stored after the second timestamp); the calling thread only decides when to stop, waking every
few milliseconds between checks, never inside a timed request. Inferences/s is the requests
completed over the window from the first request's start to the last one's end.
"""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.engine.timing import (
    _CI_CHECK_EVERY_NS,
    _PROGRESS_EVERY_NS,
    ProgressFn,
    RunFn,
    SteadyState,
    StopRule,
    median_ci_within,
    steady_state,
)

_CHECK_EVERY_S = 0.005


@dataclass(frozen=True)
class ConcurrentSteady:
    """The merged steady state (latencies ordered by start) and what each thread did."""

    steady: SteadyState
    starts_ns: np.ndarray
    per_thread: tuple[int, ...]


class _Worker(threading.Thread):
    """One request loop: time ``run`` until ``stop`` is set, keeping (start, latency) in ns."""

    def __init__(self, run: RunFn, outputs: Any, feeds: Any, go: threading.Barrier,
                 stop: threading.Event) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.run_fn, self.outputs, self.feeds, self.go, self.stop = run, outputs, feeds, go, stop
        self.starts = array.array("q")
        self.latencies = array.array("q")
        self.error: BaseException | None = None

    def run(self) -> None:
        perf, run, outputs, feeds = time.perf_counter_ns, self.run_fn, self.outputs, self.feeds
        starts, latencies, stop = self.starts.append, self.latencies.append, self.stop
        try:
            self.go.wait()
            while not stop.is_set():
                t0 = perf()
                run(outputs, feeds)
                t1 = perf()
                starts(t0)
                latencies(t1 - t0)
        except BaseException as exc:  # re-raised by the calling thread
            self.error = exc
            stop.set()


def steady_window(
    runs: Sequence[RunFn],
    outputs: Any,
    feeds: Any,
    concurrency: int,
    rule: StopRule,
    on_progress: ProgressFn | None = None,
) -> tuple[SteadyState, np.ndarray | None, tuple[int, ...]]:
    """The steady window, each request's start (ns; None for one thread, whose requests never
    overlap) and the requests of each thread: one thread as ever (agent.engine.timing), or
    `concurrency` threads over the sessions whose run functions `runs` holds."""
    if concurrency == 1 and len(runs) == 1:
        steady = steady_state(runs[0], outputs, feeds, rule, on_progress)
        return steady, None, (int(steady.latencies_ns.size),)
    both = steady_concurrent(runs, outputs, feeds, concurrency, rule, on_progress)
    return both.steady, both.starts_ns, both.per_thread


def steady_concurrent(
    runs: Sequence[RunFn],
    outputs: Any,
    feeds: Any,
    concurrency: int,
    rule: StopRule,
    on_progress: ProgressFn | None = None,
) -> ConcurrentSteady:
    """`concurrency` threads, thread i calling ``runs[i % len(runs)]`` (one run function per
    session), until `rule` holds over all requests together; raises what a request raised."""
    go, stop = threading.Barrier(concurrency + 1), threading.Event()
    workers = [_Worker(runs[i % len(runs)], outputs, feeds, go, stop) for i in range(concurrency)]
    for worker in workers:
        worker.start()
    go.wait()
    reason = _wait_for_rule(workers, rule, stop, on_progress)
    stop.set()
    for worker in workers:
        worker.join()
    for worker in workers:
        if worker.error is not None:
            raise worker.error
    return _merged(workers, rule, reason)


def _count(workers: Sequence[_Worker]) -> int:
    return sum(len(w.latencies) for w in workers)


def _wait_for_rule(
    workers: Sequence[_Worker], rule: StopRule, stop: threading.Event,
    on_progress: ProgressFn | None,
) -> str:  # fmt: skip
    """Why the window ended: the calling thread checks `rule` between waits on `stop`."""
    perf = time.perf_counter_ns
    start = perf()
    adaptive = rule.target_ci is not None
    min_deadline = start + (0 if adaptive else int(rule.min_seconds * 1e9))
    max_deadline = start + int(rule.max_seconds * 1e9)
    next_check, next_progress = start, start + _PROGRESS_EVERY_NS
    while not stop.wait(_CHECK_EVERY_S):
        now, n = perf(), _count(workers)
        if now >= min_deadline and n >= rule.min_iterations:
            if not adaptive:
                return "minimums met"
            if now >= next_check:
                if median_ci_within(_latencies(workers).tolist(), rule.target_ci or 0.0):
                    return f"median 95% CI (time blocks) within +-{rule.target_ci:g}"
                next_check = perf() + _CI_CHECK_EVERY_NS
        if now >= max_deadline:
            return "max seconds"
        if on_progress is not None and now >= next_progress:
            on_progress("steady", n, now - start, None)
            next_progress = now + _PROGRESS_EVERY_NS
    return "a request failed"


def _latencies(workers: Sequence[_Worker]) -> np.ndarray:
    return np.concatenate([np.frombuffer(w.latencies, dtype=np.int64) for w in workers])


def _merged(workers: Sequence[_Worker], rule: StopRule, reason: str) -> ConcurrentSteady:
    # a thread stopped between its append of the start and of the latency has one start more
    pairs = [(np.frombuffer(w.starts, dtype=np.int64)[: len(w.latencies)],
              np.frombuffer(w.latencies, dtype=np.int64)) for w in workers]  # fmt: skip
    starts = np.concatenate([s for s, _ in pairs])
    latencies = np.concatenate([lat for _, lat in pairs])
    order = np.argsort(starts, kind="stable")
    starts, latencies = starts[order].copy(), latencies[order].copy()
    begin = int(starts.min()) if starts.size else 0
    end = int((starts + latencies).max()) if starts.size else 0
    n = int(latencies.size)
    capped = reason == "max seconds" and (
        rule.target_ci is not None or n < rule.min_iterations
        or end - begin < int(rule.min_seconds * 1e9)
    )  # fmt: skip
    steady = SteadyState(latencies, begin, end, capped, reason)
    return ConcurrentSteady(steady, starts, tuple(len(lat) for _, lat in pairs))


def max_in_flight(starts_ns: np.ndarray, latencies_ns: np.ndarray) -> int:
    """The most requests running at one instant (an end at the very ns of a start counts as
    done first): what proves N threads really overlapped."""
    if starts_ns.size == 0:
        return 0
    ends = starts_ns + latencies_ns
    times = np.concatenate([starts_ns, ends])
    steps = np.concatenate([np.ones(starts_ns.size, np.int64), -np.ones(ends.size, np.int64)])
    order = np.lexsort((steps, times))  # by time, ends (-1) before starts (+1)
    return int(np.cumsum(steps[order]).max())


def throughput(steady: SteadyState, concurrency: int, sessions: int,
               per_thread: Sequence[int], in_flight: int) -> dict[str, Any]:  # fmt: skip
    """The document's ``throughput`` section: inferences/s over the window, and how it ran."""
    window_s = (steady.end_ns - steady.start_ns) / 1e9
    n = int(steady.latencies_ns.size)
    return {
        "concurrency": concurrency,
        "sessions": sessions,
        "requests": n,
        "window_s": window_s,
        "inferences_per_s": n / window_s if window_s > 0 else None,
        "per_thread_requests": list(per_thread),
        "max_in_flight": in_flight,
    }
