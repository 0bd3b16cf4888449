"""When to resend unacknowledged results after the collector said "busy".

A Reject(code="busy") means the collector is up but could not take a message now: over this
agent's rate, or its disk is full (collector.server.disk). The results stay in the spool;
they are resent once after a delay that doubles on every busy answer (2 s up to 30 s) and
starts again at 2 s once an Ack shows the collector stores results again. One timer for all
of them, so a collector that stays busy sees one resend a delay, never a storm.
"""

from __future__ import annotations

import time

FIRST_S = 2.0
MAX_S = 30.0


class ResendLater:
    """A one-shot, backing-off timer armed by busy Rejects."""

    def __init__(self, first_s: float = FIRST_S, max_s: float = MAX_S) -> None:
        self.first_s, self.max_s = first_s, max_s
        self._delay = first_s
        self._due: float | None = None

    def arm(self) -> float | None:
        """Schedule one resend; returns its delay in s, or None when one is scheduled already."""
        if self._due is not None:
            return None
        delay = self._delay
        self._due = time.monotonic() + delay
        self._delay = min(delay * 2, self.max_s)
        return delay

    def due(self) -> bool:
        """True once when the scheduled resend is due (the caller resends then)."""
        if self._due is None or time.monotonic() < self._due:
            return False
        self._due = None
        return True

    def acked(self) -> None:
        """An Ack arrived: the collector stores again, so the next busy waits FIRST_S."""
        self._delay = self.first_s
