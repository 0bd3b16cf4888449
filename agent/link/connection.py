"""The agent's socket to its collector: a DEALER that reconnects forever, and its monitor.

With several collectors (agent.link.endpoints) the socket is connected to one at a time and
`move`s to the next when the loop says so.

The agent connects out, so a board behind NAT works; ZeroMQ reconnects with exponential
backoff (RECONNECT_MIN_MS to RECONNECT_MAX_MS). The monitor socket reports each handshake, so
the loop (agent.link.loop) registers again after every reconnection. With keys the connection is
CURVE-encrypted (shared.transport.configure_client, set before connect); a collector that
refuses the key, or disagrees on using keys at all, is fatal: libzmq never retries those.
A collector that does not answer to the pinned key (a wrong --collector-key: the handshake fails
without detail) is retried, but libzmq would retry every 100 ms forever, since each TCP connect
succeeds and resets its backoff; so the connection says once what to check, drops the endpoint
and connects again itself after a delay that doubles up to HANDSHAKE_RETRY_MAX_S.
Sends never block: a message the socket cannot queue is dropped (heartbeats are periodic,
results stay in the spool and are resent on reconnect). ZMQ_IMMEDIATE keeps the socket from
queueing anything while no connection is up: what was queued during an outage (a minute of
heartbeats) would otherwise all arrive at the restarted collector before the Register, each
drawing an "unregistered" Reject (agent.link.session).
"""

from __future__ import annotations

import logging
import struct
import time

import zmq

from shared import protocol
from shared.keys import PeerKeys
from shared.transport import configure_client

log = logging.getLogger("flopgap.agent")

RECONNECT_MIN_MS = 100
RECONNECT_MAX_MS = 5000
HANDSHAKE_RETRY_MIN_S = 1.0  # after a failed secure handshake, first retry in 1 s
HANDSHAKE_RETRY_MAX_S = 30.0  # doubling, up to 30 s
_MONITOR_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
CONNECTED = "connected"  # a handshake succeeded: register (again)
FATAL = "fatal"  # a handshake failure libzmq will not retry: stop with exit code 2
LOST = "lost"  # the connection went down: send nothing more until the next CONNECTED


