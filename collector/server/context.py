"""What a message handler may touch: the store, the models, the registry, the counters and
`reply()`. Never the socket: a handler cannot block the loop, and a reply it sends inside a
batch waits for the batch's commit (collector.server.loop).

A handler says no by raising `Refused` (or a ProtocolError or UsageError); the loop answers
with a Reject in words meant for the sender and serves on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.server.disk import DiskState
from collector.server.registry import AgentRecord, Registry
from collector.store import Store
from collector.store.model_files import ModelStore
from shared import protocol
from shared.errors import ProtocolError


class Refused(ProtocolError):
    """A well-formed message the collector will not act on; `code` tells the peer why."""

    def __init__(self, message: str, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


@dataclass(frozen=True)
class Sender:
    """Who sent a message: its route, its key's identity ("agent:NAME", "client:NAME", or
    None on loopback without keys) and, once it has registered, the agent it is."""

    routing_id: bytes
    identity: str | None = None
    agent: AgentRecord | None = None

    @property
    def registered(self) -> AgentRecord:
        """The registered agent; the loop calls agent handlers only for registered agents."""
        if self.agent is None:
            raise Refused("message from an unregistered agent", "unregistered",
                          hint="send Register first")  # fmt: skip
        return self.agent


class Context:
    """The collector's state as handlers see it; the loop owns one and the socket."""

    def __init__(
        self,
        store: Store,
        models: ModelStore,
        registry: Registry,
        send: Callable[[bytes, protocol.Message], None],
        heartbeat_s: float,
        calibrate: bool,
        collector_id: str = "",
    ) -> None:
        self.store = store
        self.collector_id = collector_id  # this process's lease (collector.server.lease_watch)
        self.models = models
        self.registry = registry
        self.heartbeat_s = heartbeat_s
        self.calibrate = calibrate  # ask each agent to calibrate once per threads setting
        self.counters = {"rejected": 0, "results": 0, "duplicates": 0, "dropped": 0,
                         "unsent": 0, "auth_denied": 0, "name_mismatch": 0,
                         "commits": 0}  # fmt: skip
        self.progress: dict[str, dict[str, Any]] = {}  # job id -> the agent's last Progress
        self.disk = DiskState(store.path.parent)  # full or not: collector.server.disk
        self._send = send

    def reply(self, routing_id: bytes, msg: protocol.Message) -> None:
        """Send `msg` to a peer, after the current batch commits; never blocks."""
        self._send(routing_id, msg)
