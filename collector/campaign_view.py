"""What `campaign run` and `flopgap status` print from the collector's status document.

Validity is never folded into "done": a result judged invalid (another process used the CPU,
the frequency moved, ...) is a measurement that must not be read as one, so every view counts
valid, invalid and failed apart and names the commonest invalid reasons. A collector that
predates the split (no ``results`` in a campaign, no ``sharing`` in an agent) is shown as
before. Pure functions of the document, so the rendering is tested without a collector.
"""

from __future__ import annotations

from typing import Any

from shared.verdicts import kinds_text, summary

# The exit status of `campaign run` (also its --help epilog).
EXIT_FAILED = 1  # some job failed (an error result: crash, timeout, out of memory, ...)
EXIT_INVALID = 7  # no job failed, but some job's final result is invalid
EXIT_NO_AGENT = 8  # no matching agent registered within --wait-for-agents
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    f"exit status: 0 every job gave a valid result; {EXIT_FAILED} some job failed; "
    f"{EXIT_INVALID} none failed but some results are invalid; 2 refused (bad file, name taken, "
    f"no matching agent); {EXIT_NO_AGENT} no matching agent registered within "
    f"--wait-for-agents; {EXIT_INTERRUPTED} interrupted"
)


def validity(camp: dict[str, Any]) -> dict[str, Any] | None:
    """The campaign's result counts split by validity, or None from an older collector."""
    results = camp.get("results")
    return results if isinstance(results, dict) else None


def results_text(results: dict[str, Any]) -> str:
    """`24 results: 20 valid, 4 invalid (other processes 3, frequency changed 1), 0 failed`."""
    return summary(results["valid"], results["invalid"], results["failed"],
                   results.get("invalid_reasons") or {})  # fmt: skip


def summary_line(camp: dict[str, Any]) -> str:
    """The final line of `campaign run`."""
    head = f"campaign {camp['name']} complete in {camp['elapsed_s']:.0f} s: "
    results = validity(camp)
    if results is None:
        jobs = camp["jobs"]
        return head + f"{jobs['done']} results, {jobs['failed']} failed jobs"
    return head + results_text(results)


def progress_line(camp: dict[str, Any]) -> str:
    """The one-line view for a log (not a terminal): job counts, then validity so far."""
    jobs = camp["jobs"]
    line = (f"campaign {camp['name']}: done {jobs['done']}  running {jobs['running']}  "
            f"failed {jobs['failed']}  waiting {jobs['queued']}")  # fmt: skip
    results = validity(camp)
    if results is not None:
        line += f"  (valid {results['valid']}  invalid {results['invalid']}"
        reasons = kinds_text(results.get("invalid_reasons") or {})
        line += f": {reasons})" if results["invalid"] and reasons else ")"
    return line


def agent_state(agent: dict[str, Any] | None) -> str:
    """An agent's state, and the agents it shares its device with (it measures only while the
    device is free)."""
    if agent is None:
        return "unknown"
    sharing = agent.get("sharing") or []
    if not sharing:
        return str(agent["state"])
    return f"{agent['state']}, shares device {agent.get('device_id') or '?'} with " + ", ".join(
        sharing
    )


def progress_table(camp: dict[str, Any], agents: list[dict[str, Any]]) -> str:
    """The terminal view: a header with elapsed time, ETA and validity, one bar per agent."""
    online = {a["name"]: a for a in agents}
    rows = []
    for name, counts in sorted(camp["per_agent"].items()):
        total = sum(counts.values()) or 1
        filled = round(20 * (counts["done"] + counts["failed"]) / total)
        rows.append(
            f"  {name:<20} [{'#' * filled}{'.' * (20 - filled)}] "
            f"done {counts['done']}  running {counts['running']}  "
            f"failed {counts['failed']}  waiting {counts['queued']}  "
            f"({agent_state(online.get(name))})"
        )
    if camp.get("per_agent_omitted"):
        rows.append(f"  ... and {camp['per_agent_omitted']} more agents (counted above)")
    eta = f"ETA {camp['eta_s']:.0f} s" if camp.get("eta_s") is not None else "ETA n/a"
    head = f"campaign {camp['name']}: {camp['elapsed_s']:.0f} s, {eta}"
    results = validity(camp)
    if results is not None:
        head += f"; {results_text(results)}"
    return "\n".join([head, *rows])


def status_lines(status: dict[str, Any]) -> list[str]:
    """`flopgap status`: the agents, then the campaigns with validity apart from "done"."""
    lines = [f"{'agent':<20} {'state':<8} {'busy':<10} {'last seen':>9}  tags"]
    for a in status["agents"]:
        tags = ",".join(f"{k}={v}" for k, v in a["tags"].items())
        busy = (a["busy"] or "-")[:8]
        line = f"{a['name']:<20} {a['state']:<8} {busy:<10} {a['last_seen_s']:>8.1f}s  {tags}"
        if a.get("sharing"):
            line += f"  [shares device {a.get('device_id') or '?'} with {', '.join(a['sharing'])}]"
        lines.append(line)
    lines.extend(_fleet_lines(status))
    lines.append("")
    split = any(validity(c) is not None for c in status["campaigns"])
    head = f"{'campaign':<20} {'id':<8} {'state':<8} {'done':>5} {'run':>4} {'fail':>5} {'wait':>5}"
    lines.append(head + (f" {'valid':>6} {'invalid':>7}  invalid reasons" if split else ""))
    for c in status["campaigns"]:
        j = c["jobs"]
        line = (f"{c['name']:<20} {c['campaign_id'][:8]:<8} {c['state']:<8} {j['done']:>5} "
                f"{j['running']:>4} {j['failed']:>5} {j['queued']:>5}")  # fmt: skip
        results = validity(c)
        if results is not None:
            line += f" {results['valid']:>6} {results['invalid']:>7}"
            line += f"  {kinds_text(results.get('invalid_reasons') or {}) or '-'}"
        if not sum(j.values()) and c["state"] != "done":
            line += "  (no matching agent has registered yet)"
        lines.append(line)
    counters = ", ".join(f"{k} {v}" for k, v in sorted(status["counters"].items()))
    lines.append(f"\nmessages: {counters}")
    return lines


def _fleet_lines(status: dict[str, Any]) -> list[str]:
    """`... and 4900 more agents (4000 online, 900 missing; 12 busy in all)` when a large
    fleet's status lists only some of its agents (none from an older collector)."""
    fleet = status.get("fleet")
    if not isinstance(fleet, dict) or fleet.get("agents", 0) <= fleet.get("listed", 0):
        return []
    states = ", ".join(f"{n} {state}" for state, n in sorted(fleet.get("states", {}).items()))
    more = fleet["agents"] - fleet["listed"]
    return [f"... and {more} more agents ({states}; {fleet.get('busy', 0)} busy in all)"]
