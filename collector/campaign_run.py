"""`flopgap campaign run CONFIG`: validate, upload models, submit, and follow to the end.

Validation happens here, before anything is queued: a bad key, a missing model or an empty
selector never reaches the collector. Models travel by content hash; the collector stores each
once. The live view (collector.campaign_view) shows done / running / failed / waiting per
device, valid and invalid results apart, and an ETA.

No wait is silent: the collector refuses a campaign no registered agent matches, unless
`--wait-for-agents SECONDS` asks to queue it, and then this client waits that long for one.
The exit status says whether every job gave a valid result (campaign_view.EXIT_CODES_HELP).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from collector import campaign_view
from collector.campaign_view import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_NO_AGENT
from collector.client import Client
from shared import protocol
from shared.errors import FlopgapError
from shared.keys import PeerKeys

POLL_S = 0.5


class NoMatchingAgent(FlopgapError):
    """No agent matching the campaign's targets registered within --wait-for-agents."""

    exit_code = EXIT_NO_AGENT


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
    replace: bool = False,
    wait_for_agents: float | None = None,
) -> int:
    """Submit `config` and follow it; the exit status is one of campaign_view.EXIT_CODES_HELP.

    `replace` takes the name from an existing campaign (renamed NAME@ID8); `wait_for_agents`
    lets the collector queue a campaign no registered agent matches yet, and bounds how long
    this waits for one (NoMatchingAgent once it passes)."""
    out = out or sys.stdout
    stop = stop or threading.Event()
    with tempfile.TemporaryDirectory(prefix="flopgap-campaign-") as tmp:
        payload, blobs = payload_for(config, Path(tmp))
    if replace:  # only when asked: a collector older than these keys refuses unknown ones
        payload["replace"] = True
    if wait_for_agents is not None:
        payload["wait_for_agents"] = True
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
        if accepted.jobs == 0 and wait_for_agents is not None:
            if not wait_for_agent(client, accepted.campaign_id, wait_for_agents, stop, out):
                return EXIT_INTERRUPTED
        if detach:
            return 0
        return follow(client, accepted.campaign_id, stop, out)


def wait_for_agent(
    client: Client, campaign_id: str, seconds: float, stop: threading.Event, out: Any
) -> bool:
    """Wait up to `seconds` until a matching agent registers and gets the campaign's jobs;
    False when interrupted, NoMatchingAgent when the time passes."""
    print(f"no registered agent matches yet; waiting up to {seconds:g} s for one", file=out,
          flush=True)  # fmt: skip
    deadline = time.monotonic() + seconds
    while True:
        camp = _campaign(client, campaign_id)
        if sum(camp["jobs"].values()) > 0:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            raise NoMatchingAgent(
                f"no agent matching campaign {camp['name']} registered within {seconds:g} s",
                hint=f"it stays queued as {campaign_id[:8]} and an agent that registers later "
                "still gets its jobs; start one, or check [targets] against `flopgap status`",
            )
        if stop.wait(min(POLL_S, left)):
            return False


def _campaign(client: Client, campaign_id: str) -> dict[str, Any]:
    reply = client.request(protocol.StatusRequest(campaign_id), protocol.Status)
    assert isinstance(reply, protocol.Status)
    campaigns = reply.status["campaigns"]
    if not campaigns:
        raise FlopgapError(
            f"the collector no longer knows campaign {campaign_id[:8]}",
            hint="was it restarted on another --db?",
        )
    return dict(campaigns[0])


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
            return exit_status(camp)
        if stop.wait(POLL_S):
            return EXIT_INTERRUPTED


def exit_status(camp: dict[str, Any]) -> int:
    """0 when every job gave a valid result; EXIT_FAILED, else EXIT_INVALID, otherwise."""
    results = campaign_view.validity(camp)
    if camp["jobs"]["failed"] or (results is not None and results["failed"]):
        return EXIT_FAILED
    if results is not None and results["invalid"]:
        return EXIT_INVALID
    return 0


class ProgressView:
    """A per-device progress table, redrawn in place on a terminal, appended to otherwise."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.lines = 0
        self.last = ""

    def draw(self, camp: dict[str, Any], agents: list[dict[str, Any]]) -> None:
        if not self.tty:  # a log: one line per change of the counts, no redraws
            line = campaign_view.progress_line(camp)
            if line != self.last:
                self.out.write(line + "\n")
                self.out.flush()
                self.last = line
            return
        text = campaign_view.progress_table(camp, agents)
        if text == self.last:
            return
        if self.lines:
            self.out.write(f"\x1b[{self.lines}F\x1b[J")
        self.out.write(text + "\n")
        self.out.flush()
        self.lines, self.last = text.count("\n") + 1, text

    def summary(self, camp: dict[str, Any]) -> None:
        print(campaign_view.summary_line(camp), file=self.out, flush=True)


def print_status(
    endpoint: str, insecure: bool = False, out: Any = None, keys: PeerKeys | None = None
) -> int:
    """`flopgap status`: agents and campaigns, as a table."""
    out = out or sys.stdout
    with Client(endpoint, insecure=insecure, keys=keys) as client:
        reply = client.request(protocol.StatusRequest(""), protocol.Status)
    assert isinstance(reply, protocol.Status)
    for line in campaign_view.status_lines(reply.status):
        print(line, file=out)
    return 0
