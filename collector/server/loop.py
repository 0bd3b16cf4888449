"""The collector's network loop: a ZeroMQ ROUTER that registers agents, runs campaigns and
stores results before acknowledging them.

Every frame is decoded and validated (shared.protocol) before it has any effect; a bad frame
gets a Reject and the loop serves on. State lives in the store, so a restarted collector
resumes: jobs left running are requeued, and agents re-register with what they are running.
Several collectors may share one store: each holds a lease renewed every heartbeat
(collector.server.lease_watch) and polls what the others changed (collector.server.shared_store).

With CURVE keys (an `Allowlist`), a peer is who its key says: the ZAP User-Id ("agent:NAME" or
"client:NAME") of each message, never the name a Register claims. Each peer is rate limited
(collector.server.ratelimit), and replies never block the loop on a peer that does not read them.

This module receives, sends and routes; collector.server.table says which handler (in
collector.server.handlers) answers each message and who may send it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import zmq

from collector.server import disk
from collector.server.context import Context, Refused, Sender
from collector.server.handlers import agents, jobs
from collector.server.lease_watch import LeaseWatch
from collector.server.ratelimit import RateLimiter
from collector.server.registry import Registry
from collector.server.shared_store import SharedStore
from collector.server.table import ROUTES, Role, Route
from collector.store import Store
from collector.store.connection import StoreFull, is_full
from collector.store.db_errors import DATABASE_ERRORS, INPUT_ERRORS
from collector.store.model_files import ModelStore
from shared import protocol
from shared.errors import FlopgapError, ProtocolError, StoreError, UsageError
from shared.keys import Allowlist

__all__ = ["BATCH_MAX", "HEARTBEAT_S", "MISSING_AFTER_BEATS", "POLL_MS", "Collector", "Refused"]

log = logging.getLogger("flopgap.collector")

POLL_MS = 100
HEARTBEAT_S = 1.0
MISSING_AFTER_BEATS = 5
BATCH_MAX = 256  # messages handled per store transaction (group commit)
REJECT_LOGS_PER_MINUTE = 10  # per peer; a flood of bad messages must not flood the log
# database errors a peer's message can cause (a constraint, a value the database cannot hold):
# that message is refused. Any other database error is the store's own trouble and stops.
_INPUT_DB_ERRORS = INPUT_ERRORS


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
        timeout_s = heartbeat_s * MISSING_AFTER_BEATS
        registry = Registry(missing_after_s=timeout_s)
        self.heartbeat_s = heartbeat_s
        self.leases = LeaseWatch(store, socket.getsockopt_string(zmq.LAST_ENDPOINT), timeout_s)
        self.shared = SharedStore(touch_every_s=timeout_s)
        self.ctx = Context(store, models, registry, self._send, heartbeat_s, calibrate,
                           self.leases.collector_id)  # fmt: skip
        self.counters = self.ctx.counters
        self.stop = threading.Event()
        self._deferred: list[tuple[bytes, protocol.Message]] | None = None
        self._kinds_logged: set[str] = set()  # exception kinds whose traceback was logged
        self.counters["internal"] = 0
        requeued = self.leases.start()
        if requeued:
            log.info("resuming: %d jobs left running by the previous collector requeued", requeued)
        log.info("collector id %s", self.leases.collector_id)

    def serve(self) -> int:
        next_tick = caught_up = time.monotonic()
        while not self.stop.is_set():
            if self.sock.poll(POLL_MS):
                self._receive_batch()
            if not self.sock.poll(0):
                caught_up = time.monotonic()  # every message sent before now has been read
            self._check_liveness(caught_up)
            if time.monotonic() >= next_tick:
                self._heartbeat_tick()
                next_tick = time.monotonic() + self.heartbeat_s
            if self.allowlist is not None:
                self.counters["auth_denied"] = self.allowlist.denied
        self._release()
        return 0

    def _heartbeat_tick(self) -> None:
        """Renew the lease, expire dead collectors' leases and, when other collectors share
        the store, pick up what they changed (collector.server.shared_store)."""
        if self.ctx.disk.full:
            return  # every write would be refused; peers may expire this lease meanwhile
        try:
            self.leases.tick()
            if self.leases.peers:
                self.shared.poll(self.ctx)
            self.shared.touch(self.ctx)
        except StoreFull as exc:
            self._disk_full(exc, [])

    def _release(self) -> None:
        """A clean stop gives up the lease at once, so no peer waits a timeout to take over."""
        try:
            requeued = self.leases.release()
        except StoreError as exc:
            log.warning("could not release this collector's lease: %s", exc)
            return
        if requeued:
            log.info("stopping: %d running jobs of this collector's agents requeued", requeued)

    def _receive_batch(self) -> None:
        """Handle the messages waiting (up to BATCH_MAX) in one store transaction, then send
        the replies: one durable commit for many results, and no ack before its commit.

        While the disk is full the batch is rolled back, not committed (collector.server.disk),
        except for a retry every few seconds once there is room; its acks become Rejects."""
        self._deferred = []
        state = self.ctx.disk
        full: StoreFull | None = None
        try:
            with self.store.batch():
                for _ in range(BATCH_MAX):
                    full = self._receive_storing() or full
                    if not self.sock.poll(0):
                        break
                if full is None and state.full and not state.may_commit():
                    full = state.refusal()
                if full is not None:
                    raise full  # roll the whole batch back: nothing in it is acknowledged
            self.counters["commits"] += 1  # results / commits: the group commit's batch size
        except StoreFull as exc:
            full = exc
        finally:
            deferred, self._deferred = self._deferred, None
        if full is not None:
            deferred = self._disk_full(full, deferred)
        elif state.full:
            self._disk_resumed()
        for routing_id, msg in deferred:
            self._send(routing_id, msg)  # guarded: a reply that cannot go out is counted

    def _check_liveness(self, caught_up: float) -> None:
        """Mark silent agents missing; on a full disk their failed attempts wait for room."""
        if self.ctx.disk.full:
            return  # failing a job is a write: the agent is marked missing once there is room
        try:
            agents.check_liveness(self.ctx, caught_up)
        except StoreFull as exc:
            self._disk_full(exc, [])

    def _receive_storing(self) -> StoreFull | None:
        """One message; a write it makes that finds the disk full is returned, not raised."""
        try:
            self._receive()
        except StoreFull as exc:
            return exc
        except OSError as exc:  # e.g. an uploaded model file: ENOSPC
            if not is_full(exc):
                raise
            return self.store.full_error(exc)
        return None

    def _disk_full(
        self, exc: StoreFull, deferred: list[tuple[bytes, protocol.Message]]
    ) -> list[tuple[bytes, protocol.Message]]:
        """A batch was rolled back on a full disk: say so once, undo what only memory kept,
        and withhold the replies that would claim a write (collector.server.disk)."""
        state = self.ctx.disk
        if state.failed(exc):
            log.error("disk full: %s; results are refused (agents keep them spooled) and the "
                      "collector retries every %g s", exc.message, state.retry_s)  # fmt: skip
        disk.forget_unstored(self.store, self.ctx.registry)
        kept = disk.withhold(deferred, exc)
        withheld = (protocol.Ack, protocol.CampaignAccepted, protocol.Job)
        state.refused += sum(isinstance(msg, withheld) for _, msg in deferred)
        return kept

    def _disk_resumed(self) -> None:
        """A commit went through after a full disk: resume, and store what memory kept."""
        lasted = self.ctx.disk.resumed()
        log.warning("disk has room again after %.0f s (%s): storing results again", lasted,
                    self.ctx.disk.folder)  # fmt: skip
        try:
            with self.store.batch():
                disk.resync(self.store, self.ctx.registry)
        except StoreFull as exc:
            self.ctx.disk.failed(exc)

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
            frames = protocol.encode(msg)
        except Exception as exc:  # a reply the handler built wrong: tell the peer, serve on
            self._internal(routing_id, exc, f"could not encode its {type(msg).__name__} reply")
            return
        try:
            self.sock.send_multipart([routing_id, *frames], flags=zmq.NOBLOCK)
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

    def _internal(self, routing_id: bytes, exc: BaseException, what: str) -> None:
        """An error no check foresaw: count it, log its traceback once per kind (a line,
        rate limited, after that), and refuse the peer's message in one line."""
        self.counters["internal"] += 1
        kind = f"{type(exc).__name__} in {what}"
        if kind not in self._kinds_logged:
            self._kinds_logged.add(kind)
            log.error("internal error (%s), the message was refused and the collector serves "
                      "on; report this traceback", kind, exc_info=exc)  # fmt: skip
        reason = f"internal error: {type(exc).__name__}: {exc}"[:300]
        self._reject(routing_id, UsageError(reason, "the collector logged it; report it to "
                                            "its operator"), "refused")  # fmt: skip

    def _handle(
        self, routing_id: bytes, frames: Sequence[bytes | memoryview], identity: str | None = None
    ) -> None:
        """One message, inside the guard: whatever it raises, its own changes to the store
        are rolled back (a savepoint), the replies it queued are dropped, the peer gets a
        Reject and every other message of the batch keeps its effect. Only a store that
        fails on its own (corruption, I/O: StoreError, a DATABASE_ERRORS one) stops."""
        try:
            msg = protocol.decode(frames)
        except ProtocolError as exc:
            self.limiter.penalize(identity or routing_id)
            self._reject(routing_id, exc, "malformed")
            return
        except Exception as exc:
            self.limiter.penalize(identity or routing_id)
            self._internal(routing_id, exc, "decode")
            return
        queued = len(self._deferred) if self._deferred is not None else 0
        try:
            with self.store.message():
                self._dispatch(Sender(routing_id, identity), msg)
            return
        except StoreFull as exc:  # not the peer's fault: tell it to retry; the batch rolls back
            if self._deferred is not None:
                del self._deferred[queued:]
            self._send(routing_id, protocol.Reject(f"not stored: {exc.message}",
                                                   "keep it and send it again later",
                                                   protocol.PROTOCOL_VERSION, "busy"))  # fmt: skip
            raise
        except StoreError:
            raise
        except DATABASE_ERRORS as exc:
            if not isinstance(exc, _INPUT_DB_ERRORS):
                raise
            error: Exception = exc
        except Exception as exc:
            error = exc
        if self._deferred is not None:
            del self._deferred[queued:]
        if isinstance(error, Refused):
            self._reject(routing_id, error, error.code)
        elif isinstance(error, (ProtocolError, UsageError)):
            self._reject(routing_id, error, "refused")
        else:
            self.limiter.penalize(identity or routing_id)
            self._internal(routing_id, error, type(msg).__name__)

    def _dispatch(self, sender: Sender, msg: protocol.Message) -> None:
        """Check who may send `msg`, run its handler, then give an agent that spoke its next
        job (it may be idle now)."""
        route = _route(msg, sender.identity)
        if route.role is Role.REGISTERED:
            agent = self.ctx.registry.by_route(sender.routing_id)
            if agent is None or (sender.identity not in (None, f"agent:{agent.agent_id}")):
                agent = None
            sender = Sender(sender.routing_id, sender.identity, agent)
            self.ctx.registry.touch(sender.registered)
        route.handle(self.ctx, sender, msg)
        if sender.agent is not None:
            jobs.dispatch(self.ctx, sender.agent)


