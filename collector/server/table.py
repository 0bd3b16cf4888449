"""Which message the collector answers with which handler, and who may send it.

One row per message type a peer may send. Adding a message type means its dataclass in
shared.protocol, its golden sample under tests/data/wire/vN/, one row here and one handler.
The loop checks the row's role before the handler runs: with CURVE keys, a client key may
only submit, upload and ask for status, an agent key only do an agent's work; and every
agent message but Register needs a registered agent.
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

    @property
    def key(self) -> str:
        """The key role ("client" or "agent") the ZAP User-Id must carry."""
        return "client" if self is Role.CLIENT else "agent"


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
    protocol.ModelData: Route(Role.CLIENT, campaigns.upload_model),
    protocol.SubmitCampaign: Route(Role.CLIENT, campaigns.submit),
    protocol.StatusRequest: Route(Role.CLIENT, status.answer),
}

# What only the collector sends; receiving one is a peer's mistake. (ModelData goes both ways.)
SENT_ONLY: frozenset[type[protocol.Message]] = frozenset({
    protocol.Welcome, protocol.Job, protocol.CampaignAccepted, protocol.Status, protocol.Ack,
    protocol.Reject,
})  # fmt: skip