class Connection:
    """The DEALER socket and its monitor; created before connect, so options apply."""

    def __init__(self, keys: PeerKeys | None, max_message_bytes: int | None) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)  # unacked results are in the spool, not the socket
        self.sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MIN_MS)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # queue nothing for a connection not up
        configure_client(self.sock, keys, max_message_bytes)  # before connect (in serve)
        self.keyed = keys is not None
        self.endpoint = ""
        self.connected = False  # a handshake succeeded since the last disconnection
        self._failures = 0  # secure handshakes failed in a row
        self._retry_at: float | None = None  # when to connect again after a failed handshake
        self.monitor = self.sock.get_monitor_socket(_MONITOR_EVENTS)

    def connect(
        self, endpoint: str, server_key: bytes | None = None, timeout_s: float | None = None
    ) -> None:
        """Connect to `endpoint`; ZeroMQ reconnects by itself, except after a failed secure
        handshake, which `tick` paces. `server_key`: the public key pinned for this endpoint
        (else the one the keys came with). `timeout_s`: drop a connection whose collector
        answers no ZMTP ping for that long (a frozen collector keeps its TCP connection up),
        so an agent that can fail over notices; libzmq answers pings, not the loop."""
        if server_key is not None and self.keyed:
            self.sock.curve_serverkey = server_key  # options apply to connections made next
        if timeout_s is not None:
            self.sock.setsockopt(zmq.HEARTBEAT_IVL, max(100, int(timeout_s * 200)))
            self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, max(500, int(timeout_s * 1000)))
        self.endpoint = endpoint
        self.sock.connect(endpoint)

    def move(
        self, endpoint: str, server_key: bytes | None = None, timeout_s: float | None = None
    ) -> None:
        """Leave the current collector for `endpoint`: one connection at a time (a DEALER
        with two would share messages out between them)."""
        try:
            self.sock.disconnect(self.endpoint)
        except zmq.ZMQError:  # dropped already after a failed handshake
            pass
        self.connected, self._failures, self._retry_at = False, 0, None
        self.connect(endpoint, server_key, timeout_s)

    def tick(self, now: float | None = None) -> None:
        """Connect again once a failed handshake's backoff is over (called every poll)."""
        if self._retry_at is not None and (now or time.monotonic()) >= self._retry_at:
            self._retry_at = None
            self.sock.connect(self.endpoint)

    def send(self, msg: protocol.Message) -> None:
        self.send_frames(protocol.encode(msg))

    def send_frames(self, frames: list[bytes]) -> None:
        """Queue frames without blocking; with the queue full (no collector for a long time)
        the message is dropped, never the loop: heartbeats recur, results are spooled."""
        try:
            self.sock.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            log.debug("send queue full: dropped a message")

    def read_event(self) -> str | None:
        """Read one monitor event and log what it means: CONNECTED (register now), LOST (send
        nothing until the next CONNECTED), FATAL (stop with exit code 2), or None (nothing to
        do; ZeroMQ reconnects by itself)."""
        kind = _monitor_event(self.monitor.recv_multipart())
        if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.connected, self._failures = True, 0
            log.info("connected to the collector")
            return CONNECTED
        if kind in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            self._fatal_handshake(kind)
            return FATAL
        if kind == zmq.EVENT_DISCONNECTED:
            was_up, self.connected = self.connected, False
            if was_up:  # after a failed handshake this is no news: said already
                log.warning("lost the collector; reconnecting (results stay in the spool)")
            return LOST
        self._handshake_failed()
        return None

    def _handshake_failed(self) -> None:
        """The handshake failed without detail. With a pinned key, the collector does not
        answer to it: say so once, then back off (1 s doubling to 30 s) instead of libzmq's
        100 ms. Without keys, libzmq's next attempt names the cause (a collector that
        requires keys is fatal), so it is not slowed down."""
        if self._retry_at is not None:  # queued before the endpoint was dropped: counted
            return
        self._failures += 1
        if not self.keyed:  # no pinned key to be wrong: let libzmq retry, whose next attempt
            if self._failures == 1:  # usually tells (a CURVE collector: fatal, said then)
                log.warning("the handshake with %s failed: is it a flopgap collector "
                            "(flopgap serve)? retrying", self.endpoint)  # fmt: skip
            return
        delay = min(HANDSHAKE_RETRY_MIN_S * 2 ** (self._failures - 1), HANDSHAKE_RETRY_MAX_S)
        if self._failures == 1:
            log.error(
                "the collector at %s does not answer to the key in --collector-key (the secure "
                "handshake failed): it must be the collector's public key, collector.key from "
                "the folder `flopgap serve --keys` uses (`flopgap keys list` on the collector "
                "reads that folder); retrying every %g s at most",
                self.endpoint, HANDSHAKE_RETRY_MAX_S,
            )  # fmt: skip
        else:
            log.info("still no secure handshake with the collector (attempt %d): retrying in "
                     "%g s", self._failures, delay)  # fmt: skip
        if self.endpoint:
            try:
                self.sock.disconnect(self.endpoint)  # stop libzmq's 100 ms retries
            except zmq.ZMQError:  # not connected at this moment: nothing to stop
                pass
            self._retry_at = time.monotonic() + delay

    def _fatal_handshake(self, kind: int) -> None:
        """libzmq never retries these two failures: say what to fix."""
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

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close()
        self.sock.close()


def _monitor_event(frames: list[bytes]) -> int:
    """The event of a ZeroMQ monitor message (u16 event, u32 value; then the endpoint), read
    here because pyzmq's recv_monitor_message imports asyncio: ~2 MiB of the agent's memory."""
    return int(struct.unpack_from("=H", frames[0])[0])
