"""An agent's life as the collector sees it: registration (and re-registration after a
reconnect or a restart), adopting the job it says it is running, and going missing.

A re-registering agent that runs the same process (same `agent_instance`) has only
reconnected, so a job the old connection was sent goes back to the queue, the attempt not
counted; one that restarted lost that job, which counts as a failed attempt. An agent silent
for MISSING_AFTER_BEATS heartbeats (collector.server) is marked missing and its running job's
attempt fails; the store requeues the job while attempts remain.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from collector import job_flow, scheduler
from collector.registry import AgentRecord
from shared import protocol

if TYPE_CHECKING:
    from collector.server import Collector

log = logging.getLogger("flopgap.collector")


def agent_name(collector: Collector, msg: protocol.Register, identity: str | None) -> str:
    """Who is registering: the key's name with keys, else the name the agent claims."""
    if identity is None:
        return msg.agent_name
    name = identity.partition(":")[2]
    if msg.agent_name != name:
        collector.counters["name_mismatch"] += 1
        log.warning("agent key %s claimed the name %r: registered as %s (its key's name)",
                    name, msg.agent_name[:64], name)  # fmt: skip
    return name


def register(
    collector: Collector, routing_id: bytes, msg: protocol.Register, identity: str | None
) -> None:
    """Record the agent, settle the job its previous connection ran, queue the running
    campaigns' jobs for it, welcome it and give it work."""
    store, registry = collector.store, collector.registry
    name = agent_name(collector, msg, identity)
    previous = registry.get(name)
    agent = registry.register(AgentRecord(
        name, routing_id, str(msg.device.get("device_id", "")), dict(msg.tags),
        dict(msg.device)))  # fmt: skip
    store.upsert_agent(agent.agent_id, msg.device, msg.tags)
    if previous is not None and previous.running and previous.running != msg.running_job_id:
        same_process = previous.descriptor.get("agent_instance") == agent.descriptor.get(
            "agent_instance"
        )
        if same_process:  # a reconnect: the Job may have gone to the old connection
            store.unstart_job(previous.running)
        else:
            job_flow.fail(collector, agent, previous.running, "agent_restarted",
                          "the agent restarted while running this job")  # fmt: skip
    if msg.running_job_id:
        adopt_running(collector, agent, msg.running_job_id)
    for campaign in store.campaigns(state="running"):
        scheduler.expand_for_agent(store, campaign, agent.agent_id, agent.tags)
    log.info(
        "agent %s registered (device %s, %s)",
        agent.agent_id,
        agent.device_id,
        msg.device.get("cpu_model", "?"),
    )
    collector._send(routing_id, protocol.Welcome(agent.agent_id, collector.heartbeat_s))
    job_flow.dispatch(collector, agent)


def adopt_running(collector: Collector, agent: AgentRecord, job_id: str) -> None:
    """Take the agent's word that it runs `job_id`, if that job is its own and not done."""
    job = collector.store.job(job_id)
    if job is not None and job["agent_id"] == agent.agent_id and job["state"] == "queued":
        collector.store.mark_running(job_id)
        agent.running = job_id
    elif job is not None and job["agent_id"] == agent.agent_id and job["state"] == "running":
        agent.running = job_id


def check_liveness(collector: Collector) -> None:
    """Mark agents that stopped heartbeating missing and fail the job each was running."""
    for agent in collector.registry.newly_missing():
        log.warning("agent %s missed its heartbeats: marked missing", agent.agent_id)
        if agent.running is not None:
            job = collector.store.job(agent.running)
            job_flow.fail(
                collector,
                agent,
                agent.running,
                "agent_missing",
                f"agent went silent for {collector.registry.missing_after_s:g} s mid-job",
            )
            if job is not None:
                job_flow.campaign_progress(collector, job["campaign_id"])
