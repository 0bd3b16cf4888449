"""Per-peer token buckets, so one agent (or one hostile peer) cannot starve the others.

The collector serves every peer from one thread; without a limit a peer that floods the
ROUTER takes all of that thread's time. Each peer gets `rate` messages a second with bursts up
to `burst`; excess messages are dropped unread (no reply: a reply would amplify the flood),
counted, and logged at most once per peer per `log_every_s`. State per peer is bounded:
a bucket that has refilled is forgotten, since a fresh one is identical.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

RATE_PER_S = 200.0
BURST = 400.0
PENALTY_TOKENS = 20.0  # a malformed or handler-breaking message costs 20 ordinary ones
LOG_EVERY_S = 60.0
MAX_PEERS = 10_000  # above this, refilled buckets are pruned; then the oldest


@dataclass
class _Bucket:
    tokens: float
    last: float
    dropped: int = 0  # since the last log line about this peer
    logged: float | None = None  # when that line was written


class RateLimiter:
    """Token buckets keyed by peer (a routing id, or the authenticated identity)."""

    def __init__(
        self,
        rate: float = RATE_PER_S,
        burst: float = BURST,
        log_every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate {rate} must be > 0 and burst {burst} >= 1")
        self.rate, self.burst, self.log_every_s = rate, burst, log_every_s
        self.clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def allow(self, peer: Hashable) -> bool:
        """Take one token for `peer`; False means drop this message."""
        now = self.clock()
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= MAX_PEERS:
                self._prune(now)
            bucket = self._buckets[peer] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.last) * self.rate)
        bucket.last = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        bucket.dropped += 1
        return False

    def penalize(self, peer: Hashable, tokens: float = PENALTY_TOKENS) -> None:
        """Charge `peer` for a message that was malformed or broke a handler: its next ones
        come slower (tokens can go below zero), a well-behaved peer is never charged."""
        bucket = self._buckets.get(peer)
        if bucket is not None:
            bucket.tokens -= tokens

    def report(self, peer: Hashable) -> int:
        """How many of `peer`'s messages were dropped since its last report, if one is due now.

        0 means "do not log": one line per peer per log_every_s, the first one at once.
        """
        bucket = self._buckets.get(peer)
        if bucket is None or not bucket.dropped:
            return 0
        now = self.clock()
        if bucket.logged is not None and now - bucket.logged < self.log_every_s:
            return 0
        count, bucket.dropped, bucket.logged = bucket.dropped, 0, now
        return count

    def _prune(self, now: float) -> None:
        """Forget refilled buckets (identical to new ones); then, if needed, the stalest half."""
        refill_s = self.burst / self.rate
        for peer in [p for p, b in self._buckets.items() if now - b.last >= refill_s]:
            del self._buckets[peer]
        if len(self._buckets) >= MAX_PEERS:
            stale = sorted(self._buckets, key=lambda p: self._buckets[p].last)
            for peer in stale[: len(stale) // 2]:
                del self._buckets[peer]

    def __len__(self) -> int:
        return len(self._buckets)
