"""The collector's network loop: a ZeroMQ ROUTER that registers agents, runs campaigns and
stores results before acknowledging them.

Every frame is decoded and validated (shared.protocol) before it has any effect; a bad frame
gets a Reject and the loop serves on. State lives in the store, so a restarted collector
resumes: jobs left running are requeued, and agents re-register with what they are running.

With CURVE keys (an `Allowlist`), a peer is who its key says: the ZAP User-Id ("agent:NAME" or
"client:NAME") of each message, never the name a Register claims. Agents may only act as
agents and clients only submit, upload and ask for status. Each peer is rate limited
(collector.ratelimit), and replies never block the loop on a peer that does not read them.

This module receives, sends and routes each message to its handler; the handlers live in
collector.agent_lifecycle (register, adopt, missing agents), collector.job_flow (dispatch,
results, failures), collector.submit (campaigns) and collector.refusals (roles, Rejects).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import zmq

from collector import agent_lifecycle, job_flow
from collector.model_store import ModelStore
from collector.ratelimit import RateLimiter
from collector.refusals import Refused, check_role, reject_for
from collector.registry import AgentRecord, Registry
from collector.status import status_document
from collector.store import Store
from collector.submit import submit
from shared import protocol
from shared.errors import FlopgapError, ProtocolError, UsageError
from shared.keys import Allowlist

__all__ = ["BATCH_MAX", "HEARTBEAT_S", "MISSING_AFTER_BEATS", "POLL_MS", "Collector", "Refused"]

log = logging.getLogger("flopgap.collector")

POLL_MS = 100
HEARTBEAT_S = 1.0
MISSING_AFTER_BEATS = 5
BATCH_MAX = 256  # messages handled per store transaction (group commit)
REJECT_LOGS_PER_MINUTE = 10  # per peer; a flood of bad messages must not flood the log


class Collector:
    """Owns the ROUTER socket, the registry and the store; call serve() from one thread."""

    def __init__(
        self,
        socket: zmq.Socket[bytes],
        store: Store,
        models: ModelStore,
        heartbeat_s: float = HEARTBEAT_S,
        allowlist: Allowlist | None = None,
        limiter: RateLimiter | None = None,
        calibrate: bool = True,
    ) -> None:
        self.sock = socket
        self.allowlist = allowlist  # None: loopback dev mode, claimed names are trusted
        self.limiter = limiter if limiter is not None else RateLimiter()  # empty is falsy
        self._reject_logs = RateLimiter(REJECT_LOGS_PER_MINUTE / 60, REJECT_LOGS_PER_MINUTE)
        self.store = store
        self.models = models
        self.heartbeat_s = heartbeat_s
        self.calibrate = calibrate  # ask each agent to calibrate once per threads setting
        self.registry = Registry(missing_after_s=heartbeat_s * MISSING_AFTER_BEATS)
        self.stop = threading.Event()
        self.counters = {"rejected": 0, "results": 0, "duplicates": 0, "dropped": 0,
                         "unsent": 0, "auth_denied": 0, "name_mismatch": 0,
                         "commits": 0}  # fmt: skip
        self.progress: dict[str, dict[str, Any]] = {}
        self._deferred: list[tuple[bytes, protocol.Message]] | None = None
        requeued = store.requeue_running()
        if requeued:
            log.info("resuming: %d jobs left running by the previous collector requeued", requeued)

    def serve(self) -> int:
        while not self.stop.is_set():
            if self.sock.poll(POLL_MS):
                self._receive_batch()
            agent_lifecycle.check_liveness(self)
            if self.allowlist is not None:
                self.counters["auth_denied"] = self.allowlist.denied
        return 0

    def _receive_batch(self) -> None:
        """Handle the messages waiting (up to BATCH_MAX) in one store transaction, then send
        the replies: one durable commit for many results, and no ack before its commit."""
        self._deferred = []
        try:
            with self.store.batch():
                for _ in range(BATCH_MAX):
                    self._receive()
                    if not self.sock.poll(0):
                        break
            self.counters["commits"] += 1  # results / commits: the group commit's batch size
        finally:
            deferred, self._deferred = self._deferred, None
        for routing_id, msg in deferred:
            self._send(routing_id, msg)

    def _receive(self) -> None:
        """One message: find who sent it, drop it if that peer is over its rate, else handle."""
        parts = self.sock.recv_multipart(copy=False)
        routing_id = parts[0].bytes
        identity: str | None = None
        if self.allowlist is not None:
            identity = str(parts[0].get("User-Id"))  # set by ZAP from the CURVE key
            if not self.allowlist.allows(identity):  # key removed since its handshake
                self.counters["dropped"] += 1
                return
        peer = identity or routing_id
        if not self.limiter.allow(peer):
            self._drop(routing_id, peer)
            return
        self._handle(routing_id, [part.buffer for part in parts[1:]], identity)

    def _drop(self, routing_id: bytes, peer: bytes | str) -> None:
        """Count a message over the peer's rate; once a minute, log it and tell the peer."""
        self.counters["dropped"] += 1
        dropped = self.limiter.report(peer)
        if dropped:
            rate = self.limiter.rate
            log.warning("peer %s is over %g messages/s: dropped %d messages", _peer(peer), rate,
                        dropped)  # fmt: skip
            reason = f"over {rate:g} messages/s: {dropped} messages dropped"
            reject = protocol.Reject(reason, "send fewer messages a second",
                                     protocol.PROTOCOL_VERSION, "busy")  # fmt: skip
            self._send(routing_id, reject)

    def _send(self, routing_id: bytes, msg: protocol.Message) -> None:
        """Send without blocking: a peer that does not read its replies loses them, and the
        loop keeps serving everyone else (ROUTER_MANDATORY would block on a full queue).
        Inside a batch, replies wait until the batch has committed."""
        if self._deferred is not None:
            self._deferred.append((routing_id, msg))
            return
        try:
            self.sock.send_multipart([routing_id, *protocol.encode(msg)], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.counters["unsent"] += 1
        except zmq.ZMQError as exc:  # the peer went away (ROUTER_MANDATORY): it will retry
            log.info("could not reach a peer: %s", exc)

    def _reject(self, routing_id: bytes, exc: FlopgapError, code: str) -> None:
        """Tell the sender why its message was refused, in words meant for the sender."""
        self.counters["rejected"] += 1
        if self._reject_logs.allow(routing_id):
            log.warning("rejected a message: %s", exc)
        elif self._reject_logs.report(routing_id):
            log.warning("peer %s keeps sending refused messages: logging a few a minute",
                        routing_id.hex())  # fmt: skip
        self._send(routing_id, reject_for(exc, code))

    def _handle(
        self, routing_id: bytes, frames: Sequence[bytes | memoryview], identity: str | None = None
    ) -> None:
        try:
            msg = protocol.decode(frames)
        except ProtocolError as exc:
            self._reject(routing_id, exc, "malformed")
            return
        try:
            check_role(msg, identity)
            self._dispatch_message(routing_id, msg, identity)
        except Refused as exc:
            self._reject(routing_id, exc, exc.code)
        except (ProtocolError, UsageError) as exc:
            self._reject(routing_id, exc, "refused")

    def _dispatch_message(
        self, routing_id: bytes, msg: protocol.Message, identity: str | None
    ) -> None:
        if isinstance(msg, protocol.Register):
            agent_lifecycle.register(self, routing_id, msg, identity)
        elif isinstance(msg, protocol.SubmitCampaign):
            submit(self, routing_id, msg)
        elif isinstance(msg, protocol.ModelData):
            self.models.put(msg.model)
        elif isinstance(msg, protocol.StatusRequest):
            self._send(routing_id, protocol.Status(status_document(self, msg.campaign)))
        else:
            agent = self.registry.by_route(routing_id)
            if agent is None or (identity is not None and identity != f"agent:{agent.agent_id}"):
                raise Refused(
                    "message from an unregistered agent", "unregistered", hint="send Register first"
                )
            self.registry.touch(agent)
            self._agent_message(agent, msg)

    def _agent_message(self, agent: AgentRecord, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Heartbeat):
            if msg.job_id and agent.running is None:
                agent_lifecycle.adopt_running(self, agent, msg.job_id)
        elif isinstance(msg, protocol.Progress):
            self.progress[msg.job_id] = {**msg.progress, "agent": agent.agent_id}
        elif isinstance(msg, protocol.ModelRequest):
            data = self.models.read(msg.sha256)
            if data is None:
                raise ProtocolError(f"the collector has no model {msg.sha256[:12]}")
            self._send(agent.routing_id, protocol.ModelData(msg.sha256, data))
            log.info("sent model %s (%d bytes) to %s", msg.sha256[:12], len(data), agent.agent_id)
        elif isinstance(msg, (protocol.Result, protocol.JobFailed)):
            job_flow.complete(self, agent, msg)
        else:
            raise ProtocolError(f"unexpected {type(msg).__name__} from an agent")
        job_flow.dispatch(self, agent)


def _peer(peer: bytes | str) -> str:
    """A peer for a log line: its identity, or its routing id in hex."""
    return peer if isinstance(peer, str) else peer.hex()
