"""Who is connected: one record per agent, its liveness and what it is running.

The collector's ROUTER sees routing ids; an agent's identity is the name it registered
with (until CURVE keys make it the key it authenticated with). An agent that sends nothing for
`missing_after_s` is marked missing; its running job is requeued by the server.

Every question the loop asks per message is answered without walking the fleet (issue 19:
5,000 agents a collector): agents are indexed by device, and the liveness scan, which the
loop calls after every batch, runs only once the oldest beat it saw can have expired.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AgentRecord:
    """The collector's view of one agent."""

    agent_id: str
    routing_id: bytes
    device_id: str
    tags: dict[str, str]
    descriptor: dict[str, Any]
    last_seen: float = field(default_factory=time.monotonic)
    state: str = "online"  # online | missing
    running: str | None = None  # job id
    waiting_model: str | None = None  # sha256 the agent asked for

    @property
    def idle(self) -> bool:
        return self.state == "online" and self.running is None


class Registry:
    """Agents by name, by routing id and by device."""

    def __init__(self, missing_after_s: float) -> None:
        self.missing_after_s = missing_after_s
        self._by_name: dict[str, AgentRecord] = {}
        self._by_route: dict[bytes, str] = {}
        self._by_device: dict[str, dict[str, AgentRecord]] = {}  # device id -> name -> record
        # No online agent can have been silent for missing_after_s before this (monotonic s).
        # Each beat or registration lowers it to its own expiry if that comes sooner, so
        # skipping the scan until then misses nobody.
        self._scan_after = -math.inf

    def register(self, record: AgentRecord) -> AgentRecord:
        """Add or replace an agent (a re-registration may come from a new connection)."""
        old = self._by_name.get(record.agent_id)
        if old is not None:
            self._by_route.pop(old.routing_id, None)
            held = self._by_device.get(old.device_id)
            if held is not None:
                held.pop(old.agent_id, None)
                if not held:
                    del self._by_device[old.device_id]
        self._by_name[record.agent_id] = record
        self._by_route[record.routing_id] = record.agent_id
        if record.device_id:
            self._by_device.setdefault(record.device_id, {})[record.agent_id] = record
        self._scan_after = min(self._scan_after, record.last_seen + self.missing_after_s)
        return record

    def forget(self, record: AgentRecord) -> None:
        """Drop an agent that is connected to another collector sharing the store now."""
        if self._by_name.get(record.agent_id) is record:
            del self._by_name[record.agent_id]
            self._by_route.pop(record.routing_id, None)

    def by_route(self, routing_id: bytes) -> AgentRecord | None:
        name = self._by_route.get(routing_id)
        return self._by_name.get(name) if name is not None else None

    def get(self, agent_id: str) -> AgentRecord | None:
        return self._by_name.get(agent_id)

    def touch(self, record: AgentRecord) -> None:
        record.last_seen = time.monotonic()
        record.state = "online"
        self._scan_after = min(self._scan_after, record.last_seen + self.missing_after_s)

    def newly_missing(self, now: float | None = None) -> list[AgentRecord]:
        """Online agents silent for longer than missing_after_s before `now` (monotonic s,
        default the present); marks them missing."""
        now = time.monotonic() if now is None else now
        if now <= self._scan_after:
            return []
        found, oldest = [], math.inf
        for r in self._by_name.values():
            if r.state != "online":
                continue
            if now - r.last_seen > self.missing_after_s:
                found.append(r)
            elif r.last_seen < oldest:
                oldest = r.last_seen
        for record in found:
            record.state = "missing"
        self._scan_after = oldest + self.missing_after_s
        return found

    def _on_device(self, record: AgentRecord) -> list[AgentRecord]:
        """The online agents on `record`'s device, itself included; none without a device."""
        if not record.device_id:
            return []
        held = self._by_device.get(record.device_id, {})
        return [r for r in held.values() if r.state == "online"]

    def device_busy(self, record: AgentRecord) -> AgentRecord | None:
        """Another online agent on `record`'s device that is running a job, if any. An agent
        without a device id shares with nobody."""
        for other in self._on_device(record):
            if other is not record and other.running is not None:
                return other
        return None

    def sharing(self, record: AgentRecord) -> list[AgentRecord]:
        """The other online agents on `record`'s device, in name order starting after it."""
        ring = sorted(self._on_device(record), key=lambda r: r.agent_id)
        at = next((i for i, r in enumerate(ring) if r is record), -1)
        return [r for r in ring[at + 1 :] + ring[: at + 1] if r is not record]

    def all(self) -> list[AgentRecord]:
        return sorted(self._by_name.values(), key=lambda r: r.agent_id)
