"""ZeroMQ endpoints, socket limits and the secure-by-default rule.

Without CURVE keys only loopback (127.0.0.0/8, ::1, localhost) and local transports (ipc://,
inproc://) are allowed; anything else needs keys (`flopgap keys`) or an explicit, loudly logged
--insecure. Every socket caps inbound frames (ZMQ_MAXMSGSIZE) so a peer that sends a frame
larger than any valid message is disconnected by libzmq before Python allocates it.
"""

from __future__ import annotations

import ipaddress
import logging
import re

import zmq

from shared import protocol
from shared.errors import UsageError
from shared.keys import KeyPair, PeerKeys

log = logging.getLogger("flopgap.transport")

HEADER_HEADROOM = 1 << 20  # on top of the largest bulk frame; headers have their own limit
_TCP = re.compile(r"^tcp://(\[[^\]]+\]|[^:/]+):(\d+|\*)$")


def parse_tcp(endpoint: str) -> tuple[str, str]:
    """(host, port) of a tcp:// endpoint; UsageError for anything malformed."""
    match = _TCP.match(endpoint)
    if not match:
        raise UsageError(
            f"bad endpoint {endpoint!r}",
            hint="write it as tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555",
        )
    return match.group(1).strip("[]"), match.group(2)


def is_loopback(endpoint: str) -> bool:
    """True for endpoints that cannot be reached from another machine."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host, _ = parse_tcp(endpoint)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_safe(endpoint: str, insecure: bool, action: str, keys: bool = False) -> None:
    """Refuse a non-loopback endpoint without CURVE keys unless the user insisted."""
    if keys:
        if insecure:
            log.info("--insecure is ignored: CURVE keys encrypt and authenticate %s", endpoint)
        return
    if is_loopback(endpoint):
        return
    if not insecure:
        raise UsageError(
            f"refusing to {action} {endpoint} without CURVE keys: only loopback is allowed "
            "unencrypted",
            hint="create keys with `flopgap keys init DIR` and pass --keys (see SECURITY.md), "
            "use 127.0.0.1 (an SSH tunnel reaches a remote collector), or pass --insecure on "
            "a network you trust",
        )
    log.warning(
        "INSECURE: %s %s without encryption or authentication; anyone who can reach it "
        "can send jobs or results",
        action,
        endpoint,
    )


def max_message_bytes() -> int:
    """The default inbound frame cap: the largest valid bulk frame plus header headroom.

    Read at call time, like protocol.MAX_MODEL_BYTES, so a deployment that lowers the model
    limit lowers this too.
    """
    largest = max(protocol.MAX_MODEL_BYTES, protocol.MAX_LATENCY_SAMPLES * 8)
    return max(largest, protocol.MAX_HEADER_BYTES) + HEADER_HEADROOM


def configure_server(
    sock: zmq.Socket[bytes], keys: KeyPair | None, max_bytes: int | None = None
) -> None:
    """Frame cap and, with keys, CURVE server mode; call before bind (ironhouse order).

    The ZAP authenticator must already run, or handshakes would not be checked.
    """
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes() if max_bytes is None else max_bytes)
    if keys is not None:
        sock.curve_server = True
        sock.curve_secretkey = keys.secret
        sock.curve_publickey = keys.public


def configure_client(
    sock: zmq.Socket[bytes], keys: PeerKeys | None, max_bytes: int | None = None
) -> None:
    """Frame cap and, with keys, CURVE client mode pinned to the collector's public key.

    Call before connect: a connection made without the server key would speak plain text.
    """
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes() if max_bytes is None else max_bytes)
    if keys is not None:
        sock.curve_secretkey = keys.own.secret
        sock.curve_publickey = keys.own.public
        sock.curve_serverkey = keys.server_public
