"""Saying no to a peer: the `Refused` error, the role check (which key may send which
message), and the Reject a refused message gets back, in words meant for the sender.

A refused message never stops the loop: the collector answers it with a Reject and serves on.
"""

from __future__ import annotations

from shared import protocol
from shared.errors import FlopgapError, ProtocolError

CLIENT_MESSAGES = (protocol.SubmitCampaign, protocol.ModelData, protocol.StatusRequest)


class Refused(ProtocolError):
    """A well-formed message the collector will not act on; `code` tells the peer why."""

    def __init__(self, message: str, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


def check_role(msg: protocol.Message, identity: str | None) -> None:
    """With keys, clients only submit, upload and ask; agents only do an agent's work."""
    if identity is None:
        return
    role = identity.partition(":")[0]
    wanted = "client" if isinstance(msg, CLIENT_MESSAGES) else "agent"
    if role != wanted:
        raise Refused(
            f"{type(msg).__name__} needs a {wanted} key, and {identity} is not one",
            "refused",
            hint=f"create a {wanted} key on the collector: flopgap keys {wanted} NAME",
        )


def reject_for(exc: FlopgapError, code: str) -> protocol.Reject:
    """The Reject for a refused message; a protocol version mismatch says who must upgrade."""
    reason, hint = exc.message, exc.hint or "check that both sides run the same flopgap"
    if isinstance(exc, protocol.VersionMismatch):
        mine, code = protocol.PROTOCOL_VERSION, "version"
        reason = f"the collector speaks flopgap protocol {mine}, the peer {exc.peer_proto}"
        hint = ("upgrade the collector: pip install -U flopgap" if exc.peer_proto > mine
                else "upgrade this agent: pip install -U flopgap")  # fmt: skip
    return protocol.Reject(reason, hint, protocol.PROTOCOL_VERSION, code)
