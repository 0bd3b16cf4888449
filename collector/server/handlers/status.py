"""The status document: agents (online, busy, last seen, tags) and campaigns with progress.

Computed from the registry and the store on request, so `flopgap status` and
`flopgap campaign run` show the same truth.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from collector.server.context import Context, Sender
from collector.store.rows import CampaignRow, JobState
from shared import protocol
from shared.verdicts import tally


def answer(ctx: Context, sender: Sender, msg: protocol.StatusRequest) -> None:
    """Reply with the status document, for one campaign (name, id or id prefix) or all."""
    ctx.reply(sender.routing_id, protocol.Status(status_document(ctx, msg.campaign)))


def status_document(ctx: Context, campaign: str = "") -> dict[str, Any]:
    now = time.monotonic()
    agents = [
        {
            "name": a.agent_id, "state": a.state, "busy": a.running, "tags": a.tags,
            "last_seen_s": round(now - a.last_seen, 1), "board": a.descriptor.get("board"),
            "cpu_model": a.descriptor.get("cpu_model"),
            "progress": ctx.progress.get(a.running or "", None),
            "device_id": a.device_id,
            "sharing": [o.agent_id for o in ctx.registry.sharing(a)],
        }
        for a in ctx.registry.all()
    ]  # fmt: skip
    rows = ctx.store.campaigns()
    if campaign:
        rows = [r for r in rows if r.name == campaign or r.campaign_id.startswith(campaign)]
    return {
        "agents": agents,
        "campaigns": [_campaign(ctx, row) for row in rows[-20:]],
        "counters": dict(ctx.counters),
        "disk": ctx.disk.document(),  # full or not, and what is free (collector.server.disk)
    }


def _campaign(ctx: Context, row: CampaignRow) -> dict[str, Any]:
    jobs = ctx.store.jobs(campaign_id=row.campaign_id)
    per_agent: dict[str, Counter[JobState]] = {}
    for job in jobs:
        per_agent.setdefault(job.agent_id, Counter())[job.state] += 1
    totals = Counter(job.state for job in jobs)
    spans = [j.updated - j.started for j in jobs if j.state.terminal and j.started is not None]
    mean_s = sum(spans) / len(spans) if spans else None
    remaining = totals[JobState.QUEUED] + totals[JobState.RUNNING]
    workers = max(1, len(per_agent))
    return {
        "campaign_id": row.campaign_id, "name": row.name, "state": row.state.value,
        "jobs": {s.value: totals[s] for s in JobState},
        "per_agent": {a: {s.value: c[s] for s in JobState} for a, c in per_agent.items()},
        "elapsed_s": round((row.finished or time.time()) - row.created, 1),
        "eta_s": None if mean_s is None else round(mean_s * remaining / workers, 1),
        "results": _results(ctx, row.campaign_id),
    }  # fmt: skip


def _results(ctx: Context, campaign_id: str) -> dict[str, Any]:
    """Each job's result counted as valid, invalid or failed, with the invalid reasons by
    kind (shared.verdicts), from the columns the store keeps beside each document."""
    return tally(ctx.store.verdicts(campaign_id))
