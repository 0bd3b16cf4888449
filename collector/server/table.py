"""Which message the collector answers with which handler, and who may send it.

One row per message type a peer may send. Adding a message type means its dataclass in
shared.protocol, its golden sample under tests/data/wire/vN/, one row here and one handler.
The loop checks the row's role before the handler runs: with CURVE keys, a client key may
only submit, upload and ask for status, an agent key only do an agent's work; and every
agent message but Register needs a registered agent. Secure mode is the same product as
loopback: every message an agent needs (its model fetches, its results and calibrations, and
the upload of the graph ORT ran, which the per-op join reads) is allowed for an agent key, so
ModelData, which both sides send, takes either key (Role.EITHER).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple

from collector.server.context import Context, Sender
from collector.server.handlers import agents, campaigns, jobs, status
from shared import protocol


class Role(Enum):
    """Who may send a message: the key it needs, and whether it must have registered."""

    CLIENT = "client"  # a client key: submit, upload, ask
    AGENT = "agent"  # an agent key, not yet registered: its Register
    REGISTERED = "registered"  # an agent key and a Register first: the rest of its work
    EITHER = "either"  # any allowlisted key: a client's campaign models, an agent's graph

    @property
    def keys(self) -> frozenset[str]:
        """The key roles ("client", "agent") a ZAP User-Id may carry to send the message."""
        if self is Role.EITHER:
            return frozenset({"client", "agent"})
        return frozenset({"client" if self is Role.CLIENT else "agent"})

    @property
    def key(self) -> str:
        """The key to name in a refusal's hint ("client" or "agent"; EITHER never refuses)."""
        return "client" if self is Role.CLIENT else "agent"

    def admits(self, key_role: str) -> bool:
        """Whether a key of `key_role` (the part of the User-Id before ":") may send it."""
        return key_role in self.keys


Handler = Callable[[Context, Sender, Any], None]


class Route(NamedTuple):
    role: Role
    handle: Handler


ROUTES: dict[type[protocol.Message], Route] = {
    protocol.Register: Route(Role.AGENT, agents.register),
    protocol.Heartbeat: Route(Role.REGISTERED, agents.heartbeat),
    protocol.Progress: Route(Role.REGISTERED, jobs.progress),
    protocol.ModelRequest: Route(Role.REGISTERED, jobs.send_model),
    protocol.Result: Route(Role.REGISTERED, jobs.complete),
    protocol.JobFailed: Route(Role.REGISTERED, jobs.complete),
    protocol.ModelData: Route(Role.EITHER, campaigns.upload_model),  # and the agent's graph
    protocol.SubmitCampaign: Route(Role.CLIENT, campaigns.submit),
    protocol.StatusRequest: Route(Role.CLIENT, status.answer),
}

# What only the collector sends; receiving one is a peer's mistake. (ModelData goes both ways.)
SENT_ONLY: frozenset[type[protocol.Message]] = frozenset({
    protocol.Welcome, protocol.Job, protocol.CampaignAccepted, protocol.Status, protocol.Ack,
    protocol.Reject,
})  # fmt: skip
