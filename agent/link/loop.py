"""The agent's network loop: register with a collector, run its jobs one at a time, reply.

The agent connects out (agent.link.connection: DEALER to the collector's ROUTER), so a board behind
NAT works, and ZeroMQ reconnects forever with exponential backoff. Every (re)connection
triggers one fresh Register (naming the job in flight) and, once it is welcomed, one paced
resend of every unacknowledged result from the on-disk spool (agent.link.session), so a
collector restart costs nothing and never a storm. Jobs run in child
processes (agent.jobs.worker, waited for on a thread: agent.link.job_thread); this loop only waits
with
bounded polls, never sleeps, and stops cleanly on SIGTERM or SIGINT. It never imports
onnxruntime or psutil: the device descriptor it registers with comes from the fork server
(agent.jobs.worker), which has both loaded anyway.

With keys (`--keys` secret file, `--collector-key` pinned public key) the connection is
CURVE-encrypted and the collector knows this agent by its key, not by --name. A collector that
refuses the key ends the agent with exit code 2 and a hint, since libzmq does not retry an
authentication failure.

Given several collectors (sharing one store), the agent uses one at a time and moves to the
next when it has been gone for the heartbeat timeout (agent.link.endpoints); its unacknowledged
results are resent to whichever welcomes it, and their result ids keep that idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from agent import __version__
from agent.board.tags import parse_tags  # noqa: F401  (importable from here, as before)
from agent.jobs.worker import JobOutcome, start_server, stop_server
from agent.link.connection import CONNECTED, FATAL, LOST, Connection
from agent.link.endpoints import FAILOVER_AFTER_BEATS, Endpoint, Endpoints
from agent.link.job_thread import Jobs
from agent.link.model_cache import ModelCache
from agent.link.model_fetch import ModelFetch
from agent.link.reports import progress_message, result_frames, upload_optimized_graph
from agent.link.resend import ResendLater
from agent.link.session import Session
from agent.link.spool import Spool
from agent.link.unacked import Unacked
from shared import protocol
from shared.errors import ProtocolError
from shared.keys import PeerKeys
from shared.log_lines import LineFormatter
from shared.log_safe import safe

log = logging.getLogger("flopgap.agent")

POLL_MS = 100


class Agent:
    """One agent: a connection, a spool, a model cache and at most one running job."""

    def __init__(
        self,
        endpoint: str | Sequence[Endpoint],
        name: str,
        tags: dict[str, str],
        spool: Spool,
        cache: ModelCache,
        memory_limit_bytes: int | None = None,
        keys: PeerKeys | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        listed = [Endpoint(endpoint)] if isinstance(endpoint, str) else list(endpoint)
        self.endpoints = Endpoints(listed)  # agent.link.endpoints: the collectors, in order
        self.name, self.tags = name, tags
        self.spool, self.cache = spool, cache
        self.stop = threading.Event()
        self.heartbeat_s = 1.0
        self.exit_code = 0
        self.jobs = Jobs(memory_limit_bytes, cancel=self.stop, agent_name=name)
        self.unacked = Unacked(spool)  # resent at every (re)connection until acknowledged
        self.resend = ResendLater()  # and after a Reject(busy), paced
        self.instance = uuid.uuid4().hex  # tells the collector a reconnect from a restart
        self.device: dict[str, Any] = {}  # agent.board.device.describe(), from the fork server
        self.conn = Connection(keys, max_message_bytes)
        self.session = Session()  # this connection's Register, Welcome and resends
        self.models = ModelFetch(cache, self.conn.send)

    def serve(self) -> int:
        """Run until stopped; returns the process exit code."""
        # The fork server pays the imports once, not per job (`flopgap-agent run` has forked
        # it already, before this process had threads); it also describes the device.
        self.device = start_server().device
        first = self.endpoints.current
        self.endpoints.connecting()
        self.conn.connect(first.address, first.server_key, self._ping_timeout())
        log.info("agent %s connecting to %s", self.name, first.address)
        poller = zmq.Poller()
        poller.register(self.conn.sock, zmq.POLLIN)
        poller.register(self.conn.monitor, zmq.POLLIN)
        poller.register(self.jobs.wake_fd, zmq.POLLIN)
        next_beat = time.monotonic()
        try:
            while not self.stop.is_set():
                ready = dict(poller.poll(POLL_MS))
                if self.conn.monitor in ready:
                    self._connection_event(self.conn.read_event())
                self.conn.tick()  # a failed secure handshake's paced retry
                self._maybe_fail_over()
                if self.conn.sock in ready:
                    self._handle(self.conn.sock.recv_multipart())
                if self.jobs.wake_fd in ready:
                    self.jobs.drain_wake()
                self._drain_events()
                self._maybe_start_job()
                self._tick_session()
                if self.resend.due():  # the collector said busy: offer the spool again
                    self.session.retry(self.unacked.ids())
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_s
        finally:
            stop_server()
            self.jobs.close()
            self.conn.close()
        return self.exit_code

    # --- collector --------------------------------------------------------------------------

    def _connection_event(self, what: str | None) -> None:
        if what == CONNECTED:
            self.endpoints.up()
            self.session.connected()
            self._register()
        elif what == LOST:
            self.endpoints.down()
            self.session.lost()
        elif what == FATAL:
            self.exit_code = 2
            self.stop.set()

    def _failover_s(self) -> float:
        """How long a collector may be gone before the next one is tried."""
        return self.heartbeat_s * FAILOVER_AFTER_BEATS

    def _ping_timeout(self) -> float | None:
        """With somewhere else to go, a frozen collector must read as gone: ZMTP pings."""
        return self._failover_s() if self.endpoints.several else None

    def _maybe_fail_over(self) -> None:
        """Move to the next collector once the current one is gone for the heartbeat timeout;
        the Register and the resend of every unacknowledged result follow its handshake."""
        timeout = self._failover_s()
        if not self.endpoints.should_move(timeout):
            return
        gone = self.endpoints.current.address
        nxt = self.endpoints.advance()
        log.warning("collector %s gone for over %g s: moving to %s (unacknowledged results "
                    "go there)", gone, timeout, nxt.address)  # fmt: skip
        self.session.lost()
        self.conn.move(nxt.address, nxt.server_key, self._ping_timeout())

    def _register(self) -> None:
        """One Register for this connection; the unacked results follow its Welcome."""
        descriptor = {**self.device, "agent_instance": self.instance}
        self.conn.send(
            protocol.Register(self.name, __version__, descriptor, self.tags, self.jobs.current())
        )
        self.session.register_sent()
        self.models.reconnected()

    def _tick_session(self) -> None:
        """Register again if the last Register went unanswered; send the next few resends."""
        if self.session.should_register():
            self._register()
        due = self.session.due()
        if due:
            for result_id in due:
                log.info("resending unacknowledged result %s", result_id[:8])
            self.session.resend(due, self.unacked.frames, self.conn.send_frames)

    def _heartbeat(self) -> None:
        """A beat, only once welcomed: beats before it would each be refused as unregistered."""
        if not self.session.registered:
            return
        job = self.jobs.current()
        self.conn.send(protocol.Heartbeat("busy" if job else "idle", job))

    def _handle(self, frames: list[bytes]) -> None:
        try:
            msg = protocol.decode(frames)
        except ProtocolError as exc:
            log.error("ignored a malformed message from the collector: %s", safe(exc))
            return
        if isinstance(msg, protocol.Welcome):
            self.heartbeat_s = msg.heartbeat_interval_s
            log.info("registered as %s", safe(msg.agent_id))
            self.session.welcomed(self.unacked.ids())
        elif isinstance(msg, protocol.Job):
            self.jobs.add(msg)
        elif isinstance(msg, protocol.ModelData):
            self.models.received(msg)
        elif isinstance(msg, protocol.Ack):
            self.unacked.ack(msg.result_id)
            self.resend.acked()
        elif isinstance(msg, protocol.Reject):
            self._rejected(msg)

    def _rejected(self, msg: protocol.Reject) -> None:
        if msg.code == "unregistered":
            if self.session.unregistered():  # else a Register is already on its way
                log.info("the collector does not know us (it restarted?): registering again")
                self._register()
        elif msg.code == "version":
            log.error("collector refused us: %s (%s)", safe(msg.reason), safe(msg.hint))
            self.exit_code = 2
            self.stop.set()
        elif msg.code == "busy":  # rate or full disk: results stay spooled, resent later
            delay = self.resend.arm()
            if delay is not None:
                log.warning("collector is busy: %s; resending unacknowledged results in %g s",
                            safe(msg.reason), delay)  # fmt: skip
        else:
            log.warning("collector refused a message: %s (%s)", safe(msg.reason), safe(msg.hint))

    # --- jobs -------------------------------------------------------------------------------

    def _maybe_start_job(self) -> None:
        """Start the next job once its model is cached; one job at a time, never overlapping."""
        job = self.jobs.next_waiting()
        if job is None:
            return
        path = self.models.path(job.model_sha256)
        if path is not None:
            self.jobs.start(job, path)

    def _drain_events(self) -> None:
        for kind, payload in self.jobs.events():
            if kind == "progress":
                if self.session.registered:  # else it would only be refused
                    self.conn.send(progress_message(*payload))
            else:
                self._finish(*payload)

    def _finish(self, job: protocol.Job, outcome: JobOutcome) -> None:
        """Spool the job's result (or its failure), then send it; the next job may start."""
        result_id = uuid.uuid4().hex
        if outcome.document is not None:
            upload_optimized_graph(outcome.document, self.conn.send)
        frames = result_frames(job, outcome, result_id)
        self.unacked.put(result_id, frames)
        self.jobs.finished()
        log.info("job %s: %s", safe(job.job_id[:8]), "done" if outcome.ok else outcome.error_kind)
        if self.session.registered:  # else it goes with the resends after the next Welcome
            self.conn.send_frames(frames)
            self.session.sent(result_id)


def run_agent(
    endpoint: str | Sequence[Endpoint],
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

    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter("agent"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    listed = [Endpoint(endpoint)] if isinstance(endpoint, str) else list(endpoint)
    for each in listed:
        require_safe(each.address, insecure, "connect to", keys=keys is not None)
    spool = Spool(spool_dir, spool_max_bytes)
    agent = Agent(listed, name, tags, spool, ModelCache(cache_dir, cache_max_bytes),
                  memory_limit_bytes, keys, max_message_bytes)  # fmt: skip

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return agent.serve()
