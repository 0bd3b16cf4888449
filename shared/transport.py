"""ZeroMQ endpoints and the secure-by-default rule.

Without CURVE keys only loopback (127.0.0.0/8, ::1, localhost) and local transports (ipc://,
inproc://) are allowed; anything else needs keys or an explicit, loudly logged --insecure.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from shared.errors import UsageError

log = logging.getLogger("flopgap.transport")

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


def require_safe(endpoint: str, insecure: bool, action: str) -> None:
    """Refuse a non-loopback endpoint without keys unless the user insisted."""
    if is_loopback(endpoint):
        return
    if not insecure:
        raise UsageError(
            f"refusing to {action} {endpoint} without CURVE keys: only loopback is allowed "
            "unencrypted",
            hint="use 127.0.0.1 (an SSH tunnel reaches a remote collector), or pass "
            "--insecure on a network you trust",
        )
    log.warning(
        "INSECURE: %s %s without encryption or authentication; anyone who can reach it "
        "can send jobs or results",
        action,
        endpoint,
    )
