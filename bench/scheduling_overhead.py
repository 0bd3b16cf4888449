"""Scheduling overhead per job: campaign wall time minus the time the agent spent measuring,
divided by the number of jobs, on loopback (target <= 50 ms).

A real collector and a real agent (subprocesses) run a campaign of 30 repeats of a tiny
model with minimal measurement settings, so overhead is a large share of each job. Measuring
time is what each result document reports: load + first inference + warm-up + steady state.
Everything else (dispatch, the forked child, sampler start/stop, result spool and ack, the
FLOPs count, the client's polling) is overhead.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

from bench.figure import Figure
from bench.fleet_helpers import collector, tiny_model
from collector.campaign_run import run_campaign
from collector.procs import Child
from collector.store import Store

JOBS = 30


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tiny_model(folder)
        config = folder / "sched.toml"
        config.write_text(
            'name = "sched"\nmodels = ["tiny.onnx"]\n[matrix]\nthreads = [1]\n[targets]\n'
            f'agents = ["bench"]\n[measure]\nmin_iterations = 10\nmin_seconds = 0\n'
            f"warmup_runs = 1\nwarmup_seconds = 0\nrepeats = {JOBS}\n"
        )
        db = folder / "sched.sqlite"
        server, endpoint = collector(db)
        agent = Child([sys.executable, "-m", "agent", "run", "--collector", endpoint, "--name",
                       "bench", "--spool", str(folder / "spool"), "--cache",
                       str(folder / "cache")], "agent")  # fmt: skip
        try:
            server.seen(r"agent bench registered", 60)
            t0 = time.perf_counter()
            code = run_campaign(config, endpoint, detach=False, out=io.StringIO())
            wall = time.perf_counter() - t0
        finally:
            agent.stop()
            server.stop()
        store = Store(db)
        docs = [r.document for r in store.result_rows() if r.document is not None]
        campaign = store.campaigns()[0]
        store.close()
    # The collector's own clock, from accepting the campaign to its last stored result: the
    # client's status polling (every 0.5 s) is not the scheduler's cost.
    stored_wall = (campaign.finished or time.time()) - campaign.created
    measured = sum(
        (d["load_ms"] + d["first_inference_ms"] + d["warmup"]["ms"]) / 1e3 + d["steady_seconds"]
        for d in docs
    )
    per_job_ms = (stored_wall - measured) / max(1, len(docs)) * 1e3
    detail = (
        f"{len(docs)} jobs (exit {code}): accepted to last result stored {stored_wall:.2f} s, "
        f"of which measuring {measured:.2f} s; client wall {wall:.2f} s"
    )
    return [Figure("scheduling overhead per job, ms (loopback)", per_job_ms, 50.0, True, detail)]
