"""The store's disk as the collector sees it: full or not, since when, and when to try again.

A full disk (collector.store.connection.StoreFull) must not stop the collector. While it is
full, every batch is rolled back instead of committed: nothing is acknowledged, so each agent
keeps its results in its spool (the spool is the buffer) and a Reject(code="busy") tells it to
resend them later. Every RETRY_S the collector looks at the free space and, when there is
room, lets one batch try to commit; the first commit that succeeds ends the full state, with
no restart. `resync` then writes back what the refused batches had only changed in memory
(agents that registered, the running campaigns' jobs for them).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from collector import scheduler
from collector.server.registry import Registry
from collector.store import CampaignState, JobState, Store
from collector.store.connection import StoreFull, free_bytes
from shared import protocol

RETRY_S = 2.0  # how often a full disk is looked at again
RESUME_FREE_BYTES = 1 << 20  # room needed before a commit is tried again: a WAL frame or more


class DiskState:
    """Whether the disk under `folder` (the database's) is full; one per collector."""

    def __init__(
        self, folder: Path, retry_s: float = RETRY_S, resume_free: int = RESUME_FREE_BYTES
    ) -> None:
        self.folder = folder
        self.retry_s = retry_s
        self.resume_free = resume_free
        self.error: StoreFull | None = None  # the write that found the disk full
        self.since: float | None = None  # monotonic time it did
        self.refused = 0  # replies withheld while full (acks, accepted campaigns, jobs)
        self._next_try = 0.0

    @property
    def full(self) -> bool:
        return self.error is not None

    def failed(self, exc: StoreFull) -> bool:
        """Enter (or stay in) the full state; True only on entering it, to log it once."""
        entering = self.error is None
        self.error = exc
        if entering:  # later refusals leave the retry time alone (may_commit moves it on)
            self.since = time.monotonic()
            self._next_try = self.since + self.retry_s
        return entering

    def may_commit(self) -> bool:
        """While full: True at most every `retry_s`, and only when there is room again."""
        if self.error is None:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_s
        free = free_bytes(self.folder)
        return free is not None and free >= self.resume_free

    def refusal(self) -> StoreFull:
        """A fresh StoreFull for a batch rolled back while the disk is full."""
        cause = self.error.cause if self.error is not None else "no room to write"
        return StoreFull(self.folder, free_bytes(self.folder), cause)

    def resumed(self) -> float:
        """A commit went through: the disk has room again; returns how long it was full (s)."""
        lasted = time.monotonic() - (self.since or time.monotonic())
        self.error, self.since = None, None
        return lasted

    def document(self) -> dict[str, Any]:
        """The `disk` entry of the status document: what is full and how much is free."""
        free: int | None = None
        total: int | None = None
        try:
            usage = shutil.disk_usage(self.folder)
            free, total = usage.free, usage.total
        except OSError:
            pass
        return {
            "folder": str(self.folder), "full": self.full, "free_bytes": free,
            "total_bytes": total,
            "full_for_s": None if self.since is None else round(time.monotonic() - self.since, 1),
            "error": None if self.error is None else self.error.cause[:200],
            "refused": self.refused,
        }  # fmt: skip


def withhold(
    deferred: list[tuple[bytes, protocol.Message]], exc: StoreFull
) -> list[tuple[bytes, protocol.Message]]:
    """The replies of a rolled-back batch that may still go out. An Ack or CampaignAccepted
    would claim a write that did not happen: each becomes a Reject(code="busy") that says the
    disk is full (the agent resends later, the client may submit again); a Job whose start was
    not stored is not sent (the job stays queued). Everything else was true without a write."""
    busy = protocol.Reject(
        f"not stored: {exc.message}"[:4000],
        "nothing is lost: resend later (an agent keeps the result spooled and does so by itself)",
        protocol.PROTOCOL_VERSION,
        "busy",
    )
    out: list[tuple[bytes, protocol.Message]] = []
    for routing_id, msg in deferred:
        if isinstance(msg, (protocol.Ack, protocol.CampaignAccepted)):
            out.append((routing_id, busy))
        elif not isinstance(msg, protocol.Job):
            out.append((routing_id, msg))
    return out


def forget_unstored(store: Store, registry: Registry) -> None:
    """After a rollback: an agent the registry thinks runs a job the store does not have as
    running (its start was rolled back) is idle again, so the job is dispatched later."""
    for agent in registry.all():
        if agent.running is None:
            continue
        job = store.job(agent.running)
        if job is None or job.state is not JobState.RUNNING:
            agent.running = None


def resync(store: Store, registry: Registry) -> None:
    """Write back what refused batches changed only in memory: each registered agent's row
    and its share of the running campaigns (both idempotent, as at a registration)."""
    running = store.campaigns(state=CampaignState.RUNNING)
    for agent in registry.all():
        store.upsert_agent(agent.agent_id, agent.descriptor, agent.tags)
        for campaign in running:
            scheduler.expand_for_agent(store, campaign, agent.agent_id, agent.tags)
