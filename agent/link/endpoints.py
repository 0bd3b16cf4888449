"""The collectors an agent may serve, in order, and when to move to the next one.

`flopgap-agent run --collector A --collector B ...` (or a list in the config file): the agent
connects to the first; when the one it uses has had no connection up for longer than the
heartbeat timeout (FAILOVER_AFTER_BEATS heartbeats, the timeout after which a collector marks
a silent agent missing) it moves to the next, round and round, and stays wherever it is
welcomed (no moving back). Collectors that share one store are one service, so any of them
takes this agent's results and its running job.

Each endpoint may pin its own collector public key (`--collector-key` repeated, in the same
order); one key for all is a fleet whose collectors share one key pair.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from shared.errors import UsageError

FAILOVER_AFTER_BEATS = 5  # as collector.server.loop.MISSING_AFTER_BEATS


@dataclass(frozen=True)
class Endpoint:
    """One collector: where it listens and, with keys, the public key pinned for it."""

    address: str
    server_key: bytes | None = None


def check_counts(addresses: Sequence[str], keys: Sequence[object]) -> None:
    """Refuse a key count that pairs with no reading: none, one for all, or one each."""
    if not addresses:
        raise UsageError("no collector", hint="pass --collector tcp://HOST:PORT")
    if len(keys) > 1 and len(keys) != len(addresses):
        raise UsageError(
            f"{len(keys)} --collector-key files for {len(addresses)} --collector endpoints",
            hint="pass one collector key shared by every collector, or one per --collector "
            "in the same order",
        )


def pair(addresses: Sequence[str], keys: Sequence[bytes]) -> list[Endpoint]:
    """Endpoints with their pinned keys: none, one for all, or one each in the same order."""
    check_counts(addresses, keys)
    if not keys:
        return [Endpoint(a) for a in addresses]
    if len(keys) == 1:
        return [Endpoint(a, keys[0]) for a in addresses]
    return [Endpoint(a, k) for a, k in zip(addresses, keys, strict=True)]


class Endpoints:
    """Which collector is in use, and since when no connection to it is up."""

    def __init__(self, endpoints: Sequence[Endpoint], now: float | None = None) -> None:
        if not endpoints:
            raise UsageError("no collector", hint="pass --collector tcp://HOST:PORT")
        self._all = list(endpoints)
        self._at = 0
        self._down_since: float | None = time.monotonic() if now is None else now

    @property
    def current(self) -> Endpoint:
        return self._all[self._at]

    @property
    def several(self) -> bool:
        return len(self._all) > 1

    def connecting(self, now: float | None = None) -> None:
        """The first connect is made now: the failover clock starts here, not at start-up
        (the fork server may take seconds to describe the device)."""
        self._down_since = time.monotonic() if now is None else now

    def up(self) -> None:
        """A handshake succeeded with the current collector."""
        self._down_since = None

    def down(self, now: float | None = None) -> None:
        """The connection went down; the failover clock starts (once per outage)."""
        if self._down_since is None:
            self._down_since = time.monotonic() if now is None else now

    def should_move(self, timeout_s: float, now: float | None = None) -> bool:
        """True when another collector is listed and this one has been gone longer than
        `timeout_s` (or never answered in that long)."""
        if not self.several or self._down_since is None:
            return False
        now = time.monotonic() if now is None else now
        return now - self._down_since > timeout_s

    def advance(self, now: float | None = None) -> Endpoint:
        """Move to the next collector (after the last, the first); its clock starts now."""
        self._at = (self._at + 1) % len(self._all)
        self._down_since = time.monotonic() if now is None else now
        return self.current
