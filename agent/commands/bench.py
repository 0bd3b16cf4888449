"""`flopgap-agent bench MODEL.onnx`: one local measurement, no network.

Its measurement flags come from agent.engine.options, which imports agent.engine.measure and hence
onnxruntime, so agent.commands.cli asks for them only when the command line is `bench` (or has no
command, e.g. --help).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared.cli_parsers import Subparsers, command


def add_parser(sub: Subparsers, measure_flags: bool) -> None:
    """`bench`; without `measure_flags` it lacks the flags that import onnxruntime."""
    bench = command(
        sub,
        "bench",
        cmd_bench,
        help="measure one model locally",
        description="Load MODEL, run it once cold, warm it up, time the steady state, and "
        "report latency statistics, memory, system state and a validity verdict.",
    )
    bench.add_argument("model", type=Path, help="the .onnx file to measure")
    bench.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="shape of an input with dynamic dims, e.g. images=1x3x224x224",
    )
    bench.add_argument("--json", action="store_true", help="print the result document as JSON")
    bench.add_argument(
        "--raw",
        type=Path,
        metavar="FILE.npy",
        help="also save every steady-state latency (int64 ns) to FILE.npy",
    )
    if measure_flags:
        from agent.engine.options import add_measure_flags

        add_measure_flags(bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from agent.engine.measure import measure
    from agent.engine.options import settings_from_args
    from agent.engine.table import render
    from shared.input_specs import parse_input_specs

    shapes = parse_input_specs(args.input)
    settings = settings_from_args(args, shapes)
    result = measure(args.model, settings)
    if args.raw:
        np.save(args.raw, result.latencies_ns)
    if args.json:
        print(json.dumps(result.document, indent=2, sort_keys=True))
    else:
        print(render(result.document))
    return 0
