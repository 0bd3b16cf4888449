"""The jobs an agent holds: a queue, and at most one running on a thread, never overlapping.

The job thread only waits for agent.jobs.worker.run_job (the measuring happens in a child
process); its progress and its outcome travel back to the network loop (agent.link.loop) as
events on a queue, and a byte written to a wake-up pipe makes the loop's poll return at once
instead of at its next timeout.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.jobs.worker import run_job
from shared import protocol
from shared.log_safe import safe

log = logging.getLogger("flopgap.agent")


class Jobs:
    """Queued jobs, the running one, and the events its thread posts to the loop."""

    def __init__(
        self, memory_limit_bytes: int | None, cancel: threading.Event, agent_name: str = ""
    ) -> None:
        self.memory_limit_bytes = memory_limit_bytes
        self.agent_name = agent_name  # names this agent in the device lock's note
        self.cancel = cancel  # set: a running job's child is stopped
        self._queued: collections.deque[protocol.Job] = collections.deque()
        self.running: protocol.Job | None = None
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.wake_fd, self._wake_w = os.pipe()  # the loop polls wake_fd
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)

    def current(self) -> str:
        """The job this agent holds: running, or next in line (e.g. waiting for its model)."""
        if self.running is not None:
            return self.running.job_id
        return self._queued[0].job_id if self._queued else ""

    def add(self, job: protocol.Job) -> None:
        known = {j.job_id for j in self._queued} | (
            {self.running.job_id} if self.running else set()
        )
        if job.job_id in known:
            return  # a re-dispatch of what we already hold
        self._queued.append(job)

    def next_waiting(self) -> protocol.Job | None:
        """The job to start next, or None while one runs or none is queued."""
        if self.running is not None or not self._queued:
            return None
        return self._queued[0]

    def start(self, job: protocol.Job, path: Path) -> None:
        """Start `job` (from next_waiting) on its thread, with its model at `path`."""
        self._queued.popleft()
        self.running = job
        log.info("job %s: measuring %s", safe(job.job_id[:8]), safe(job.model_name))
        threading.Thread(target=self._run, args=(job, path), name="flopgap-job",
                         daemon=True).start()  # fmt: skip

    def finished(self) -> None:
        """The running job's outcome is handled: the next one may start."""
        self.running = None

    def _run(self, job: protocol.Job, path: Path) -> None:
        """In the job thread: the child process measures; progress and outcome go to the loop."""
        outcome = run_job(
            path, job.settings, job.model_name, job.timeout_s,
            on_progress=lambda p: self._post("progress", (job.job_id, p)),
            memory_limit_bytes=self.memory_limit_bytes,
            cancel=self.cancel,
            holder=f"flopgap-agent run --name {self.agent_name}: job {job.job_id[:8]} "
                   f"({job.model_name})",
        )  # fmt: skip
        self._post("outcome", (job, outcome))

    def _post(self, kind: str, payload: Any) -> None:
        """From another thread: queue an event and wake the loop."""
        self._events.put((kind, payload))
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:  # the pipe is full of wake-ups already: the loop will see it
            pass

    def drain_wake(self) -> None:
        """Empty the wake-up pipe (the loop saw it readable)."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def events(self) -> Iterator[tuple[str, Any]]:
        """The posted events, oldest first, until none is left: ("progress", (job_id,
        progress dict)) or ("outcome", (job, agent.jobs.worker.JobOutcome))."""
        while True:
            try:
                yield self._events.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        os.close(self.wake_fd)
        os.close(self._wake_w)
