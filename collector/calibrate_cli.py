"""`flopgap calibrate --agent NAME [--threads N]`: re-measure a device's peak and bandwidth now.

Why: the collector calibrates each agent once per thread count on its own, and keeps only a
valid calibration (collector.enrich); after the board is fixed or quietened, or when a report
names a calibration too old to trust, the user asks for a fresh one here. It is an ordinary
one-job campaign (the zoo's mlp on that agent, at those threads) whose job settings carry
`calibrate = true`, so the agent calibrates after the job whatever the collector has cached.
The command follows it to its end, then reads the calibration from the collector's --db and
prints it: figures, every round, spread, verdict and when it was taken.

Exit codes: 0 when the calibration is valid and stored as the device's figure; 4
(MeasurementError) when it came out invalid, with its reasons (nothing is stored); 2 for bad
input (unknown or offline agent, no database); 1 when it did not finish in --timeout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from collector import keys_cli
from collector.cli_flags import add_collector_flags
from collector.store.location import may_exist
from shared.cli_parsers import Subparsers, command
from shared.errors import FlopgapError, MeasurementError, UsageError

MODEL = "mlp"  # the zoo's quickest model: the job is only the calibration's carrier
CAMPAIGN = """# Written by `flopgap calibrate`: one job whose settings ask for a calibration.
name = {name}
models = ["zoo:{model}"]
retries = 0
[matrix]
threads = [{threads}]
[targets]
agents = [{agent}]
[measure]
min_iterations = 64
min_seconds = 0.2
warmup_runs = 2
warmup_seconds = 0.05
repeats = 1
"""
_POLL = threading.Event()  # never set: wait(t) is the polling period under a deadline


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register the ``calibrate`` subcommand."""
    p = command(
        subparsers,
        "calibrate",
        run,
        help="re-measure an agent's peak GFLOP/s and memory bandwidth now",
        description="Ask agent NAME to calibrate at --threads now (a one-job campaign), wait "
        "for it, and print the calibration from --db with its verdict. Exit 0: valid and "
        "stored; 4: invalid (its reasons are printed; nothing is stored); 2: bad input.",
    )
    p.add_argument("--agent", required=True, metavar="NAME", help="the agent to calibrate")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--db", type=Path, required=True, help="the database `flopgap serve` uses")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="give up waiting after this long (default %(default)g)",
    )
    add_collector_flags(p)
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Submit the calibration job, follow it, print what came back."""
    import sys

    from collector.client import Client

    stream = out if out is not None else sys.stdout
    if args.threads < 0:
        raise UsageError(f"--threads {args.threads} must be >= 0", hint="0 is ORT's default")
    if not may_exist(args.db):
        raise UsageError(
            f"no database at {args.db}", hint="pass the --db that `flopgap serve` uses"
        )
    with Client(args.collector, insecure=args.insecure, keys=keys_cli.client_keys(args)) as client:
        _check_agent(client, args.agent, args.collector)
        campaign_id, name = _submit(client, args.agent, args.threads)
        print(f"calibrating {args.agent} at {args.threads} threads ({name})", file=stream)
        _wait(client, campaign_id, args.timeout)
    return report(args.db, campaign_id, args.agent, args.threads, stream)


def _check_agent(client: Any, agent: str, endpoint: str) -> None:
    """Refuse an agent the collector does not know, or knows as missing."""
    from shared import protocol

    reply = client.request(protocol.StatusRequest(""), protocol.Status)
    agents = {a["name"]: a["state"] for a in reply.status["agents"]}
    if agent not in agents:
        known = ", ".join(sorted(agents)) or "none"
        raise UsageError(
            f"no agent {agent!r} is registered with the collector at {endpoint} "
            f"(registered: {known})",
            hint=f"start it with `flopgap-agent run --name {agent} --collector {endpoint}`, "
            "or pass one of the registered names",
        )
    if agents[agent] != "online":
        raise UsageError(
            f"agent {agent!r} is {agents[agent]}, not online",
            hint="check that its `flopgap-agent run` is up, then try again",
        )


def _submit(client: Any, agent: str, threads: int) -> tuple[str, str]:
    """Upload the model and submit the one-job campaign; returns (campaign id, name)."""
    from collector.campaign_run import payload_for
    from shared import protocol

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"calibrate-{agent}-t{threads}-{stamp}"  # unique: a name is never reused
    with tempfile.TemporaryDirectory(prefix="flopgap-calibrate-") as tmp:
        config = Path(tmp) / "calibrate.toml"
        config.write_text(CAMPAIGN.format(name=json.dumps(name), model=MODEL, threads=threads,
                                          agent=json.dumps(agent)))  # fmt: skip
        payload, blobs = payload_for(config, Path(tmp))
    for job in payload["jobs"]:
        job["settings"]["calibrate"] = True  # whatever the collector has cached
    for sha, data in blobs.items():
        client.send(protocol.ModelData(sha, data))
    accepted = client.request(protocol.SubmitCampaign(payload), protocol.CampaignAccepted)
    return str(accepted.campaign_id), name


def _wait(client: Any, campaign_id: str, timeout: float) -> None:
    """Poll the campaign's state until done, or raise after `timeout` seconds."""
    from shared import protocol

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = client.request(protocol.StatusRequest(campaign_id), protocol.Status)
        campaigns = reply.status["campaigns"]
        if campaigns and campaigns[0]["state"] == "done":
            return
        _POLL.wait(0.5)
    raise FlopgapError(
        f"the calibration did not finish within {timeout:g} s",
        hint="it is still queued or running: its result is stored when it comes (see "
        "`flopgap status`); pass a longer --timeout next time",
    )


