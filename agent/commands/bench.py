"""`flopgap-agent bench MODEL.onnx`: one local measurement, no network.

Its measurement flags come from agent.engine.options, which imports agent.engine.measure and hence
onnxruntime, so agent.commands.cli asks for them only when the command line is `bench` (or has no
command, e.g. --help).

Before measuring it checks its output paths (a bad one is refused before the model loads) and
takes the device lock (agent.board.device_lock) for the whole measurement, so it never
overlaps a job an agent on this board is running, nor another bench.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.commands.output_paths import check_output_file
from shared.cli_parsers import Subparsers, command
from shared.errors import UsageError

INVALID_EXIT = 8  # --strict and the result is invalid
DEVICE_BUSY_EXIT = 7  # agent.board.device_lock.DeviceBusyError
EPILOG = (
    "exit status: 0 measured (also when the result is invalid, unless --strict); "
    "1 error; 2 bad usage or output path; 3 model or provider error; 4 inference failed; "
    f"{DEVICE_BUSY_EXIT} the device stayed busy for --lock-timeout; "
    f"{INVALID_EXIT} --strict and the result is invalid (its reasons are on stderr)."
)


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
    bench.epilog = EPILOG
    bench.add_argument("model", type=Path, help="the .onnx file to measure")
    bench.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="shape of an input with dynamic dims, e.g. images=1x3x224x224",
    )
    bench.add_argument(
        "--input-value",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="the value of an input, instead of synthesized data: a number (sr=16000), "
        "zeros[2,1,128], ones[1,128], full[2,3](0.5) or a list [1,2,3]; needed for every "
        "integer or boolean scalar input, whose value can decide control flow",
    )
    bench.add_argument(
        "--input-file",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="real data for an input, from a .npy file (its dtype and shape must fit the input)",
    )
    bench.add_argument("--json", action="store_true", help="print the result document as JSON")
    bench.add_argument(
        "--raw",
        type=Path,
        metavar="FILE.npy",
        help="also save every steady-state latency (int64 ns) to FILE.npy",
    )
    bench.add_argument(
        "--strict",
        action="store_true",
        help=f"exit {INVALID_EXIT} when the result is invalid (it is still printed and saved)",
    )
    bench.add_argument(
        "--lock-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait while another measurement holds this device (default 600)",
    )
    if measure_flags:
        from agent.engine.options import add_measure_flags

        add_measure_flags(bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from agent.board.device_lock import DeviceBusyError, DeviceLock
    from agent.engine.document import stamp_finished
    from agent.engine.measure import measure
    from agent.engine.options import settings_from_args
    from agent.engine.session import check_model_file, check_provider
    from agent.engine.table import render
    from shared.input_specs import parse_input_specs
    from shared.input_values import parse_values

    raw = _raw_path(args.raw)
    if raw is not None:
        check_output_file(raw, "--raw")
    if args.lock_timeout < 0:
        raise UsageError(f"--lock-timeout {args.lock_timeout:g} is negative",
                         hint="give the seconds to wait for the device, 0 not to wait")  # fmt: skip
    shapes = parse_input_specs(args.input)
    values = parse_values(args.input_value, args.input_file)
    settings = settings_from_args(args, shapes, values)
    check_model_file(args.model)  # before a wait for the device, not after it
    check_provider(settings.session)
    with DeviceLock(f"flopgap-agent bench {args.model.name}") as lock:
        try:
            lock.acquire(args.lock_timeout, on_wait=_say)
        except DeviceBusyError as exc:
            exc.hint = "nothing was measured: run it again later, or pass a longer --lock-timeout"
            raise
        result = measure(args.model, settings)
        stamp_finished(result.document)
    if raw is not None:
        np.save(raw, result.latencies_ns)
    doc = result.document
    print(json.dumps(doc, indent=2, sort_keys=True) if args.json else render(doc), flush=True)
    if doc["valid"]:
        return 0
    reasons = "; ".join(doc["invalid_reasons"]) or "no reason recorded"
    _say(f"INVALID result: {reasons}")
    return INVALID_EXIT if args.strict else 0


def _raw_path(raw: Path | None) -> Path | None:
    """The file np.save writes for --raw: it appends .npy to a name without it."""
    if raw is None or raw.suffix == ".npy":
        return raw
    return raw.with_name(raw.name + ".npy")


def _say(line: str) -> None:
    print(f"flopgap-agent bench: {line}", file=sys.stderr, flush=True)
