"""The agent's network loop: register with a collector, run its jobs one at a time, reply.

The agent connects out (DEALER to the collector's ROUTER), so a board behind NAT works, and
ZeroMQ reconnects forever with exponential backoff. Every (re)connection triggers a fresh
Register (naming the job in flight) and a resend of every unacknowledged result from the
on-disk spool, so a collector restart costs nothing. Jobs run in child processes
(agent.worker); this loop only waits with bounded polls, never sleeps, and stops cleanly on
SIGTERM or SIGINT. It never imports onnxruntime or psutil: the device descriptor it
registers with comes from the fork server (agent.worker), which has both loaded anyway.

With keys (`--keys` secret file, `--collector-key` pinned public key) the connection is
CURVE-encrypted and the collector knows this agent by its key, not by --name. A collector that
refuses the key ends the agent with exit code 2 and a hint, since libzmq does not retry an
authentication failure. Sends never block: a message the socket cannot queue is dropped
(heartbeats are periodic, results stay in the spool and are resent on reconnect).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import queue
import shutil
import struct
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import zmq

from agent import __version__
from agent.model_cache import ModelCache
from agent.spool import Spool, SpoolError
from agent.worker import JobOutcome, run_job, start_server, stop_server
from shared import protocol
from shared.errors import FlopgapError, ProtocolError
from shared.keys import PeerKeys
from shared.transport import configure_client

log = logging.getLogger("flopgap.agent")

POLL_MS = 100
RECONNECT_MIN_MS = 100
RECONNECT_MAX_MS = 5000
_MONITOR_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class Agent:
    """One agent: a socket, a spool, a model cache and at most one running job."""

    def __init__(
        self,
        endpoint: str,
        name: str,
        tags: dict[str, str],
        spool: Spool,
        cache: ModelCache,
        memory_limit_bytes: int | None = None,
        keys: PeerKeys | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.endpoint, self.name, self.tags = endpoint, name, tags
        self.spool, self.cache = spool, cache
        self.memory_limit_bytes = memory_limit_bytes
        self.stop = threading.Event()
        self.heartbeat_s = 1.0
        self.exit_code = 0
        self._jobs: collections.deque[protocol.Job] = collections.deque()
        self._running: protocol.Job | None = None
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        # The job and progress threads write a byte here after queueing an event, so the
        # loop wakes at once instead of at its next poll timeout.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._unspooled: dict[str, list[bytes]] = {}  # results the spool could not hold
        self._requested: set[str] = set()
        self.instance = uuid.uuid4().hex  # tells the collector a reconnect from a restart
        self.device: dict[str, Any] = {}  # agent.device.describe(), from the fork server
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)  # unacked results are in the spool, not the socket
        self.sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MIN_MS)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
        configure_client(self.sock, keys, max_message_bytes)  # before connect (in serve)
        self.keyed = keys is not None
        self._handshake_warned = False
        self.monitor = self.sock.get_monitor_socket(_MONITOR_EVENTS)

    def serve(self) -> int:
        """Run until stopped; returns the process exit code."""
        # The fork server pays the imports once, not per job (`flopgap-agent run` has forked
        # it already, before this process had threads); it also describes the device.
        self.device = start_server().device
        self.sock.connect(self.endpoint)
        log.info("agent %s connecting to %s", self.name, self.endpoint)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        next_beat = time.monotonic()
        try:
            while not self.stop.is_set():
                ready = dict(poller.poll(POLL_MS))
                if self.monitor in ready:
                    self._connection_event(_monitor_event(self.monitor.recv_multipart()))
                if self.sock in ready:
                    self._handle(self.sock.recv_multipart())
                if self._wake_r in ready:
                    _drain_pipe(self._wake_r)
                self._drain_events()
                self._maybe_start_job()
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_s
        finally:
            stop_server()
            self.sock.disable_monitor()
            os.close(self._wake_r)
            os.close(self._wake_w)
            self.monitor.close()
            self.sock.close()
        return self.exit_code

    # --- connection ------------------------------------------------------------------------

    def _send(self, msg: protocol.Message) -> None:
        self._send_frames(protocol.encode(msg))

    def _send_frames(self, frames: list[bytes]) -> None:
        """Queue frames without blocking; with the queue full (no collector for a long time)
        the message is dropped, never the loop: heartbeats recur, results are spooled."""
        try:
            self.sock.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            log.debug("send queue full: dropped a message")

    def _connection_event(self, kind: int) -> None:
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._handshake_warned = False
            log.info("connected to the collector")
            self._register()
        elif kind in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            self._fatal_handshake(kind)
        elif kind == zmq.EVENT_DISCONNECTED:
            log.warning("lost the collector; reconnecting (results stay in the spool)")
        elif not self._handshake_warned:  # repeats at every reconnect: say it once
            self._handshake_warned = True
            log.warning("secure handshake with the collector failed: check --collector-key")

    def _fatal_handshake(self, kind: int) -> None:
        """libzmq never retries these two failures: say what to fix and stop (exit code 2)."""
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            log.error(
                "the collector refused this agent's key; on the collector run "
                "`flopgap keys agent NAME` and copy NAME.key_secret here (--keys), with its "
                "collector.key (--collector-key)"
            )
        else:
            log.error(
                "the collector %s; agent and collector must both use keys, or both not",
                "does not use keys" if self.keyed else "requires CURVE keys (--keys, "
                "--collector-key)",
            )  # fmt: skip
        self.exit_code = 2
        self.stop.set()

    def _current_job(self) -> str:
        """The job this agent holds: running, or next in line (e.g. waiting for its model)."""
        if self._running is not None:
            return self._running.job_id
        return self._jobs[0].job_id if self._jobs else ""

    def _register(self) -> None:
        descriptor = {**self.device, "agent_instance": self.instance}
        self._send(
            protocol.Register(self.name, __version__, descriptor, self.tags, self._current_job())
        )
        self._requested.clear()
        for result_id, frames in [*self.spool.pending(), *self._unspooled.items()]:
            log.info("resending unacknowledged result %s", result_id[:8])
            self._send_frames(frames)

    def _heartbeat(self) -> None:
        job = self._current_job()
        self._send(protocol.Heartbeat("busy" if job else "idle", job))

    def _handle(self, frames: list[bytes]) -> None:
        try:
            msg = protocol.decode(frames)
        except ProtocolError as exc:
            log.error("ignored a malformed message from the collector: %s", exc)
            return
        if isinstance(msg, protocol.Welcome):
            self.heartbeat_s = msg.heartbeat_interval_s
            log.info("registered as %s", msg.agent_id)
        elif isinstance(msg, protocol.Job):
            self._queue_job(msg)
        elif isinstance(msg, protocol.ModelData):
            self._requested.discard(msg.sha256)  # a later corruption or failure asks again
            try:
                self.cache.put(msg.sha256, msg.model)
            except FlopgapError as exc:  # hash mismatch or disk trouble: ask once more later
                log.error("could not cache model %s: %s", msg.sha256[:12], exc)
        elif isinstance(msg, protocol.Ack):
            self.spool.ack(msg.result_id)
            self._unspooled.pop(msg.result_id, None)
        elif isinstance(msg, protocol.Reject):
            self._rejected(msg)

    def _rejected(self, msg: protocol.Reject) -> None:
        if msg.code == "unregistered":
            log.info("the collector does not know us (it restarted?): registering again")
            self._register()
        elif msg.code == "version":
            log.error("collector refused us: %s (%s)", msg.reason, msg.hint)
            self.exit_code = 2
            self.stop.set()
        else:
            log.warning("collector refused a message: %s (%s)", msg.reason, msg.hint)

    # --- jobs -------------------------------------------------------------------------------

    def _queue_job(self, job: protocol.Job) -> None:
        known = {j.job_id for j in self._jobs} | (
            {self._running.job_id} if self._running else set()
        )
        if job.job_id in known:
            return  # a re-dispatch of what we already hold
        self._jobs.append(job)

    def _maybe_start_job(self) -> None:
        """Start the next job once its model is cached; one job at a time, never overlapping."""
        if self._running is not None or not self._jobs:
            return
        job = self._jobs[0]
        path = self.cache.get(job.model_sha256)
        if path is None:
            if job.model_sha256 not in self._requested:
                self._requested.add(job.model_sha256)
                self._send(protocol.ModelRequest(job.model_sha256))
            return
        self._jobs.popleft()
        self._running = job
        log.info("job %s: measuring %s", job.job_id[:8], job.model_name)
        threading.Thread(target=self._run, args=(job, path), name="flopgap-job",
                         daemon=True).start()  # fmt: skip

    def _run(self, job: protocol.Job, path: Path) -> None:
        """In the job thread: the child process measures; progress and outcome go to the loop."""
        outcome = run_job(
            path, job.settings, job.model_name, job.timeout_s,
            on_progress=lambda p: self._post("progress", (job.job_id, p)),
            memory_limit_bytes=self.memory_limit_bytes,
            cancel=self.stop,
        )  # fmt: skip
        self._post("outcome", (job, outcome))

    def _post(self, kind: str, payload: Any) -> None:
        """From another thread: queue an event and wake the loop."""
        self._events.put((kind, payload))
        try:
            os.write(self._wake_w, b"!")
        except BlockingIOError:  # the pipe is full of wake-ups already: the loop will see it
            pass

    def _drain_events(self) -> None:
        while True:
            try:
                kind, payload = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                job_id, progress = payload
                self._send(protocol.Progress(job_id, _plain(progress)))
            else:
                self._finish(*payload)

    def _upload_optimized_graph(self, document: dict[str, Any]) -> None:
        """Send the graph ORT actually ran (from the profiling pass) so the collector can join
        per-node times to its FLOPs; the local copy is removed and its path left out."""
        profile = document.get("op_profile")
        if not profile or not profile.get("optimized_model_file"):
            return
        path = Path(profile.pop("optimized_model_file"))
        try:
            data = path.read_bytes()
            self._send(protocol.ModelData(hashlib.sha256(data).hexdigest(), data))
        except (OSError, ProtocolError) as exc:
            log.warning("could not send the optimized graph: %s", exc)
        shutil.rmtree(path.parent, ignore_errors=True)

    def _finish(self, job: protocol.Job, outcome: JobOutcome) -> None:
        result_id = uuid.uuid4().hex
        msg: protocol.Message
        if outcome.document is not None:
            self._upload_optimized_graph(outcome.document)
        if outcome.ok and outcome.document is not None and outcome.latencies_ns is not None:
            msg = protocol.Result(job.job_id, result_id, outcome.document, outcome.latencies_ns)
        else:
            msg = protocol.JobFailed(job.job_id, result_id, outcome.error_kind or "unknown",
                                     (outcome.error or "no error text")[:60_000])  # fmt: skip
        try:
            frames = protocol.encode(msg)
        except ProtocolError as exc:  # e.g. a document over the size limit: say so, lose nothing
            frames = protocol.encode(protocol.JobFailed(job.job_id, result_id, "protocol_error",
                                                        str(exc)[:60_000]))  # fmt: skip
        try:
            self.spool.put(result_id, frames)
        except SpoolError as exc:
            log.error("spool cannot keep result %s (%s); holding it in memory", result_id[:8], exc)
            self._unspooled[result_id] = frames
        self._running = None
        log.info("job %s: %s", job.job_id[:8], "done" if outcome.ok else outcome.error_kind)
        self._send_frames(frames)


def _monitor_event(frames: list[bytes]) -> int:
    """The event of a ZeroMQ monitor message (u16 event, u32 value; then the endpoint), read
    here because pyzmq's recv_monitor_message imports asyncio: ~2 MiB of the agent's memory."""
    return int(struct.unpack_from("=H", frames[0])[0])


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _plain(progress: dict[str, Any]) -> dict[str, Any]:
    """Progress values as plain JSON numbers and strings (the wire refuses numpy scalars)."""
    out: dict[str, Any] = {}
    for key, value in progress.items():
        out[str(key)] = value if isinstance(value, (str, int, float, type(None))) else float(value)
    return out


def parse_tags(items: list[str]) -> dict[str, str]:
    """`key=value` strings into a dict; UsageError on anything else."""
    from shared.errors import UsageError

    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad tag {item!r}", hint="write tags as key=value, e.g. board=pi5")
        tags[key] = value
    return tags


def run_agent(
    endpoint: str,
    name: str,
    tags: dict[str, str],
    spool_dir: Path,
    cache_dir: Path,
    cache_max_bytes: int,
    memory_limit_bytes: int | None,
    insecure: bool,
    keys: PeerKeys | None = None,
    max_message_bytes: int | None = None,
    spool_max_bytes: int | None = None,
) -> int:
    """Entry point of `flopgap-agent run`; `spool_max_bytes` caps the on-disk outbox."""
    import signal

    from shared.transport import require_safe

    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    require_safe(endpoint, insecure, "connect to", keys=keys is not None)
    spool = Spool(spool_dir, spool_max_bytes)
    agent = Agent(endpoint, name, tags, spool, ModelCache(cache_dir, cache_max_bytes),
                  memory_limit_bytes, keys, max_message_bytes)  # fmt: skip

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return agent.serve()
