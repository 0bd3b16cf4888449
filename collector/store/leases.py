"""Collectors sharing one store: each one's lease, which collector holds each agent, and the
requeue of a dead collector's running jobs.

A lease is a row a collector writes when it starts and renews every heartbeat by adding one
to its `beat`. Whether a lease has expired is judged by the collector reading it, on its own
monotonic clock (collector.server.lease_watch): a beat that has not moved for longer than the
heartbeat timeout is a dead collector. No clock is compared across machines, so a skewed wall
clock can neither kill a live collector nor keep a dead one alive, and the SQL needs no
database time function (SQLite's and PostgreSQL's differ). `renewed` (wall time) is only
shown to people.

Expiring is one transaction that deletes the lease only if its beat is still the one seen,
then re-queues the running jobs of the agents it held: two collectors noticing at once
re-queue once, and a lease renewed meanwhile is not expired at all.

The tables' DDL is in collector.store.schema (new tables: the schema version stays 4).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from typing import NamedTuple

from collector.store.connection import Database
from collector.store.rows import typed

_REQUEUE_HELD = (
    "UPDATE jobs SET state='queued', updated=? WHERE state='running' AND agent_id IN "
    "(SELECT agent_id FROM agent_holders WHERE collector_id=?)"
)


class LeaseRow(NamedTuple):
    collector_id: str
    host: str
    pid: int
    endpoint: str
    beat: int
    started: float
    renewed: float


def this_host() -> str:
    """This machine and PID namespace: a lease's pid can be checked only where both match
    (two containers may share a hostname, never a PID namespace inode)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}/{namespace}"[:200]


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists here (a reused pid reads as alive: the safe side)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class Leases(Database):
    """The ``collector_leases`` and ``agent_holders`` tables."""

    def claim_lease(self, collector_id: str, endpoint: str) -> None:
        """Write this collector's lease (beat 0), before it serves anyone."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO collector_leases (collector_id, host, pid, endpoint, beat, started, "
                "renewed) VALUES (?, ?, ?, ?, 0, ?, ?)",
                (collector_id, this_host(), os.getpid(), endpoint[:500], now, now),
            )

    def renew_lease(self, collector_id: str) -> bool:
        """One more beat; False when the lease is gone (another collector expired it while
        this one was stalled longer than the heartbeat timeout)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE collector_leases SET beat=beat+1, renewed=? WHERE collector_id=?",
                (time.time(), collector_id),
            )
        return cur.rowcount > 0

    def leases(self) -> list[LeaseRow]:
        cur = self.db.execute("SELECT * FROM collector_leases ORDER BY started, collector_id")
        return [typed(LeaseRow, row) for row in cur]

    def expire_lease(self, collector_id: str, beat: int) -> int | None:
        """Expire a lease still at `beat` and re-queue its agents' running jobs, in one
        transaction; the number re-queued, or None when the lease was renewed or expired by
        someone else first."""
        with self.transaction() as db:
            gone = db.execute(
                "DELETE FROM collector_leases WHERE collector_id=? AND beat=?",
                (collector_id, beat),
            )
            if gone.rowcount == 0:
                return None
            requeued = db.execute(_REQUEUE_HELD, (time.time(), collector_id)).rowcount
            db.execute("DELETE FROM agent_holders WHERE collector_id=?", (collector_id,))
        return int(requeued)

    def release_lease(self, collector_id: str) -> int:
        """A clean stop: give up the lease and re-queue the running jobs of this collector's
        agents (they reconnect elsewhere, or here after a restart, and adopt them)."""
        with self.transaction() as db:
            db.execute("DELETE FROM collector_leases WHERE collector_id=?", (collector_id,))
            requeued = db.execute(_REQUEUE_HELD, (time.time(), collector_id)).rowcount
            db.execute("DELETE FROM agent_holders WHERE collector_id=?", (collector_id,))
        return int(requeued)

    def requeue_unheld(self) -> int:
        """Running jobs whose agent no leased collector holds go back to the queue: what a
        store from before leases, or a collector that stopped, left running."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET state='queued', updated=? WHERE state='running' AND agent_id "
                "NOT IN (SELECT h.agent_id FROM agent_holders h JOIN collector_leases l "
                "ON l.collector_id = h.collector_id)",
                (time.time(),),
            )
        return int(cur.rowcount)

    def hold_agent(self, agent_id: str, collector_id: str) -> None:
        """This collector holds the agent now (it registered here): its liveness is judged
        here, and only here are its running jobs re-queued when it goes silent."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO agent_holders (agent_id, collector_id, seen) VALUES (?, ?, ?) "
                "ON CONFLICT(agent_id) DO UPDATE SET collector_id=excluded.collector_id, "
                "seen=excluded.seen",
                (agent_id, collector_id, time.time()),
            )

    def holder(self, agent_id: str) -> str | None:
        """The collector that holds `agent_id`, or None."""
        row = self.db.execute(
            "SELECT collector_id FROM agent_holders WHERE agent_id=?", (agent_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def held_agents(self, collector_id: str) -> set[str]:
        cur = self.db.execute(
            "SELECT agent_id FROM agent_holders WHERE collector_id=?", (collector_id,)
        )
        return {str(row[0]) for row in cur}

    def held_elsewhere(self, collector_id: str) -> set[str]:
        """Agents some other collector holds."""
        cur = self.db.execute(
            "SELECT agent_id FROM agent_holders WHERE collector_id<>?", (collector_id,)
        )
        return {str(row[0]) for row in cur}

    def touch_held(self, collector_id: str, agent_ids: Iterable[str]) -> None:
        """When each of these agents (held here) was last seen: wall time, for people."""
        now = time.time()
        rows = [(now, agent_id, collector_id) for agent_id in agent_ids]
        if not rows:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE agent_holders SET seen=? WHERE agent_id=? AND collector_id=?", rows
            )

    def unstart_others(self, agent_id: str, running: str | None) -> int:
        """An agent new to this collector runs `running` (or nothing): any other job of its
        left running was sent by a collector it has left and never reached it, so it goes
        back to the queue, the attempt not counted (an agent runs one job at a time)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET state='queued', updated=?, "
                "attempts=CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
                "WHERE agent_id=? AND state='running' AND job_id<>?",
                (time.time(), agent_id, running or ""),
            )
        return int(cur.rowcount)
