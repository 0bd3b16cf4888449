"""Campaign scheduling: which agent gets which jobs.

A submitted campaign carries its expanded job list (model x settings x repeat; the client
expands it because only the client can read the model files) and a target selector. Every
matching agent gets its own copy of the job list, at submission for agents already known and
at registration for agents that join later, and (collectors sharing a store) on the heartbeat
tick of the collector holding an agent, for campaigns another collector accepted. Jobs queue
per agent: measurements never overlap on a device, and a device's results always come from
that device.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from collector.campaign.spec import MAX_RETRY_INVALID
from collector.campaign.targets import Targets
from collector.store import Store
from collector.store.rows import CampaignRow
from shared import schema
from shared.errors import ProtocolError, UsageError
from shared.settings import parse_job_settings

PAYLOAD_KEYS = {"name", "targets", "jobs", "timeout_s", "retries", "spec"}
# Keys a newer client may add; an older client's payload without them stays valid.
# replace: take the name from an existing campaign; wait_for_agents: accept a campaign that
# matches no registered agent yet (the client bounds how long it waits for one);
# retry_invalid: how many times an invalid result is measured again.
OPTIONAL_PAYLOAD_KEYS = {"replace", "wait_for_agents", "retry_invalid"}
FLAG_PAYLOAD_KEYS = {"replace", "wait_for_agents"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger("flopgap.collector")
_checked: set[str] = set()  # ids of stored campaigns whose payload passed check_payload


def targets_match(targets: Mapping[str, Any], agent_name: str, tags: Mapping[str, str]) -> bool:
    """The stored selector applied to one agent (an empty selector matches nobody)."""
    try:
        selector = Targets(tuple(targets.get("agents") or ()), dict(targets.get("tags") or {}))
    except UsageError:
        return False
    return selector.matches(agent_name, tags)


MAX_JOBS = 100_000  # jobs in one submitted campaign, per agent
_NAME = schema.Text(max_len=256, min_len=1)
PAYLOAD = schema.Obj(
    {
        "name": _NAME,
        "targets": schema.Obj(
            {"agents": schema.ListOf(_NAME, max_len=1024, nullable=True),
             "tags": schema.Obj(values=schema.Text(max_len=256), max_keys=64, nullable=True)},
            closed=True),
        "jobs": schema.ListOf(schema.Obj(
            {"model": _NAME, "sha256": schema.Text(max_len=64, min_len=64),
             "settings": schema.Obj(values=schema.ANY, max_keys=64),
             "repeat": schema.Num(low=0, high=1_000_000, integer=True)},
            required=frozenset({"model", "sha256", "settings", "repeat"})),
            min_len=1, max_len=MAX_JOBS),
        "timeout_s": schema.Num(low=0, strict=True, high=7 * 86400),
        "retries": schema.Num(low=0, high=100, integer=True),
        "retry_invalid": schema.Num(low=0, high=MAX_RETRY_INVALID, integer=True),
        "replace": schema.Flag(),
        "wait_for_agents": schema.Flag(),
        "spec": schema.ANY,
    },
    required=frozenset(PAYLOAD_KEYS),
)  # fmt: skip


def check_payload(payload: Mapping[str, Any]) -> None:
    """Refuse a malformed campaign before anything is queued, naming the field: every key
    typed and in range (PAYLOAD), each job's hash 64 lowercase hex and its settings what the
    agent would accept (shared.settings.parse_job_settings)."""
    missing = PAYLOAD_KEYS - payload.keys()
    unknown = payload.keys() - PAYLOAD_KEYS - OPTIONAL_PAYLOAD_KEYS
    if missing or unknown:
        raise UsageError(f"campaign payload: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if not isinstance(payload.get("jobs"), list) or not payload["jobs"]:
        raise UsageError("campaign has no jobs")
    try:
        schema.check(PAYLOAD, dict(payload), "campaign")
    except ProtocolError as exc:
        hint = "fix the campaign file (or the client sending it)"
        raise UsageError(exc.message, hint=hint) from None
    for index, job in enumerate(payload["jobs"]):
        if not _SHA256.fullmatch(job["sha256"]):
            raise UsageError(f"campaign jobs[{index}].sha256: is not 64 lowercase hex digits",
                             hint="name each model by the sha256 of its bytes")  # fmt: skip
        try:
            parse_job_settings(job["settings"])
        except UsageError as exc:
            raise UsageError(f"campaign jobs[{index}].settings: {exc.message}",
                             hint=exc.hint) from None  # fmt: skip
    if not payload["targets"].get("agents") and not payload["targets"].get("tags"):
        raise UsageError(
            "the campaign's target selector is empty",
            hint='set [targets] agents = ["*"] or a tag selector',
        )


def expand_for_agent(
    store: Store, campaign: CampaignRow, agent_id: str, tags: Mapping[str, str]
) -> int:
    """Queue the campaign's jobs for one agent unless it has them already; returns how many.

    A stored campaign that fails today's checks (stored before they existed, or by hand) is
    marked failed instead of crashing every registration that expands it."""
    try:
        payload = campaign.spec
        if campaign.campaign_id not in _checked:
            check_payload(payload)
            _checked.add(campaign.campaign_id)  # once per campaign, not once per agent
    except (UsageError, ValueError, TypeError, AttributeError) as exc:
        reason = exc.message if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}"
        log.warning("campaign %s (%s) cannot be queued, marked failed: %s", campaign.name[:64],
                    campaign.campaign_id[:8], reason[:300])  # fmt: skip
        store.fail_campaign(campaign.campaign_id, reason)
        return 0
    if not targets_match(payload["targets"], agent_id, tags):
        return 0
    if store.jobs(campaign_id=campaign.campaign_id, agent_id=agent_id):
        return 0
    attempts = 1 + int(payload["retries"])
    retry_invalid = int(payload.get("retry_invalid", 0))
    rows = [
        (job_id(campaign.campaign_id, agent_id, index), campaign.campaign_id, agent_id,
         job["sha256"], job["model"], job["settings"], int(job["repeat"]), attempts,
         float(payload["timeout_s"]), retry_invalid)
        for index, job in enumerate(payload["jobs"])
    ]  # fmt: skip
    store.add_jobs(rows)
    return len(rows)


def job_id(campaign_id: str, agent_id: str, index: int) -> str:
    """A job's id, the same in every collector: two collectors sharing a store that expand
    one campaign for one agent at once write the same rows, and the second write is a no-op
    (collector.store.jobs.add_jobs) instead of a second copy of the agent's jobs."""
    key = f"{campaign_id}\0{agent_id}\0{index}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _provider_names(settings: Mapping[str, Any]) -> list[str]:
    """Every execution provider a job asks for: its provider list's names, else ``provider``."""
    listed = settings.get("providers")
    if isinstance(listed, list) and listed:
        return [str(p["name"]) for p in listed if isinstance(p, Mapping) and "name" in p]
    return [str(settings.get("provider", "CPUExecutionProvider"))]


