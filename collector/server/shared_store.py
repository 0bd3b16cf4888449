"""What a collector does each heartbeat while other collectors share its store.

Alone, a collector learns of every new job as it creates it (a submission, a registration).
Sharing the store, another process may have accepted a campaign, re-queued a dead
collector's jobs, or taken one of this collector's agents: so every heartbeat this collector
reads the store and

- forgets the agents another collector holds now (they reconnected there; liveness is judged
  where an agent is connected, and their jobs are that collector's to settle),
- holds again the online agents no collector holds (its own lease was expired while it was
  stalled, which dropped its holder rows),
- queues each campaign it has not seen yet for the agents it holds (job ids are derived, so
  a campaign expanded by two collectors at once is stored once: collector.scheduler.job_id),
- and offers every idle agent it holds its next queued job.

It also records, every few heartbeats, when each held agent was last seen here.
"""

from __future__ import annotations

import logging
import time

from collector import scheduler
from collector.server.context import Context
from collector.server.handlers import jobs
from collector.store.rows import CampaignState
from shared.log_safe import safe

log = logging.getLogger("flopgap.collector")


class SharedStore:
    """The per-heartbeat poll of a shared store; one per collector."""

    def __init__(self, touch_every_s: float) -> None:
        self.touch_every_s = touch_every_s
        self._known: set[str] = set()  # running campaigns already queued for held agents
        self._touched_at = time.monotonic()

    def touch(self, ctx: Context, now: float | None = None) -> None:
        """Write when each held agent was last seen here, at most once per touch_every_s."""
        now = time.monotonic() if now is None else now
        if now - self._touched_at < self.touch_every_s:
            return
        seen = [a.agent_id for a in ctx.registry.all()
                if a.state == "online" and a.last_seen >= self._touched_at]  # fmt: skip
        self._touched_at = now
        ctx.store.touch_held(ctx.collector_id, seen)

    def poll(self, ctx: Context) -> None:
        """Settle who holds whom, queue new campaigns, then dispatch to idle held agents."""
        store, me = ctx.store, ctx.collector_id
        held = store.held_agents(me)
        elsewhere = store.held_elsewhere(me)
        for agent in ctx.registry.all():
            if agent.agent_id in elsewhere:
                log.info("agent %s is connected to another collector now: forgotten here",
                         safe(agent.agent_id))  # fmt: skip
                ctx.registry.forget(agent)
            elif agent.agent_id not in held and agent.state == "online":
                store.hold_agent(agent.agent_id, me)
                held.add(agent.agent_id)
        mine = [a for a in ctx.registry.all() if a.agent_id in held]
        running = store.campaigns(state=CampaignState.RUNNING)
        self._known &= {c.campaign_id for c in running}
        for campaign in running:
            if campaign.campaign_id in self._known:
                continue
            self._known.add(campaign.campaign_id)
            queued = sum(scheduler.expand_for_agent(store, campaign, a.agent_id, a.tags)
                         for a in mine if a.state == "online")  # fmt: skip
            if queued:
                log.info("campaign %s (%s), accepted by another collector: %d jobs queued "
                         "for agents here", safe(campaign.name[:64]), campaign.campaign_id[:8],
                         queued)  # fmt: skip
        for agent in mine:
            jobs.dispatch(ctx, agent)
