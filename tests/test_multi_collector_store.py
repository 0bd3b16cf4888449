"""Collectors sharing one store, at the store and lease level: two Store objects on one file
stand for two collectors (collector.store.leases, collector.server.lease_watch).

The database location comes from one fixture, `shared_store_location`, so running these
against another backend is a one-line change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from collector import scheduler
from collector.server.lease_watch import LeaseWatch
from collector.store import JobState, Store

TIMEOUT_S = 2.5


@pytest.fixture
def shared_store_location(store_url: str) -> str:
    """Where the collectors' one store lives: a SQLite file, then a PostgreSQL database."""
    return store_url


@pytest.fixture
def two(shared_store_location: str) -> Iterator[tuple[Store, Store]]:
    first, second = Store(shared_store_location), Store(shared_store_location)
    yield first, second
    first.close()
    second.close()


def _running_job(store: Store, job_id: str, agent: str) -> None:
    store.add_jobs([(job_id, "c1", agent, "f" * 64, "m", {"threads": 1}, 0, 3, 60.0)])
    assert store.start_job(job_id)


def test_a_lease_not_renewed_for_the_timeout_is_expired_and_its_agents_jobs_requeued(
    two: tuple[Store, Store],
) -> None:
    store_a, store_b = two
    store_a.add_campaign("c1", "c", {})
    a, b = LeaseWatch(store_a, "tcp://a", TIMEOUT_S), LeaseWatch(store_b, "tcp://b", TIMEOUT_S)
    a.start(), b.start()
    store_a.hold_agent("on-a", a.collector_id)
    store_b.hold_agent("on-b", b.collector_id)
    _running_job(store_a, "ja", "on-a")
    _running_job(store_b, "jb", "on-b")

    assert b.tick(now=100.0) == 0 and b.peers == 1  # first sight of a: no judgement yet
    a.tick()  # a renews: its beat moved
    assert b.tick(now=110.0) == 0  # moved since: a fresh timeout starts at 110
    assert store_b.job("ja").state is JobState.RUNNING  # type: ignore[union-attr]
    # a stops renewing (SIGKILL): one timeout later on b's clock, b expires it
    assert b.tick(now=110.0 + TIMEOUT_S - 0.5) == 0  # not unmoved for the timeout yet
    assert b.tick(now=110.0 + TIMEOUT_S + 0.5) == 1
    assert store_b.job("ja").state is JobState.QUEUED  # type: ignore[union-attr]
    assert store_b.job("jb").state is JobState.RUNNING  # type: ignore[union-attr]  (b's own)
    assert [lease.collector_id for lease in store_b.leases()] == [b.collector_id]
    assert store_b.holder("on-a") is None and store_b.holder("on-b") == b.collector_id
    # a comes back (it was only stalled): its renewal finds no lease and it claims a new one
    a.tick()
    assert {lease.collector_id for lease in store_a.leases()} == {a.collector_id, b.collector_id}


def test_two_collectors_expiring_one_lease_at_once_requeue_once(
    shared_store_location: str, two: tuple[Store, Store]
) -> None:
    store_b, store_c = two
    store_b.add_campaign("c1", "c", {})
    dead = Store(shared_store_location)
    try:
        dead.claim_lease("dead", "tcp://dead")
        dead.hold_agent("x", "dead")
        _running_job(dead, "jx", "x")
    finally:
        dead.close()
    (lease,) = store_b.leases()
    assert store_b.expire_lease("dead", lease.beat) == 1
    assert store_c.expire_lease("dead", lease.beat) is None  # already expired: no second requeue
    job = store_c.job("jx")
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 1


def test_a_renewed_lease_is_not_expired(two: tuple[Store, Store]) -> None:
    store_a, store_b = two
    store_a.claim_lease("a", "tcp://a")
    (seen,) = store_b.leases()
    assert store_a.renew_lease("a")
    assert store_b.expire_lease("a", seen.beat) is None  # the beat b saw is stale
    assert [lease.beat for lease in store_b.leases()] == [seen.beat + 1]


