"""Who is connected: one record per agent, its liveness and what it is running.

The collector's ROUTER sees routing ids; an agent's identity is the name it registered
with (until CURVE keys make it the key it authenticated with). An agent that sends nothing for
`missing_after_s` is marked missing; its running job is requeued by the server.
"""

from __future__ import annotations

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
    """Agents by name and by routing id."""

    def __init__(self, missing_after_s: float) -> None:
        self.missing_after_s = missing_after_s
        self._by_name: dict[str, AgentRecord] = {}
        self._by_route: dict[bytes, str] = {}

    def register(self, record: AgentRecord) -> AgentRecord:
        """Add or replace an agent (a re-registration may come from a new connection)."""
        old = self._by_name.get(record.agent_id)
        if old is not None:
            self._by_route.pop(old.routing_id, None)
        self._by_name[record.agent_id] = record
        self._by_route[record.routing_id] = record.agent_id
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

    def newly_missing(self) -> list[AgentRecord]:
        """Online agents silent for longer than missing_after_s; marks them missing."""
        now = time.monotonic()
        found = [
            r for r in self._by_name.values()
            if r.state == "online" and now - r.last_seen > self.missing_after_s
        ]  # fmt: skip
        for record in found:
            record.state = "missing"
        return found

    def device_busy(self, record: AgentRecord) -> AgentRecord | None:
        """Another online agent on `record`'s device that is running a job, if any. An agent
        without a device id shares with nobody."""
        if not record.device_id:
            return None
        for other in self._by_name.values():
            if (other is not record and other.device_id == record.device_id
                    and other.state == "online" and other.running is not None):  # fmt: skip
                return other
        return None

    def sharing(self, record: AgentRecord) -> list[AgentRecord]:
        """The other online agents on `record`'s device, in name order starting after it."""
        if not record.device_id:
            return []
        ring = sorted(
            (r for r in self._by_name.values()
             if r.device_id == record.device_id and r.state == "online"),
            key=lambda r: r.agent_id,
        )  # fmt: skip
        at = next((i for i, r in enumerate(ring) if r is record), -1)
        return [r for r in ring[at + 1 :] + ring[: at + 1] if r is not record]

    def all(self) -> list[AgentRecord]:
        return sorted(self._by_name.values(), key=lambda r: r.agent_id)
