"""A short-lived client of a running collector (`campaign run`, `status`): one DEALER socket,
every wait bounded, every refusal turned into an error that says what to do."""

from __future__ import annotations

import zmq

from shared import protocol
from shared.errors import FlopgapError, UsageError
from shared.transport import require_safe


class CollectorUnreachable(FlopgapError):
    """No answer from the collector within the timeout."""


class Client:
    """Request/response over DEALER; use as a context manager."""

    def __init__(self, endpoint: str, timeout_s: float = 10.0, insecure: bool = False) -> None:
        require_safe(endpoint, insecure, "connect to")
        self.endpoint = endpoint
        self.timeout_ms = int(timeout_s * 1000)
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 5000)  # let uploads leave before close
        self.sock.connect(endpoint)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sock.close()

    def send(self, msg: protocol.Message) -> None:
        self.sock.send_multipart(protocol.encode(msg))

    def request(self, msg: protocol.Message, expect: type[protocol.Message]) -> protocol.Message:
        """Send `msg` and wait for a reply of type `expect`; a Reject becomes UsageError."""
        self.send(msg)
        if not self.sock.poll(self.timeout_ms):
            raise CollectorUnreachable(
                f"no answer from the collector at {self.endpoint} within "
                f"{self.timeout_ms / 1000:g} s",
                hint="check that `flopgap serve` runs there and the address is right",
            )
        reply = protocol.decode(self.sock.recv_multipart())
        if isinstance(reply, protocol.Reject):
            raise UsageError(f"the collector refused: {reply.reason}", hint=reply.hint)
        if not isinstance(reply, expect):
            raise UsageError(f"unexpected {type(reply).__name__} from the collector")
        return reply
