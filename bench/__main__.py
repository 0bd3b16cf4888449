"""`make bench`: run every benchmark module and write bench/RESULTS.md."""

from __future__ import annotations

import datetime as dt
import importlib
import platform
import sys
from pathlib import Path

import onnxruntime as ort
import psutil

MODULES = (
    "bench.harness_overhead",
    "bench.sampler_interference",
    "bench.flops_speed",
    "bench.worker_startup",
    "bench.agent_footprint",
    "bench.adaptive_stopping",
    "bench.scheduling_overhead",
    "bench.ingest",
    "bench.load_agents",
    "bench.report_page",
    "bench.cache_roofline",
    "bench.predict_speed",
)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    from agent.board.device import describe

    d = describe()
    return (
        f"{d['cpu_model']} ({d['physical_cores']} cores / {d['logical_cores']} threads), "
        f"{d['ram_mb']} MiB RAM, {d['os']}, kernel {d['kernel']}, Python "
        f"{platform.python_version()}, onnxruntime {ort.__version__}, "
        f"load average {psutil.getloadavg()[0]:.2f} at start"
    )


def main() -> int:
    names = sys.argv[1:] or list(MODULES)
    lines = [
        "# flopgap benchmark results",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on: {machine()}.",
        "",
        "Every figure is a ratio measured side by side in the same run.",
        "",
        "| figure | measured ratio | target | status | detail |",
        "|---|---|---|---|---|",
    ]
    missed = 0
    for name in names:
        print(f"running {name} ...", flush=True)
        for figure in importlib.import_module(name).run():
            print(
                f"  {figure.name}: {figure.ratio:.3f} (target {'<=' if figure.at_most else '>='}"
                f" {figure.target:g}) {'met' if figure.met else 'MISSED'}",
                flush=True,
            )
            lines.append(figure.row())
            missed += not figure.met
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
