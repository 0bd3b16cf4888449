"""The registry answers per-message questions from its indexes (issue 19: 5,000 agents a
collector): its device index must follow re-registrations, and the liveness scan it skips
until the oldest beat can have expired must still find every silent agent."""

from __future__ import annotations

import threading
import time

from collector.server.registry import AgentRecord, Registry

_POLL = threading.Event()  # never set: wait(t) is a bounded polling period


def _agent(name: str, device: str, route: bytes | None = None, ago: float = 0.0) -> AgentRecord:
    record = AgentRecord(name, route or name.encode(), device, {}, {})
    record.last_seen = time.monotonic() - ago
    return record


def test_sharing_and_device_busy_follow_a_reregistration_onto_another_device() -> None:
    reg = Registry(missing_after_s=5.0)
    a, b, c = (reg.register(_agent(n, "board")) for n in ("a", "b", "c"))
    assert [r.agent_id for r in reg.sharing(b)] == ["c", "a"]  # in turn, starting after b
    a.running = "job"
    assert reg.device_busy(b) is a and reg.device_busy(a) is None
    moved = reg.register(_agent("a", "other", b"new-route"))  # a came back on another board
    assert reg.device_busy(b) is None  # the old record no longer holds "board"
    assert [r.agent_id for r in reg.sharing(b)] == ["c"]
    assert reg.sharing(moved) == [] and reg.by_route(b"new-route") is moved
    assert reg.by_route(b"a") is None
    c.state = "missing"
    assert reg.sharing(b) == []  # only online agents share


def test_an_agent_without_a_device_shares_with_nobody() -> None:
    reg = Registry(missing_after_s=5.0)
    x, y = reg.register(_agent("x", "")), reg.register(_agent("y", ""))
    y.running = "job"
    assert reg.sharing(x) == [] and reg.device_busy(x) is None


def _missing_within(reg: Registry, timeout: float) -> list[AgentRecord]:
    """Scan until someone is missing, bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    found: list[AgentRecord] = reg.newly_missing()
    while not found and time.monotonic() < deadline:
        _POLL.wait(0.01)  # a polling period under a deadline
        found = reg.newly_missing()
    return found


def test_the_skipped_liveness_scan_still_finds_each_silent_agent() -> None:
    reg = Registry(missing_after_s=0.2)
    fresh = reg.register(_agent("fresh", "d1"))
    assert reg.newly_missing() == []  # sets the next scan for fresh's expiry
    stale = reg.register(_agent("stale", "d2", ago=10.0))  # older than that expiry
    assert reg.newly_missing() == [stale] and stale.state == "missing"
    assert reg.newly_missing() == []  # marked once
    assert _missing_within(reg, 5.0) == [fresh]  # 0.2 s after its registration
    reg.touch(stale)  # nobody was online: the next scan was put off for ever, until this beat
    assert stale.state == "online" and reg.newly_missing() == []
    assert _missing_within(reg, 5.0) == [stale]  # silent again for 0.2 s


def test_silence_is_counted_only_up_to_when_the_collector_last_caught_up() -> None:
    """A collector busy for seconds has heartbeats waiting unread: an agent whose last beat
    read is older than the timeout is not missing if the collector has not caught up since."""
    reg = Registry(missing_after_s=5.0)
    agent = reg.register(_agent("busy", "d", ago=8.0))  # its last beat read is 8 s old
    caught_up = time.monotonic() - 4.0  # the socket last ran empty 4 s ago: 4 s of silence
    assert reg.newly_missing(caught_up) == [] and agent.state == "online"
    assert reg.newly_missing() == [agent]  # caught up now: 8 s of silence is missing