def unsatisfiable(
    payload: Mapping[str, Any], agents: list[tuple[str, dict[str, str], list[str]]]
) -> str | None:
    """Why no matching agent can run some job (e.g. a provider none of them has), or None.

    `agents` holds (name, tags, providers) of the registered agents. With no matching agent
    registered yet nothing can be judged: agents that join later pick the campaign up.
    """
    matching = [a for a in agents if targets_match(payload["targets"], a[0], a[1])]
    if not matching:
        return None
    wanted = {name for job in payload["jobs"] for name in _provider_names(job["settings"])}
    for provider in sorted(wanted):
        if not any(provider in providers for _, _, providers in matching):
            names = ", ".join(a[0] for a in matching)
            return f"no matching agent ({names}) has execution provider {provider!r}"
    return None


def no_matching_agent(
    payload: Mapping[str, Any], agents: list[tuple[str, dict[str, str], str]]
) -> str | None:
    """Why the campaign would wait for ever (no registered agent matches its targets), naming
    the agents and tags there are so the selector can be fixed; None when one matches.

    `agents` holds (name, tags, state) of the registered agents."""
    if any(targets_match(payload["targets"], name, tags) for name, tags, _ in agents):
        return None
    targets = payload["targets"]
    wanted = ", ".join(
        [f"agents {list(targets.get('agents') or [])}"] * bool(targets.get("agents"))
        + [f"tags {_tags(targets.get('tags') or {})}"] * bool(targets.get("tags"))
    )
    if not agents:
        return f"no agent is registered, so none matches the campaign's targets ({wanted})"
    there = "; ".join(f"{name} ({state}, tags {_tags(tags)})" for name, tags, state in agents)
    return f"no registered agent matches the campaign's targets ({wanted}); registered: {there}"


def _tags(tags: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"