def test_startup_expires_a_dead_local_collector_and_requeues_what_no_one_holds(
    shared_store_location: str, two: tuple[Store, Store]
) -> None:
    store_a, store_b = two
    store_a.add_campaign("c1", "c", {})
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    store_a.claim_lease("killed", "tcp://old")  # as if SIGKILLed: pid below exists no more
    store_a.db.execute("UPDATE collector_leases SET pid=? WHERE collector_id='killed'",
                       (int(gone.stdout),))  # fmt: skip
    store_a.hold_agent("held-by-killed", "killed")
    _running_job(store_a, "j1", "held-by-killed")
    _running_job(store_a, "j2", "held-by-nobody")
    store_a.claim_lease("live", "tcp://live")  # this process: alive
    store_a.hold_agent("held-by-live", "live")
    _running_job(store_a, "j3", "held-by-live")

    restarted = LeaseWatch(store_b, "tcp://new", TIMEOUT_S)
    assert restarted.start() == 2  # j1 (its collector's pid is gone) and j2 (no holder)
    states = {j: store_b.job(j).state for j in ("j1", "j2", "j3")}  # type: ignore[union-attr]
    assert states == {"j1": JobState.QUEUED, "j2": JobState.QUEUED, "j3": JobState.RUNNING}
    assert os.getpid() in {lease.pid for lease in store_b.leases()}
    assert restarted.release() == 0
    assert store_a.release_lease("live") == 1  # a clean stop: its agent's j3 requeued
    assert store_b.leases() == []


def test_a_campaign_expanded_by_two_collectors_at_once_is_stored_once(
    two: tuple[Store, Store],
) -> None:
    store_a, store_b = two
    payload = {"name": "c", "targets": {"agents": ["*"]}, "timeout_s": 60, "retries": 1,
               "spec": {}, "jobs": [{"model": "m", "sha256": "a" * 64,
                                     "settings": {"threads": 1}, "repeat": 0}] * 3}  # fmt: skip
    campaign = store_a.add_campaign("c" * 32, "c", payload)
    assert scheduler.expand_for_agent(store_a, campaign, "agent", {}) == 3
    # b had read "no jobs for this agent yet" before a's rows committed: it writes them again
    store_b.add_jobs(
        [
            (
                scheduler.job_id(campaign.campaign_id, "agent", i),
                campaign.campaign_id,
                "agent",
                "a" * 64,
                "m",
                {"threads": 1},
                0,
                2,
                60.0,
            )
            for i in range(3)
        ]
    )
    assert len(store_b.jobs(campaign_id=campaign.campaign_id)) == 3  # fmt: skip


def test_a_job_is_claimed_by_one_collector_only(two: tuple[Store, Store]) -> None:
    store_a, store_b = two
    store_a.add_campaign("c1", "c", {})
    store_a.add_jobs([("j", "c1", "agent", "f" * 64, "m", {}, 0, 3, 60.0)])
    assert store_a.start_job("j")
    assert not store_b.start_job("j")  # queued no more
    job = store_b.job("j")
    assert job is not None and job.attempts == 1


def test_an_agent_new_here_gets_back_jobs_it_never_received(two: tuple[Store, Store]) -> None:
    store_a, store_b = two
    store_a.add_campaign("c1", "c", {})
    _running_job(store_a, "sent-to-a-connection", "agent")  # the Job went to a dead route
    store_a.add_jobs([("in-flight", "c1", "agent", "f" * 64, "m", {}, 0, 3, 60.0)])
    store_a.start_job("in-flight")
    assert store_b.unstart_others("agent", "in-flight") == 1  # it registered naming in-flight
    lost = store_b.job("sent-to-a-connection")
    assert lost is not None and lost.state is JobState.QUEUED and lost.attempts == 0
    assert store_b.job("in-flight").state is JobState.RUNNING  # type: ignore[union-attr]
