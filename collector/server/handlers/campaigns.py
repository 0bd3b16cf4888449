"""What clients send before and as a campaign: its models (ModelData, stored by hash), then
the campaign (SubmitCampaign): check it, store it, expand it into jobs for the agents
registered now, answer CampaignAccepted and start dispatching. Agents connected to other
collectors sharing the store count as registered for the checks; their collector queues the
campaign for them on its next heartbeat (collector.server.shared_store).

A campaign is refused (UsageError, sent back as a Reject) when one of its models was not
uploaded first, when its name is taken (unless the payload says `replace`: the old campaign
is renamed NAME@ID8 and stays reachable by that name and its id), when no registered agent
matches its targets (unless the payload says `wait_for_agents`: the client then bounds the
wait) or when no matching agent can satisfy part of its matrix. Agents that register later
get their jobs from collector.server.handlers.agents.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from collector import scheduler
from collector.server.context import Context, Sender
from collector.server.handlers import jobs
from collector.store.rows import AgentRow, CampaignRow
from shared import protocol
from shared.errors import UsageError

log = logging.getLogger("flopgap.collector")


def upload_model(ctx: Context, sender: Sender, msg: protocol.ModelData) -> None:
    """Keep an uploaded model under its hash (a campaign names its models by hash)."""
    ctx.models.put(msg.model)


def submit(ctx: Context, sender: Sender, msg: protocol.SubmitCampaign) -> None:
    """Check, store and expand a submitted campaign, then reply and dispatch."""
    store, models, registry = ctx.store, ctx.models, ctx.registry
    payload = msg.campaign
    taken = _check(ctx, payload)
    name, campaign_id = str(payload["name"]), uuid.uuid4().hex
    for old in taken:  # only with `replace`: the old campaign keeps its id and results
        store.rename_campaign(old.campaign_id, f"{name}@{old.campaign_id[:8]}")
        log.info("campaign %s (%s) renamed %s@%s: replaced by %s", name, old.campaign_id[:8],
                 name, old.campaign_id[:8], campaign_id[:8])  # fmt: skip
    for job in payload["jobs"]:
        store.add_model(
            job["sha256"],
            job["model"],
            str(models.path(job["sha256"])),
            models.path(job["sha256"]).stat().st_size,
        )
    campaign = store.add_campaign(campaign_id, name, payload)
    total = sum(scheduler.expand_for_agent(store, campaign, a.agent_id, a.tags)
                for a in registry.all())  # fmt: skip
    log.info("campaign %s (%s) accepted: %d jobs on %d agents now%s", name, campaign_id[:8],
             total, len({j.agent_id for j in store.jobs(campaign_id=campaign_id)}),
             "" if total else "; waiting for a matching agent to register")  # fmt: skip
    ctx.reply(sender.routing_id, protocol.CampaignAccepted(campaign_id, total))
    for agent in registry.all():
        jobs.dispatch(ctx, agent)


def _check(ctx: Context, payload: dict[str, Any]) -> list[CampaignRow]:
    """Refuse what cannot or should not be queued; returns the campaigns whose name this one
    takes over (empty unless the payload says `replace`)."""
    scheduler.check_payload(payload)
    for job in payload["jobs"]:
        if job["sha256"] not in ctx.models:
            raise UsageError(
                f"model {job['model']} ({job['sha256'][:12]}) was not uploaded",
                hint="send its ModelData before SubmitCampaign",
            )
    name = str(payload["name"])
    taken = ctx.store.campaigns_named(name)
    if taken and not payload.get("replace"):
        raise UsageError(
            f"a campaign named {name!r} exists already (id "
            f"{', '.join(r.campaign_id[:8] for r in taken)})",
            hint="pass --replace to give this one the name (the old one is renamed "
            f"{name}@ID8 and keeps its results), or change `name` in the campaign file",
        )
    registered = ctx.registry.all()
    agents = [(a.agent_id, a.tags, list(a.descriptor.get("providers", [])))
              for a in registered]  # fmt: skip
    states = [(a.agent_id, a.tags, a.state) for a in registered]
    for row in _held_elsewhere(ctx):  # they run it too: their collector queues it for them
        agents.append((row.agent_id, row.tags, list(row.descriptor.get("providers", []))))
        states.append((row.agent_id, row.tags, "online at another collector"))
    problem = scheduler.unsatisfiable(payload, agents)
    if problem:
        raise UsageError(problem, hint="change the campaign's matrix or targets")
    alone = scheduler.no_matching_agent(payload, states)
    if alone and not payload.get("wait_for_agents"):
        raise UsageError(
            alone,
            hint="fix [targets] in the campaign file, start a matching agent, or pass "
            "--wait-for-agents SECONDS to queue it for agents that register later",
        )
    return taken


def _held_elsewhere(ctx: Context) -> list[AgentRow]:
    """The agents other collectors sharing the store hold (none when this one is alone)."""
    elsewhere = ctx.store.held_elsewhere(ctx.collector_id) - {
        a.agent_id for a in ctx.registry.all()
    }
    if not elsewhere:
        return []
    return [row for row in ctx.store.agents() if row.agent_id in elsewhere]
