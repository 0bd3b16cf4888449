"""`flopgap campaign run CONFIG`: validate, upload models, submit, and follow to the end.

Validation happens here, before anything is queued: a bad key, a missing model or an empty
selector never reaches the collector. Models travel by content hash; the collector stores each
once. The live view shows done / running / failed / waiting per device and an ETA.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from collector.client import Client
from shared import protocol
from shared.keys import PeerKeys

POLL_S = 0.5


def payload_for(config: Path, models_dir: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The SubmitCampaign payload and the model bytes by sha256."""
    from collector.campaign import load_campaign

    spec = load_campaign(config)
    paths = spec.materialize_models(models_dir)
    blobs: dict[str, bytes] = {}
    shas: dict[str, str] = {}
    for name, path in paths.items():
        data = path.read_bytes()
        shas[name] = hashlib.sha256(data).hexdigest()
        blobs[shas[name]] = data
    jobs = [
        {"model": job.model.name, "sha256": shas[job.model.name], "settings": job.settings,
         "repeat": job.repeat}
        for job in spec.jobs()
    ]  # fmt: skip
    payload = {
        "name": spec.name,
        "targets": {"agents": list(spec.targets.agents), "tags": dict(spec.targets.tags)},
        "jobs": jobs,
        "timeout_s": float(spec.timeout_s),
        "retries": int(spec.retries),
        "retry_invalid": int(spec.retry_invalid),
        "spec": spec.to_dict(),
    }
    return payload, blobs


def run_campaign(
    config: Path,
    endpoint: str,
    detach: bool,
    insecure: bool = False,
    stop: threading.Event | None = None,
    out: Any = None,
    keys: PeerKeys | None = None,
) -> int:
    """Submit `config` and follow it; 0 when every job produced a result, 1 if any failed."""
    out = out or sys.stdout
    with tempfile.TemporaryDirectory(prefix="flopgap-campaign-") as tmp:
        payload, blobs = payload_for(config, Path(tmp))
    with Client(endpoint, insecure=insecure, keys=keys) as client:
        for sha, data in blobs.items():
            client.send(protocol.ModelData(sha, data))
        accepted = client.request(protocol.SubmitCampaign(payload), protocol.CampaignAccepted)
        assert isinstance(accepted, protocol.CampaignAccepted)
        print(
            f"campaign {payload['name']} accepted as {accepted.campaign_id[:8]}: "
            f"{accepted.jobs} jobs on the agents registered now",
            file=out,
            flush=True,
        )
        if detach:
            return 0
        return follow(client, accepted.campaign_id, stop or threading.Event(), out)


def follow(client: Client, campaign_id: str, stop: threading.Event, out: Any) -> int:
    """Poll the collector's status until the campaign is done; draw progress as it goes."""
    view = ProgressView(out)
    while True:
        reply = client.request(protocol.StatusRequest(campaign_id), protocol.Status)
        assert isinstance(reply, protocol.Status)
        campaigns = reply.status["campaigns"]
        if not campaigns:
            print("the collector no longer knows this campaign", file=out)
            return 1
        camp = campaigns[0]
        view.draw(camp, reply.status["agents"])
        if camp["state"] == "done":
            view.summary(camp)
            return 0 if camp["jobs"]["failed"] == 0 else 1
        if stop.wait(POLL_S):
            return 130


class ProgressView:
    """A per-device progress table, redrawn in place on a terminal, appended to otherwise."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.lines = 0
        self.last = ""

    def draw(self, camp: dict[str, Any], agents: list[dict[str, Any]]) -> None:
        if not self.tty:  # a log: one line per change of the job counts, no redraws
            jobs = camp["jobs"]
            line = (f"campaign {camp['name']}: done {jobs['done']}  running {jobs['running']}  "
                    f"failed {jobs['failed']}  waiting {jobs['queued']}")  # fmt: skip
            if line != self.last:
                self.out.write(line + "\n")
                self.out.flush()
                self.last = line
            return
        online = {a["name"]: a for a in agents}
        rows = []
        for name, counts in sorted(camp["per_agent"].items()):
            total = sum(counts.values()) or 1
            filled = round(20 * (counts["done"] + counts["failed"]) / total)
            state = online.get(name, {}).get("state", "unknown")
            rows.append(
                f"  {name:<20} [{'#' * filled}{'.' * (20 - filled)}] "
                f"done {counts['done']}  running {counts['running']}  "
                f"failed {counts['failed']}  waiting {counts['queued']}  ({state})"
            )
        eta = f"ETA {camp['eta_s']:.0f} s" if camp.get("eta_s") is not None else "ETA n/a"
        text = "\n".join([f"campaign {camp['name']}: {camp['elapsed_s']:.0f} s, {eta}", *rows])
        if text == self.last:
            return
        if self.lines:
            self.out.write(f"\x1b[{self.lines}F\x1b[J")
        self.out.write(text + "\n")
        self.out.flush()
        self.lines, self.last = text.count("\n") + 1, text

    def summary(self, camp: dict[str, Any]) -> None:
        jobs = camp["jobs"]
        print(
            f"campaign {camp['name']} complete in {camp['elapsed_s']:.0f} s: {jobs['done']} "
            f"results, {jobs['failed']} failed jobs",
            file=self.out,
            flush=True,
        )


def print_status(
    endpoint: str, insecure: bool = False, out: Any = None, keys: PeerKeys | None = None
) -> int:
    """`flopgap status`: agents and campaigns, as a table."""
    out = out or sys.stdout
    with Client(endpoint, insecure=insecure, keys=keys) as client:
        reply = client.request(protocol.StatusRequest(""), protocol.Status)
    assert isinstance(reply, protocol.Status)
    status = reply.status
    print(f"{'agent':<20} {'state':<8} {'busy':<10} {'last seen':>9}  tags", file=out)
    for a in status["agents"]:
        tags = ",".join(f"{k}={v}" for k, v in a["tags"].items())
        busy = (a["busy"] or "-")[:8]
        print(
            f"{a['name']:<20} {a['state']:<8} {busy:<10} {a['last_seen_s']:>8.1f}s  {tags}",
            file=out,
        )
    print(file=out)
    print(f"{'campaign':<20} {'state':<8} {'done':>5} {'run':>4} {'fail':>5} {'wait':>5}", file=out)
    for c in status["campaigns"]:
        j = c["jobs"]
        print(
            f"{c['name']:<20} {c['state']:<8} {j['done']:>5} {j['running']:>4} "
            f"{j['failed']:>5} {j['queued']:>5}",
            file=out,
        )
    counters = ", ".join(f"{k} {v}" for k, v in sorted(status["counters"].items()))
    print(f"\nmessages: {counters}", file=out)
    return 0
