"""``flopgap report``: print where FLOPs mispredict latency, and write HTML, PNG, CSV or JSON.

The lead's ``collector/cli.py`` registers ``add_parser`` (like ``collector.flops.cli``) and
calls ``run``; errors are FlopgapError subclasses, which that CLI maps to an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from collector.cli_flags import add_input_flags, add_results_flags
from collector.report.defaults import DEFAULT_THRESHOLD
from collector.store.location import may_exist
from shared.cli_parsers import Subparsers, command
from shared.errors import UsageError

if TYPE_CHECKING:
    from collector.report.ranked import PredictRequest


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand on an argparse subparsers object."""
    p = command(
        subparsers,
        "report",
        run,
        help="where FLOPs mispredict latency, per device, model and op type",
        description="Analyse stored results: FLOPs vs latency per device (rank correlation, "
        "log-log fit, residuals), the roofline from calibration, op-type time vs FLOP shares, "
        "and cross-device ratios. Prints text; --html writes one self-contained file.",
    )
    add_results_flags(p)
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="AGENT_OR_HOST",
        help="only these devices (repeatable); the first is the reference",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="flag models this many times off their device's fit (default %(default)s)",
    )
    p.add_argument(
        "--include-invalid",
        action="store_true",
        help="use results judged invalid too (default: valid ones only; either way the "
        "report counts what it left out and why)",
    )
    p.add_argument(
        "--predict", action="append", default=[], type=Path, metavar="MODEL.onnx",
        help="rank this unmeasured model on every device that has a kernel predictor "
        "(repeatable; --input/--input-value/--input-file apply to each, as in flopgap predict)",
    )  # fmt: skip
    add_input_flags(p)
    p.add_argument(
        "--no-kernel-predictions", action="store_true",
        help="skip the leave-one-family-out kernel prediction beside each measured model "
        "(it trains one predictor per model family on stores with per-op profiles)",
    )  # fmt: skip
    p.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report")
    p.add_argument("--png-dir", type=Path, metavar="DIR", help="write every figure as PNG")
    p.add_argument("--csv-dir", type=Path, metavar="DIR", help="write one CSV per table")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Build the report from ``args.db``, print it, write what was asked; returns 0."""
    from collector.report import build_report, render_text, write_csv_dir, write_html, write_png_dir
    from collector.store import Store

    stream = out if out is not None else sys.stdout
    if not may_exist(args.db):
        raise UsageError(
            f"no database at {args.db}", hint="pass the --db that `flopgap serve` used"
        )
    if args.threshold <= 1.0:
        raise UsageError(f"--threshold {args.threshold} must be above 1", hint="e.g. 1.5")
    requests = _requests(args)
    store = Store(args.db)
    try:
        report = build_report(
            store, args.campaign, args.device or None, args.threshold, args.include_invalid,
            predict=requests, kernel_predictions=not args.no_kernel_predictions,
        )  # fmt: skip
    finally:
        store.close()
    stream.write(render_text(report))
    if args.html is not None:
        stream.write(f"wrote {write_html(report, args.html)}\n")
    if args.png_dir is not None:
        stream.write(f"wrote {len(write_png_dir(report, args.png_dir))} files to {args.png_dir}\n")
    if args.csv_dir is not None:
        stream.write(f"wrote {len(write_csv_dir(report, args.csv_dir))} files to {args.csv_dir}\n")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
        stream.write(f"wrote {args.json}\n")
    return 0


def _requests(args: argparse.Namespace) -> list[PredictRequest]:
    """The --predict models with the shared input flags, checked before the store is read."""
    from collector.flops.cli import parse_input_specs
    from shared.input_values import parse_values

    if not args.predict:
        if args.input or args.input_value or args.input_file:
            raise UsageError("--input and friends apply to --predict models",
                             "add --predict MODEL.onnx, or drop the input flags")  # fmt: skip
        return []
    for path in args.predict:
        if not path.is_file():
            raise UsageError(f"--predict {path}: no such file", "pass an existing .onnx file")
    shapes = parse_input_specs(args.input)
    values = parse_values(args.input_value, args.input_file)
    from collector.report.ranked import PredictRequest

    return [PredictRequest(path, shapes, values) for path in args.predict]
