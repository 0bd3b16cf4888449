"""One connection's registration: register once, resend each unacked result once, paced.

After an outage the collector has a new process and knows nobody. What the agent sends next
decides whether the restart costs one Register or a storm: every heartbeat queued during the
outage used to arrive at once, each drew an "unregistered" Reject, and each Reject a full
re-register plus a resend of every unacked result (one result was received 69 times after a
60 s outage). So, per connection:

- nothing but the Register goes out before the Welcome (no heartbeats, no progress; the
  socket itself queues nothing while disconnected: agent.link.connection sets ZMQ_IMMEDIATE);
- an "unregistered" Reject while a Register is unanswered is ignored (the Welcome is coming),
  and at most one Register is sent per REGISTER_RETRY_S;
- after the Welcome, each unacked result not yet sent on this connection is resent once, at
  most RESEND_PER_TICK every RESEND_TICK_S, well under the collector's per-peer rate.

So each unacked result is received at most twice across an outage: once before it, once on
the connection after it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

REGISTER_RETRY_S = 5.0  # a Register unanswered this long (dropped, rate limited) is sent again
RESEND_PER_TICK = 5
RESEND_TICK_S = 0.1  # so at most 50 resends a second


class Session:
    """The registration state of the current connection, and its paced resend queue."""

    def __init__(self) -> None:
        self.up = False  # a handshake succeeded and no disconnect since
        self.registered = False  # the Welcome for this connection's Register arrived
        self._register_sent_at: float | None = None
        self._sent: set[str] = set()  # result ids sent on this connection
        self._queue: deque[str] = deque()
        self._next_resend = 0.0

    def connected(self) -> None:
        """A new connection: nothing has been sent on it yet."""
        self.up, self.registered = True, False
        self._register_sent_at = None
        self._sent.clear()
        self._queue.clear()

    def lost(self) -> None:
        self.up, self.registered = False, False
        self._register_sent_at = None
        self._queue.clear()

    def register_sent(self) -> None:
        self._register_sent_at = time.monotonic()

    def should_register(self, now: float | None = None) -> bool:
        """True if this connection needs a Register now: none sent, or the last one is
        unanswered after REGISTER_RETRY_S."""
        if not self.up or self.registered:
            return False
        if self._register_sent_at is None:
            return True
        now = time.monotonic() if now is None else now
        return now - self._register_sent_at >= REGISTER_RETRY_S

    def unregistered(self) -> bool:
        """The collector says it does not know us: True if a Register should go now (we
        thought we were registered), False while one is already on its way."""
        if self._register_sent_at is not None and not self.registered:
            return False
        self.registered = False
        self._register_sent_at = None
        return self.up

    def welcomed(self, pending: list[str]) -> None:
        """The Welcome: queue every pending result not yet sent on this connection."""
        self.registered = True
        queued = set(self._queue)
        self._queue.extend(r for r in pending if r not in self._sent and r not in queued)

    def retry(self, pending: list[str]) -> None:
        """The collector refused results as busy (its rate, a full disk): what was sent on
        this connection and is still unacked goes back in the paced queue, once per refusal
        (agent.link.resend paces the refusals)."""
        if not self.registered:
            return
        self._sent.difference_update(pending)
        queued = set(self._queue)
        self._queue.extend(r for r in pending if r not in queued)

    def sent(self, result_id: str) -> None:
        self._sent.add(result_id)

    def due(self, now: float | None = None) -> list[str]:
        """The result ids to resend now (at most RESEND_PER_TICK per RESEND_TICK_S)."""
        now = time.monotonic() if now is None else now
        if not self.registered or not self._queue or now < self._next_resend:
            return []
        self._next_resend = now + RESEND_TICK_S
        out: list[str] = []
        while self._queue and len(out) < RESEND_PER_TICK:
            rid = self._queue.popleft()
            if rid not in self._sent:
                out.append(rid)
        return out

    def resend(self, due: list[str], frames_of: Callable[[str], list[bytes] | None],
               send: Callable[[list[bytes]], None]) -> int:  # fmt: skip
        """Send each due result still unacked; returns how many went."""
        count = 0
        for rid in due:
            frames = frames_of(rid)
            if frames is not None:
                send(frames)
                self.sent(rid)
                count += 1
        return count
