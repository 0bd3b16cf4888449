"""`flopgap`: the collector-side command.

flopgap serve    run the collector (agents connect to it)
flopgap export   write stored results as CSV
flopgap flops    theoretical FLOPs, MACs, parameters and bytes of an ONNX model
flopgap demo     the whole loop on loopback with the built-in model zoo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.options import add_measure_flags, settings_from_args
from shared.cli_errors import run_guarded

PROG = "flopgap"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="flopgap collector: run benchmark jobs on agents, store and "
        "export the results, and count model FLOPs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the collector",
        description="Bind a ZeroMQ ROUTER, register agents, send each one "
        "every --model as a job, and store results in --db (SQLite).",
    )
    serve.add_argument(
        "--bind",
        default="tcp://127.0.0.1:5555",
        help="endpoint to bind (port 0 picks a free port; default %(default)s)",
    )
    serve.add_argument(
        "--db",
        type=Path,
        default=Path("results.sqlite"),
        help="SQLite result database (default %(default)s)",
    )
    serve.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        help="a model every agent measures (repeatable)",
    )
    serve.add_argument(
        "--expect-agents",
        type=int,
        metavar="N",
        help="with --exit-when-done: wait for N agents to finish",
    )
    serve.add_argument(
        "--exit-when-done",
        action="store_true",
        help="exit once every expected agent has run every model",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback bind without CURVE keys (trusted networks)",
    )
    add_measure_flags(serve)
    serve.set_defaults(func=cmd_serve)

    export = sub.add_parser(
        "export",
        help="write results as CSV",
        description="One row per result, under stable column headers.",
    )
    export.add_argument("--db", type=Path, required=True, help="the collector's database")
    export.add_argument("--csv", type=Path, required=True, help="output CSV file")
    export.set_defaults(func=cmd_export)

    demo = sub.add_parser(
        "demo",
        help="benchmark the built-in zoo on loopback",
        description="Build the model zoo, start a collector and an agent on "
        "127.0.0.1, measure every model, print a table and write a CSV.",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("results"), help="output folder (default %(default)s)"
    )
    demo.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="steady-state seconds per model (default %(default)s)",
    )
    demo.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    demo.set_defaults(func=cmd_demo)

    try:  # TEMP until flops lands
        from collector.flops import cli as flops_cli

        flops_cli.add_parser(sub)
    except ImportError:
        pass
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.serve import serve

    settings = settings_from_args(args, {}).as_dict()
    return serve(
        args.bind,
        args.db,
        args.model,
        settings,
        args.expect_agents,
        args.exit_when_done,
        args.insecure,
    )


def cmd_export(args: argparse.Namespace) -> int:
    from collector.export import write_csv
    from collector.store import Store
    from shared.errors import UsageError

    if not args.db.exists():
        raise UsageError(f"no database at {args.db}", hint="pass the --db that `serve` used")
    store = Store(args.db)
    try:
        count = write_csv(store, args.csv)
    finally:
        store.close()
    print(f"wrote {count} results to {args.csv}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from collector.demo import run_demo

    return run_demo(args.out, min_seconds=args.min_seconds, threads=args.threads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(PROG, lambda: args.func(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
