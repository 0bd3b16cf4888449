"""This collector's lease on the shared store, and the watch on every other collector's.

Each `flopgap serve` gets a fresh id and a lease row (collector.store.leases), renewed every
heartbeat. A peer's lease is judged on this collector's monotonic clock: when its beat has
not moved for longer than the heartbeat timeout (MISSING_AFTER_BEATS heartbeats, the same
timeout that marks an agent missing) the peer is dead, and this collector expires its lease,
which re-queues its agents' running jobs in the same transaction. A peer first seen is given
a whole timeout from that moment: no judgement is made on one reading.

At start-up only, a lease left on this host and PID namespace by a process that no longer
exists is expired at once: a collector SIGKILLed and restarted on the same store resumes at
once, as it did before leases, rather than one timeout later.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from collector.store import Store
from collector.store.leases import pid_alive, this_host

log = logging.getLogger("flopgap.collector")


@dataclass
class _Seen:
    beat: int
    since: float  # monotonic time the beat was first seen at this value


class LeaseWatch:
    """Claims, renews and releases this collector's lease; expires dead peers' leases."""

    def __init__(self, store: Store, endpoint: str, timeout_s: float) -> None:
        self.store = store
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.collector_id = uuid.uuid4().hex
        self.peers = 0  # other leases seen at the last tick: >0 means the store is shared
        self._seen: dict[str, _Seen] = {}

    def start(self) -> int:
        """Expire the leases of dead collectors of this host, claim this one's lease, and
        re-queue running jobs no leased collector holds; returns how many were re-queued."""
        requeued = 0
        host = this_host()
        for lease in self.store.leases():
            if lease.host == host and not pid_alive(lease.pid):
                requeued += self.store.expire_lease(lease.collector_id, lease.beat) or 0
        self.store.claim_lease(self.collector_id, self.endpoint)
        return requeued + self.store.requeue_unheld()

    def tick(self, now: float | None = None) -> int:
        """Renew this lease and expire every peer's that is overdue; returns the jobs
        re-queued. Called once per heartbeat."""
        now = time.monotonic() if now is None else now
        if not self.store.renew_lease(self.collector_id):
            log.warning("this collector's lease was expired by another collector (it did not "
                        "renew for %g s): claiming a new one; its agents' running jobs were "
                        "re-queued", self.timeout_s)  # fmt: skip
            self.store.claim_lease(self.collector_id, self.endpoint)
        requeued = 0
        current = {lease.collector_id: lease for lease in self.store.leases()}
        current.pop(self.collector_id, None)
        self.peers = len(current)
        for gone in set(self._seen) - set(current):
            del self._seen[gone]
        for peer_id, lease in current.items():
            seen = self._seen.get(peer_id)
            if seen is None or seen.beat != lease.beat:
                self._seen[peer_id] = _Seen(lease.beat, now)
                continue
            if now - seen.since <= self.timeout_s:
                continue
            count = self.store.expire_lease(peer_id, lease.beat)
            del self._seen[peer_id]
            if count is not None:  # None: renewed, or expired by another collector first
                log.warning("collector %s (%s) has not renewed its lease for %.1f s: expired; "
                            "%d running jobs of its agents re-queued", peer_id[:8],
                            lease.endpoint, now - seen.since, count)  # fmt: skip
                requeued += count
        return requeued

    def release(self) -> int:
        """A clean stop: the lease goes, and this collector's agents' running jobs are
        re-queued for whichever collector they reach next."""
        return self.store.release_lease(self.collector_id)
