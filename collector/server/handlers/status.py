"""The status document: agents (online, busy, last seen, tags) and campaigns with progress.

Computed from the registry and the store on request, so `flopgap status` and
`flopgap campaign run` show the same truth.

The reply is bounded whatever the fleet: the wire refuses a Status whose JSON is over
protocol.MAX_JSON_FIELD_BYTES, and refusing it would leave the client with no answer. So at
most AGENTS_LISTED agents (and as many per campaign) are listed, with counts for the whole
fleet; every peer-supplied string is cut to TEXT_CHARS; and if the document is still too big
(tags, long names), fewer are listed until it fits.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from collector.server.context import Context, Sender
from collector.server.registry import AgentRecord
from collector.store.rows import CampaignRow, JobState
from shared import protocol
from shared.verdicts import tally

AGENTS_LISTED = 100  # agents named in one status; the rest are counted
CAMPAIGNS_LISTED = 20
TEXT_CHARS = 200  # of one peer-supplied string (name, cpu_model, tag, reason)
TAGS_LISTED = 16
SHARING_LISTED = 8
REASONS_LISTED = 10
BUDGET_BYTES = protocol.MAX_JSON_FIELD_BYTES * 3 // 4  # headroom under the wire's limit


def answer(ctx: Context, sender: Sender, msg: protocol.StatusRequest) -> None:
    """Reply with the status document, for one campaign (name, id or id prefix) or all."""
    ctx.reply(sender.routing_id, protocol.Status(status_document(ctx, msg.campaign)))


def status_document(ctx: Context, campaign: str = "") -> dict[str, Any]:
    """The document, listing fewer agents until its JSON fits BUDGET_BYTES."""
    everyone = ctx.registry.all()
    rows = ctx.store.campaigns()
    if campaign:
        rows = [r for r in rows if r.name == campaign or r.campaign_id.startswith(campaign)]
    campaigns = [_campaign(ctx, row) for row in rows[-CAMPAIGNS_LISTED:]]
    listed = AGENTS_LISTED
    while True:
        doc = {
            "agents": [_agent(ctx, a) for a in everyone[:listed]],
            "fleet": _fleet(everyone, listed),
            "campaigns": [_cut_per_agent(c, listed) for c in campaigns],
            "counters": dict(ctx.counters),
            "disk": ctx.disk.document(),  # full or not, and what is free (collector.server.disk)
        }
        if listed == 0 or _size(doc) <= BUDGET_BYTES:
            return doc
        listed //= 2


def _agent(ctx: Context, a: AgentRecord) -> dict[str, Any]:
    """One agent's entry, every peer-supplied string cut to TEXT_CHARS."""
    tags = dict(list(a.tags.items())[:TAGS_LISTED])
    return {
        "name": _cut(a.agent_id), "state": a.state, "busy": _cut(a.running), "last_seen_s":
        round(time.monotonic() - a.last_seen, 1), "board": _cut(a.descriptor.get("board")),
        "cpu_model": _cut(a.descriptor.get("cpu_model")),
        "tags": {_cut(k): _cut(v) for k, v in tags.items()},
        "progress": ctx.progress.get(a.running or "", None), "device_id": _cut(a.device_id),
        "sharing": [_cut(o.agent_id) for o in ctx.registry.sharing(a)[:SHARING_LISTED]],
    }  # fmt: skip


def _fleet(everyone: list[AgentRecord], listed: int) -> dict[str, Any]:
    """Counts over every registered agent, listed or not."""
    states = Counter(a.state for a in everyone)
    return {"agents": len(everyone), "listed": min(listed, len(everyone)),
            "busy": sum(1 for a in everyone if a.running), "states": dict(states)}  # fmt: skip


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
        "campaign_id": row.campaign_id, "name": _cut(row.name), "state": row.state.value,
        "jobs": {s.value: totals[s] for s in JobState},
        "per_agent": {_cut(a): {s.value: c[s] for s in JobState}
                      for a, c in sorted(per_agent.items())},
        "elapsed_s": round((row.finished or time.time()) - row.created, 1),
        "eta_s": None if mean_s is None else round(mean_s * remaining / workers, 1),
        "results": _results(ctx, row.campaign_id),
    }  # fmt: skip


def _cut_per_agent(camp: dict[str, Any], listed: int) -> dict[str, Any]:
    """The campaign with at most `listed` agents' counts, the rest counted as omitted."""
    per_agent = camp["per_agent"]
    if len(per_agent) <= listed:
        return camp
    kept = dict(list(per_agent.items())[:listed])
    return {**camp, "per_agent": kept, "per_agent_omitted": len(per_agent) - len(kept)}


def _results(ctx: Context, campaign_id: str) -> dict[str, Any]:
    """Each job's result counted as valid, invalid or failed, with the invalid reasons by
    kind (shared.verdicts), from the columns the store keeps beside each document; at most
    REASONS_LISTED kinds, the rest summed (reasons come from agents: any number of kinds)."""
    counts = tally(ctx.store.verdicts(campaign_id))
    reasons = list(counts["invalid_reasons"].items())  # most common first
    kept = {_cut(kind): n for kind, n in reasons[:REASONS_LISTED]}
    rest = sum(n for _, n in reasons[REASONS_LISTED:])
    if rest:
        kept["other kinds"] = kept.get("other kinds", 0) + rest
    return {**counts, "invalid_reasons": kept}


def _cut(value: object) -> Any:
    """A peer-supplied string cut to TEXT_CHARS; None and non-strings pass through as text."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "..."


def _size(doc: dict[str, Any]) -> int:
    """The document's size as the wire measures it (canonical JSON)."""
    return len(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True))
