"""The agent's socket to its collector: a DEALER that reconnects forever, and its monitor.

The agent connects out, so a board behind NAT works; ZeroMQ reconnects with exponential
backoff (RECONNECT_MIN_MS to RECONNECT_MAX_MS). The monitor socket reports each handshake, so
the loop (agent.link.loop) registers again after every reconnection. With keys the connection is
CURVE-encrypted (shared.transport.configure_client, set before connect); a collector that
refuses the key, or disagrees on using keys at all, is fatal: libzmq never retries those.
Sends never block: a message the socket cannot queue is dropped (heartbeats are periodic,
results stay in the spool and are resent on reconnect). ZMQ_IMMEDIATE keeps the socket from
queueing anything while no connection is up: what was queued during an outage (a minute of
heartbeats) would otherwise all arrive at the restarted collector before the Register, each
drawing an "unregistered" Reject (agent.link.session).
"""

from __future__ import annotations

import logging
import struct

import zmq

from shared import protocol
from shared.keys import PeerKeys
from shared.transport import configure_client

log = logging.getLogger("flopgap.agent")

RECONNECT_MIN_MS = 100
RECONNECT_MAX_MS = 5000
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
        self._handshake_warned = False
        self.monitor = self.sock.get_monitor_socket(_MONITOR_EVENTS)

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
            self._handshake_warned = False
            log.info("connected to the collector")
            return CONNECTED
        if kind in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            self._fatal_handshake(kind)
            return FATAL
        if kind == zmq.EVENT_DISCONNECTED:
            log.warning("lost the collector; reconnecting (results stay in the spool)")
            return LOST
        if not self._handshake_warned:  # repeats at every reconnect: say it once
            self._handshake_warned = True
            log.warning("secure handshake with the collector failed: check --collector-key")
        return None

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
