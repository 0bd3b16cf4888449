"""A short-lived client of a running collector (`campaign run`, `status`): one DEALER socket,
every wait bounded, every refusal turned into an error that says what to do.

With keys (a client key pair allowlisted on the collector by `flopgap keys client NAME`, and
the collector's public key pinned), the connection is CURVE-encrypted and authenticated; a
collector that refuses the key is reported at once instead of as a silent timeout.
"""

from __future__ import annotations

import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from shared import protocol
from shared.errors import FlopgapError, UsageError
from shared.keys import PeerKeys
from shared.transport import configure_client, require_safe

_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_KEY_HINT = (
    "check --keys (a client key allowlisted on the collector with `flopgap keys client NAME`) "
    "and --collector-key (the collector's collector.key)"
)


class CollectorUnreachable(FlopgapError):
    """No answer from the collector within the timeout."""


class Client:
    """Request/response over DEALER; use as a context manager."""

    def __init__(
        self,
        endpoint: str,
        timeout_s: float = 10.0,
        insecure: bool = False,
        keys: PeerKeys | None = None,
    ) -> None:
        require_safe(endpoint, insecure, "connect to", keys=keys is not None)
        self.endpoint = endpoint
        self.timeout_ms = int(timeout_s * 1000)
        self.handshake_failed = ""  # why the last handshake failed, if it did
        self.keyed = keys is not None
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 5000)  # let uploads leave before close
        configure_client(self.sock, keys)  # before connect: keys apply to new connections
        self.monitor = self.sock.get_monitor_socket(_HANDSHAKE_FAILED)
        self.sock.connect(endpoint)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close()

    def send(self, msg: protocol.Message) -> None:
        self.sock.send_multipart(protocol.encode(msg))

    def request(self, msg: protocol.Message, expect: type[protocol.Message]) -> protocol.Message:
        """Send `msg` and wait for a reply of type `expect`; a Reject becomes UsageError."""
        self.send(msg)
        self._wait_for_reply()
        reply = protocol.decode(self.sock.recv_multipart())
        if isinstance(reply, protocol.Reject):
            raise UsageError(f"the collector refused: {reply.reason}", hint=reply.hint)
        if not isinstance(reply, expect):
            raise UsageError(f"unexpected {type(reply).__name__} from the collector")
        return reply

    def _wait_for_reply(self) -> None:
        """Bounded wait for a reply; fails at once if the collector refuses our key."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        deadline = time.monotonic() + self.timeout_ms / 1000
        while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
            ready = dict(poller.poll(left_ms))
            if self.monitor in ready:
                event = recv_monitor_message(self.monitor)
                self._raise_if_final(event["event"])
                self.handshake_failed = "the secure handshake failed (wrong --collector-key?)"
            if self.sock in ready:
                return
        why = f"; {self.handshake_failed}" if self.handshake_failed else ""
        hint = "check that `flopgap serve` runs there and the address is right"
        raise CollectorUnreachable(
            f"no answer from the collector at {self.endpoint} within "
            f"{self.timeout_ms / 1000:g} s{why}",
            hint=_KEY_HINT if why else hint,
        )

    def _raise_if_final(self, event: int) -> None:
        """Raise for the failures libzmq never retries: a refused key, a keys mismatch."""
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            raise UsageError(
                f"the collector at {self.endpoint} refused this client's key", hint=_KEY_HINT
            )
        if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            wants = "does not use keys" if self.keyed else "requires CURVE keys"
            raise UsageError(f"the collector at {self.endpoint} {wants}", hint=_KEY_HINT)