def _route(msg: protocol.Message, identity: str | None) -> Route:
    """The message's table row, once its sender's key may send it."""
    name = type(msg).__name__
    route = ROUTES.get(type(msg))
    if route is None:
        raise ProtocolError(f"unexpected {name}: only the collector sends it")
    role = None if identity is None else identity.partition(":")[0]
    if role is not None and not route.role.admits(role):
        wanted = route.role.key
        hint = f"create a {wanted} key on the collector: flopgap keys {wanted} NAME"
        raise Refused(f"{name} needs a {wanted} key, and {identity} is not one", "refused", hint)
    return route


def reject_for(exc: FlopgapError, code: str) -> protocol.Reject:
    """The Reject for a refused message; a protocol version mismatch says who must upgrade."""
    reason, hint = exc.message, exc.hint or "check that both sides run the same flopgap"
    if isinstance(exc, protocol.VersionMismatch):
        mine, code = protocol.PROTOCOL_VERSION, "version"
        reason = f"the collector speaks flopgap protocol {mine}, the peer {exc.peer_proto}"
        hint = ("upgrade the collector: pip install -U flopgap" if exc.peer_proto > mine
                else "upgrade this agent: pip install -U flopgap")  # fmt: skip
    return protocol.Reject(reason, hint, protocol.PROTOCOL_VERSION, code)


def _peer(peer: bytes | str) -> str:
    """A peer for a log line: its identity, or its routing id in hex."""
    return peer if isinstance(peer, str) else peer.hex()
