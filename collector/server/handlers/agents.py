"""An agent's life as the collector sees it: registration (and re-registration after a
reconnect or a restart), adopting the job it says it is running, and going missing.

A re-registering agent that runs the same process (same `agent_instance`) has only
reconnected, so a job the old connection was sent goes back to the queue, the attempt not
counted; one that restarted lost that job, which counts as a failed attempt. An agent silent
for MISSING_AFTER_BEATS heartbeats (collector.server.loop) is marked missing and its running job's
attempt fails; the store requeues the job while attempts remain. With collectors sharing a
store, the collector an agent registered with last holds it (collector.store.leases): only that
one judges its liveness, and one that sees it go silent while another holds it forgets it.
"""

from __future__ import annotations

import logging
from typing import Any

from collector import scheduler
from collector.server.context import Context, Sender
from collector.server.handlers import jobs
from collector.server.registry import AgentRecord
from collector.store.rows import CampaignState, JobState
from shared import protocol
from shared.log_safe import safe

log = logging.getLogger("flopgap.collector")


def agent_name(ctx: Context, msg: protocol.Register, identity: str | None) -> str:
    """Who is registering: the key's name with keys, else the name the agent claims."""
    if identity is None:
        return msg.agent_name
    name = identity.partition(":")[2]
    if msg.agent_name != name:
        ctx.counters["name_mismatch"] += 1
        log.warning("agent key %s claimed the name %r: registered as %s (its key's name)",
                    safe(name), safe(msg.agent_name, 64), safe(name))  # fmt: skip
    return name


def register(ctx: Context, sender: Sender, msg: protocol.Register) -> None:
    """Record the agent, settle the job its previous connection ran, queue the running
    campaigns' jobs for it, welcome it and give it work."""
    store, registry, routing_id = ctx.store, ctx.registry, sender.routing_id
    name = agent_name(ctx, msg, sender.identity)
    previous = registry.get(name)
    agent = registry.register(AgentRecord(
        name, routing_id, str(msg.device.get("device_id", ""))[:DESCRIPTOR_TEXT_CHARS],
        dict(msg.tags), kept_descriptor(msg.device)))  # fmt: skip
    store.upsert_agent(agent.agent_id, msg.device, msg.tags)
    store.hold_agent(agent.agent_id, ctx.collector_id)  # its liveness is judged here now
    if previous is None:  # new here: a job another collector sent it may never have arrived
        store.unstart_others(agent.agent_id, msg.running_job_id)
    elif previous.running and previous.running != msg.running_job_id:
        same_process = previous.descriptor.get("agent_instance") == agent.descriptor.get(
            "agent_instance"
        )
        if same_process:  # a reconnect: the Job may have gone to the old connection
            store.unstart_job(previous.running)
        else:
            jobs.fail(ctx, agent, previous.running, "agent_restarted",
                          "the agent restarted while running this job")  # fmt: skip
    if msg.running_job_id:
        adopt_running(ctx, agent, msg.running_job_id)
    for campaign in store.campaigns(state=CampaignState.RUNNING):
        scheduler.expand_for_agent(store, campaign, agent.agent_id, agent.tags)
    log.info(
        "agent %s registered (device %s, %s)",
        safe(agent.agent_id),
        safe(agent.device_id),
        safe(msg.device.get("cpu_model", "?")),
    )
    sharers = registry.sharing(agent)
    if sharers:
        names = ", ".join(a.agent_id for a in sharers)
        log.info("agent %s shares device %s with %s: their jobs run one at a time",
                 safe(agent.agent_id), safe(agent.device_id), safe(names))  # fmt: skip
    ctx.reply(routing_id, protocol.Welcome(agent.agent_id, ctx.heartbeat_s))
    jobs.dispatch(ctx, agent)


DESCRIPTOR_KEYS = 64  # of a descriptor kept in memory (the store keeps the whole one)
DESCRIPTOR_TEXT_CHARS = 1000
DESCRIPTOR_LIST_ITEMS = 64


def kept_descriptor(device: dict[str, Any]) -> dict[str, Any]:
    """The descriptor as the registry keeps it for the agent's whole connection: a few keys,
    strings cut, lists of short strings, no nested documents. Up to 256 kB a Register times
    thousands of agents would otherwise be the collector's memory; the store keeps it all."""
    kept: dict[str, Any] = {}
    for key, value in list(device.items())[:DESCRIPTOR_KEYS]:
        if isinstance(value, str):
            kept[key] = value[:DESCRIPTOR_TEXT_CHARS]
        elif isinstance(value, (int, float, bool, type(None))):
            kept[key] = value
        elif isinstance(value, list):
            kept[key] = [v[:200] if isinstance(v, str) else v for v in value[:DESCRIPTOR_LIST_ITEMS]
                         if isinstance(v, (str, int, float, bool))]  # fmt: skip
    return kept


def heartbeat(ctx: Context, sender: Sender, msg: protocol.Heartbeat) -> None:
    """A beat keeps the agent online (the loop touched it); one naming a job the collector
    did not know it ran (after a collector restart) adopts that job."""
    agent = sender.registered
    if msg.job_id and agent.running is None:
        adopt_running(ctx, agent, msg.job_id)


def adopt_running(ctx: Context, agent: AgentRecord, job_id: str) -> None:
    """Take the agent's word that it runs `job_id`, if that job is its own and not done."""
    job = ctx.store.job(job_id)
    if job is None or job.agent_id != agent.agent_id or job.state.terminal:
        return
    if job.state is JobState.QUEUED:
        ctx.store.mark_running(job_id)
    agent.running = job_id


def check_liveness(ctx: Context, caught_up: float | None = None) -> None:
    """Mark agents that stopped heartbeating missing and fail the job each was running.

    `caught_up` is when the collector last had no message waiting unread (monotonic s): an
    agent is missing only if it was silent that long before it, so a collector busy for
    seconds (a campaign dispatched to 5,000 agents) does not take the heartbeats queued
    behind the work for silence."""
    for agent in ctx.registry.newly_missing(caught_up):
        holder = ctx.store.holder(agent.agent_id)
        if holder is not None and holder != ctx.collector_id:  # it moved to another collector
            log.info("agent %s went silent here and is connected to another collector: "
                     "forgotten here", safe(agent.agent_id))  # fmt: skip
            ctx.registry.forget(agent)
            continue
        log.warning("agent %s missed its heartbeats: marked missing", safe(agent.agent_id))
        if agent.running is not None:
            job = ctx.store.job(agent.running)
            jobs.fail(
                ctx,
                agent,
                agent.running,
                "agent_missing",
                f"agent went silent for {ctx.registry.missing_after_s:g} s mid-job",
            )
            if job is not None:
                jobs.campaign_progress(ctx, job.campaign_id)
            jobs.dispatch_device(ctx, agent)  # its device is free for the agents sharing it
