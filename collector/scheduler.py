"""Campaign scheduling: which agent gets which jobs.

A submitted campaign carries its expanded job list (model x settings x repeat; the client
expands it because only the client can read the model files) and a target selector. Every
matching agent gets its own copy of the job list, at submission for agents already known and
at registration for agents that join later. Jobs queue per agent: measurements never overlap
on a device, and a device's results always come from that device.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from collector.campaign.spec import MAX_RETRY_INVALID
from collector.campaign.targets import Targets
from collector.store import Store
from collector.store.rows import CampaignRow
from shared.errors import UsageError

PAYLOAD_KEYS = {"name", "targets", "jobs", "timeout_s", "retries", "spec"}
# Keys a newer client may add; an older client's payload without them stays valid.
# replace: take the name from an existing campaign; wait_for_agents: accept a campaign that
# matches no registered agent yet (the client bounds how long it waits for one);
# retry_invalid: how many times an invalid result is measured again.
OPTIONAL_PAYLOAD_KEYS = {"replace", "wait_for_agents", "retry_invalid"}
FLAG_PAYLOAD_KEYS = {"replace", "wait_for_agents"}


def targets_match(targets: Mapping[str, Any], agent_name: str, tags: Mapping[str, str]) -> bool:
    """The stored selector applied to one agent (an empty selector matches nobody)."""
    try:
        selector = Targets(tuple(targets.get("agents") or ()), dict(targets.get("tags") or {}))
    except UsageError:
        return False
    return selector.matches(agent_name, tags)


def check_payload(payload: Mapping[str, Any]) -> None:
    """Refuse a malformed campaign before anything is queued."""
    missing = PAYLOAD_KEYS - payload.keys()
    unknown = payload.keys() - PAYLOAD_KEYS - OPTIONAL_PAYLOAD_KEYS
    if missing or unknown:
        raise UsageError(f"campaign payload: missing {sorted(missing)}, unknown {sorted(unknown)}")
    for key in FLAG_PAYLOAD_KEYS & payload.keys():
        if not isinstance(payload[key], bool):
            raise UsageError(f"campaign payload: {key} must be true or false")
    jobs = payload["jobs"]
    if not isinstance(jobs, list) or not jobs:
        raise UsageError("campaign has no jobs")
    for job in jobs:
        if not isinstance(job, dict) or {"model", "sha256", "settings", "repeat"} - job.keys():
            raise UsageError("campaign job lacks model, sha256, settings or repeat")
    retry_invalid = payload.get("retry_invalid", 0)
    if type(retry_invalid) is not int or not 0 <= retry_invalid <= MAX_RETRY_INVALID:
        raise UsageError(
            f"campaign retry_invalid {retry_invalid!r} is not a whole number 0-{MAX_RETRY_INVALID}",
            hint="set retry_invalid = 1 (the default) or 0 in the campaign file",
        )
    if not payload["targets"].get("agents") and not payload["targets"].get("tags"):
        raise UsageError(
            "the campaign's target selector is empty",
            hint='set [targets] agents = ["*"] or a tag selector',
        )


def expand_for_agent(
    store: Store, campaign: CampaignRow, agent_id: str, tags: Mapping[str, str]
) -> int:
    """Queue the campaign's jobs for one agent unless it has them already; returns how many."""
    payload = campaign.spec
    if not targets_match(payload["targets"], agent_id, tags):
        return 0
    if store.jobs(campaign_id=campaign.campaign_id, agent_id=agent_id):
        return 0
    attempts = 1 + int(payload["retries"])
    retry_invalid = int(payload.get("retry_invalid", 0))
    rows = [
        (uuid.uuid4().hex, campaign.campaign_id, agent_id, job["sha256"], job["model"],
         job["settings"], int(job["repeat"]), attempts, float(payload["timeout_s"]),
         retry_invalid)
        for job in payload["jobs"]
    ]  # fmt: skip
    store.add_jobs(rows)
    return len(rows)


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
    wanted = {job["settings"].get("provider", "CPUExecutionProvider") for job in payload["jobs"]}
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
