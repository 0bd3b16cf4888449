"""`flopgap demo` (what `make demo` runs): the whole system on loopback in about a minute.

Builds the model zoo, writes a campaign for it, starts a real collector and a real agent as
subprocesses on 127.0.0.1, runs the campaign through the same client as
`flopgap campaign run`, prints theory beside practice and writes the CSV.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from collector.campaign_run import run_campaign
from collector.campaign_view import EXIT_INVALID
from collector.export import rows, write_csv
from collector.procs import Child
from collector.report import build_report, render_text, write_html
from collector.store import Store
from collector.zoo import write_zoo

CAMPAIGN = """# Written by `flopgap demo`: every zoo model on the local demo agent.
name = "demo"
models = [{models}]
[matrix]
threads = [{threads}]
[targets]
agents = ["demo-agent"]
[measure]
min_iterations = 64
min_seconds = {min_seconds}
repeats = 1
profile_ops = true
"""


def run_demo(out: Path, min_seconds: float = 2.0, threads: int = 1) -> int:
    """Run the demo; returns 0 when every zoo model produced a result. An invalid result (a
    busy machine) still counts: the demo shows it, marked, and says why."""
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    zoo = write_zoo(out / "zoo")
    config = out / "demo-campaign.toml"
    config.write_text(CAMPAIGN.format(
        models=", ".join(f'"zoo/{p.name}"' for p in zoo.values()), threads=threads,
        min_seconds=min_seconds))  # fmt: skip
    db = out / "demo.sqlite"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    print(f"built {len(zoo)} zoo models in {out / 'zoo'}: {', '.join(zoo)}")
    collector = Child([sys.executable, "-m", "collector", "serve", "--bind",
                       "tcp://127.0.0.1:0", "--db", str(db)], "collector")  # fmt: skip
    agent = None
    try:
        endpoint = collector.expect(r"listening on (tcp://\S+)", timeout=60).group(1)
        print(f"collector on {endpoint}; starting an agent")
        agent = Child([sys.executable, "-m", "agent", "run", "--collector", endpoint,
                       "--name", "demo-agent", "--spool", str(out / "agent-spool"),
                       "--cache", str(out / "agent-cache")], "agent")  # fmt: skip
        collector.expect(r"agent demo-agent registered", timeout=60)
        code = run_campaign(config, endpoint, detach=False)
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()
    store = Store(db)
    try:
        csv_path = out / "demo.csv"
        count = write_csv(store, csv_path)
        results = [r for r in rows(store) if r["job_result"]]  # not invalid attempts redone
        print()
        print(format_table(results))
        report = build_report(store)
        print()
        print(render_text(report))
        write_html(report, out / "report.html")
    finally:
        store.close()
    print(
        f"\nwrote {count} results to {csv_path} and the report to {out / 'report.html'} "
        f"({time.monotonic() - t0:.0f} s)"
    )
    return 0 if code in (0, EXIT_INVALID) and len(results) == len(zoo) else 1


def format_table(results: list[dict[str, Any]]) -> str:
    """One line per result: theory (FLOPs) beside practice (latency, achieved GFLOP/s)."""
    header = (
        f"{'model':<12} {'MFLOPs':>9} {'FLOP/B':>7} {'p50 ms':>8} {'p90 ms':>8} {'GFLOP/s':>8} "
        f"{'cv':>6} {'n':>6}  verdict"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['model_name']!s:<12} error: {r['error']}")
            continue
        verdict = "valid" if r["valid"] else f"INVALID: {r['invalid_reasons']}"
        lines.append(
            f"{r['model_name']!s:<12} {_num(r.get('flops'), 9, 1e-6)} "
            f"{_num(r.get('intensity'), 7)} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} "
            f"{_num(r.get('achieved_gflops'), 8)} {r['cv']:>6.1%} {r['n']:>6}  {verdict}"
        )
    return "\n".join(lines)


def _num(value: float | None, width: int, scale: float = 1.0) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value * scale:>{width}.1f}"
