"""What clients send before and as a campaign: its models (ModelData, stored by hash), then
the campaign (SubmitCampaign): check it, store it, expand it into jobs for the agents
registered now, answer CampaignAccepted and start dispatching.

A campaign is refused (UsageError, sent back as a Reject) when one of its models was not
uploaded first or when no registered agent can satisfy part of its matrix. Agents that
register later get their jobs from collector.server.handlers.agents.
"""

from __future__ import annotations

import logging
import uuid

from collector import scheduler
from collector.server.context import Context, Sender
from collector.server.handlers import jobs
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
    scheduler.check_payload(payload)
    for job in payload["jobs"]:
        if job["sha256"] not in models:
            raise UsageError(
                f"model {job['model']} ({job['sha256'][:12]}) was not uploaded",
                hint="send its ModelData before SubmitCampaign",
            )
    agents = [(a.agent_id, a.tags, list(a.descriptor.get("providers", [])))
              for a in registry.all()]  # fmt: skip
    problem = scheduler.unsatisfiable(payload, agents)
    if problem:
        raise UsageError(problem, hint="change the campaign's matrix or targets")
    campaign_id = uuid.uuid4().hex
    for job in payload["jobs"]:
        store.add_model(
            job["sha256"],
            job["model"],
            str(models.path(job["sha256"])),
            models.path(job["sha256"]).stat().st_size,
        )
    campaign = store.add_campaign(campaign_id, str(payload["name"]), payload)
    total = sum(scheduler.expand_for_agent(store, campaign, a.agent_id, a.tags)
                for a in registry.all())  # fmt: skip
    log.info("campaign %s (%s) accepted: %d jobs on %d agents now", payload["name"],
             campaign_id[:8], total, len({j.agent_id for j in store.jobs(
                 campaign_id=campaign_id)}))  # fmt: skip
    ctx.reply(sender.routing_id, protocol.CampaignAccepted(campaign_id, total))
    for agent in registry.all():
        jobs.dispatch(ctx, agent)
