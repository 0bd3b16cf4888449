"""`flopgap demo` (what `make demo` runs): the whole system on loopback in about a minute.

Builds the model zoo, starts a real collector and a real agent as subprocesses on
127.0.0.1, measures every zoo model, prints a table and writes the CSV.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from collector.export import rows, write_csv
from collector.procs import Child
from collector.store import Store
from collector.zoo import write_zoo

PER_MODEL_TIMEOUT_S = 120.0


def run_demo(out: Path, min_seconds: float = 2.0, threads: int = 1) -> int:
    """Run the demo; returns 0 when every zoo model produced a result."""
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    zoo = write_zoo(out / "zoo")
    db = out / "demo.sqlite"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    print(f"built {len(zoo)} zoo models in {out / 'zoo'}: {', '.join(zoo)}")
    serve = [
        sys.executable,
        "-m",
        "collector",
        "serve",
        "--bind",
        "tcp://127.0.0.1:0",
        "--db",
        str(db),
        "--expect-agents",
        "1",
        "--exit-when-done",
        "--threads",
        str(threads),
        "--min-seconds",
        str(min_seconds),
    ]
    for path in zoo.values():
        serve += ["--model", str(path)]
    collector = Child(serve, "collector")
    agent = None
    try:
        endpoint = collector.expect(r"listening on (tcp://\S+)", timeout=60).group(1)
        print(f"collector on {endpoint}; starting an agent")
        agent = Child(
            [sys.executable, "-m", "agent", "run", "--collector", endpoint, "--name", "demo-agent"],
            "agent",
        )
        for i in range(1, len(zoo) + 1):
            line = collector.expect(r"result \w+: .*|job \w+ failed .*", PER_MODEL_TIMEOUT_S)
            print(f"  [{i}/{len(zoo)}] {line.group(0).split(' ', 2)[-1]}", flush=True)
        code = collector.wait(timeout=30)
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()
    store = Store(db)
    try:
        csv_path = out / "demo.csv"
        count = write_csv(store, csv_path)
        print()
        print(format_table(list(rows(store))))
    finally:
        store.close()
    print(f"\nwrote {count} results to {csv_path} ({time.monotonic() - t0:.0f} s)")
    return 0 if code == 0 and count == len(zoo) else 1


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
        flops = f"{r['flops'] / 1e6:>9.1f}" if r.get("flops") is not None else f"{'n/a':>9}"
        intensity = f"{r['intensity']:>7.1f}" if r.get("intensity") is not None else f"{'n/a':>7}"
        gflops = (
            f"{r['achieved_gflops']:>8.1f}"
            if r.get("achieved_gflops") is not None
            else f"{'n/a':>8}"
        )
        lines.append(
            f"{r['model_name']!s:<12} {flops} {intensity} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} "
            f"{gflops} {r['cv']:>6.1%} {r['n']:>6}  {verdict}"
        )
    return "\n".join(lines)