def report(db: Path, campaign_id: str, agent: str, threads: int, out: TextIO) -> int:
    """Print the campaign's calibration and whether it is now the device's figure; 0 when it
    is, MeasurementError (exit 4) when it came out invalid."""
    from collector.enrich import calibration_valid
    from collector.store import Store

    store = Store(db)
    try:
        rows = store.result_rows(campaign_id)
        cached = {(r.agent_id, r.threads): r for r in store.calibration_rows()}
        stored = cached.get((agent, threads))
    finally:
        store.close()
    taken = [json.loads(r.document_json) for r in rows if r.document_json]
    calibrations = [d["calibration"] for d in taken if d.get("calibration")]
    if not calibrations:
        errors = "; ".join(str(r.error) for r in rows if r.error) or "no result was stored"
        raise MeasurementError(
            f"{agent} returned no calibration ({errors})",
            hint="see the agent's log; an agent older than this collector cannot calibrate",
        )
    is_stored = stored is not None and any(
        stored.detail.get("measured_at") == c.get("measured_at") for c in calibrations
    )
    calibration = stored.detail if is_stored and stored is not None else calibrations[-1]
    out.write(describe(agent, threads, calibration))
    if is_stored:
        out.write(f"stored as {agent}'s calibration at {threads} threads\n")
        return 0
    if not calibration_valid(calibration):
        reasons = "; ".join(calibration.get("invalid_reasons") or ["no reason recorded"])
        raise MeasurementError(
            f"the calibration of {agent} at {threads} threads is invalid, not stored: {reasons}",
            hint=f"stop the other work on that board, then `flopgap calibrate --agent {agent} "
            f"--threads {threads}` again",
        )
    raise MeasurementError(
        f"the calibration of {agent} at {threads} threads was not stored",
        hint="see the collector's log (enrich) for why",
    )


def describe(agent: str, threads: int, cal: dict[str, Any]) -> str:
    """The calibration as a few aligned lines."""
    from collector.enrich import calibration_valid

    peak, bw = cal.get("peak_gflops"), cal.get("bandwidth_gbs")
    verdict = (
        "valid"
        if calibration_valid(cal)
        else "INVALID: " + "; ".join(cal.get("invalid_reasons") or ["no reason recorded"])
    )
    lines = [f"calibration of {agent} at {threads} threads, taken {cal.get('measured_at', 'n/a')}"]
    for label, key, unit in (("peak", "peak_gflops", "GFLOP/s"), ("bandwidth", "bandwidth_gbs",
                                                                   "GB/s")):  # fmt: skip
        runs = ", ".join(f"{v:.1f}" for v in cal.get(f"{key}_runs") or [])
        spread = cal.get(f"{label}_spread")
        extra = f"  (rounds {runs}; spread {spread:.1%})" if runs and spread is not None else ""
        value = cal.get(key)
        lines.append(f"  {label:<10} {_num(value)} {unit}{extra}")
    ridge = "n/a"
    if isinstance(peak, (int, float)) and isinstance(bw, (int, float)) and bw > 0:
        ridge = f"{peak / bw:.1f}"
    lines.append(f"  {'ridge':<10} {ridge} FLOP/B")
    lines.append(f"  {'verdict':<10} {verdict}")
    lines += [f"  warning    {w}" for w in cal.get("warnings") or []]
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "n/a"
