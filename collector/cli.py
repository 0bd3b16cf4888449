"""`flopgap`: the collector-side command.

flopgap serve           run the collector (agents connect to it)
flopgap campaign run    submit a campaign (TOML) and follow it live
flopgap status          agents and campaigns of a running collector
flopgap export          results as CSV (long or wide) or Parquet
flopgap flops           theoretical FLOPs, MACs, parameters and bytes of an ONNX model
flopgap sweep           single-kernel models over a sampled space of shapes (build, list, run)
flopgap predict         an unmeasured model's latency on a device, from its measured kernels
flopgap calibrate       re-measure an agent's peak GFLOP/s and memory bandwidth now
flopgap demo            the whole loop on loopback with the built-in model zoo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from collector import calibrate_cli, keys_cli
from collector.campaign_view import EXIT_CODES_HELP
from collector.cli_flags import DEFAULT_COLLECTOR, add_collector_flags, add_results_flags
from collector.server.ratelimit import BURST, RATE_PER_S, RateLimiter
from shared.cli_errors import run_guarded
from shared.cli_parsers import Subparsers, actions, command
from shared.errors import UsageError
from shared.version import __version__

PROG = "flopgap"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="flopgap collector: run benchmark campaigns on a fleet of agents, store "
        "and export the results, count model FLOPs, and show where FLOPs mispredict latency.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_campaign(sub)
    _add_status(sub)
    _add_export(sub)
    _add_demo(sub)
    from collector.flops import cli as flops_cli
    from collector.predict import cli as predict_cli
    from collector.report import cli as report_cli
    from collector.sweep import cli as sweep_cli

    flops_cli.add_parser(sub)
    report_cli.add_parser(sub)
    sweep_cli.add_parser(sub)
    predict_cli.add_parser(sub)
    keys_cli.add_parser(sub)
    calibrate_cli.add_parser(sub)
    return parser


def _positive(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number above 0")
    return value


def _add_serve(sub: Subparsers) -> None:
    p = command(
        sub,
        "serve",
        cmd_serve,
        help="run the collector",
        description="Bind a ZeroMQ ROUTER, register agents, run submitted campaigns and store "
        "every result in --db (SQLite, WAL). Restarted on the same --db, it resumes every "
        "unfinished campaign.",
    )
    p.add_argument(
        "--bind",
        default=DEFAULT_COLLECTOR,
        help="endpoint to bind (port 0 picks a free port; default %(default)s)",
    )
    p.add_argument(
        "--db",
        type=Path,
        default=Path("results.sqlite"),
        help="SQLite database (default %(default)s); models go in DB.models/",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="agent heartbeat interval; 5 missed beats mark an agent missing",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback bind without CURVE keys (trusted networks)",
    )
    p.add_argument(
        "--peer-rate",
        type=_positive,
        default=RATE_PER_S,
        metavar="MSGS",
        help="messages a second each peer may send before the excess is dropped "
        "(default %(default)g; an agent sends about 2 a second)",
    )
    p.add_argument(
        "--peer-burst",
        type=_positive,
        default=BURST,
        metavar="MSGS",
        help="messages a peer may send at once above its rate (default %(default)g)",
    )
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="do not ask agents to measure their peak GFLOP/s and memory bandwidth",
    )
    keys_cli.add_serve_flags(p)


def _add_campaign(sub: Subparsers) -> None:
    campaign = sub.add_parser("campaign", help="run benchmark campaigns on the fleet")
    p = command(
        actions(campaign),
        "run",
        cmd_campaign_run,
        help="submit a campaign and follow it",
        description="Validate CONFIG (TOML; see configs/campaign.example.toml), upload its "
        "models, submit it, and show live progress per device until it completes.",
    )
    p.add_argument("config", type=Path, help="campaign TOML file")
    p.add_argument("--collector", default=DEFAULT_COLLECTOR, metavar="ADDR")
    p.add_argument("--detach", action="store_true", help="return as soon as it is queued")
    p.add_argument("--insecure", action="store_true")
    keys_cli.add_client_flags(p)
    p.add_argument(
        "--replace",
        action="store_true",
        help="take the name from an existing campaign of that name, which is renamed "
        "NAME@ID8 and keeps its results (without it, a name in use is refused)",
    )
    p.add_argument(
        "--wait-for-agents",
        type=_positive,
        metavar="SECONDS",
        help="queue the campaign even if no registered agent matches it yet, and wait this "
        "long for one (without it, a campaign no agent matches is refused)",
    )
    p.epilog = EXIT_CODES_HELP


def _add_status(sub: Subparsers) -> None:
    p = command(sub, "status", cmd_status, help="agents and campaigns of a running collector")
    add_collector_flags(p)


def _add_export(sub: Subparsers) -> None:
    p = command(
        sub,
        "export",
        cmd_export,
        help="write results as CSV or Parquet",
        description="Long form: one row per device x model x setting x repeat, under stable "
        "column headers, with a .meta.json sidecar naming units and the FLOPs convention. "
        "--wide: model x device matrices of median latency (FILE), achieved GFLOP/s "
        "(FILE_gflops.csv) and each cell's validity (FILE_valid.csv), each with a .meta.json.",
    )
    add_results_flags(p)
    p.add_argument("--csv", type=Path, help="output CSV file")
    p.add_argument("--wide", action="store_true", help="matrix form instead of one row each")
    p.add_argument("--parquet", type=Path, help="write the long form as Parquet too")
    p.add_argument(
        "--parquet-dataset",
        type=Path,
        metavar="DIR",
        help="write a hive-partitioned Parquet dataset under DIR/results (for DuckDB, Spark)",
    )
    p.add_argument(
        "--partition",
        default="campaign,device,date",
        metavar="KEYS",
        help="partition keys of --parquet-dataset, in folder order (default %(default)s)",
    )
    p.add_argument(
        "--latencies",
        action="store_true",
        help="with --parquet-dataset: every raw latency too, under DIR/latencies",
    )


def _add_demo(sub: Subparsers) -> None:
    p = command(
        sub,
        "demo",
        cmd_demo,
        help="benchmark the built-in zoo on loopback",
        description="Build the model zoo, start a collector and an agent on 127.0.0.1, run a "
        "campaign over every zoo model, print the table and write the CSV.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("results"), help="output folder (default %(default)s)"
    )
    p.add_argument(
        "--min-seconds",
        type=float,
        default=2.0,
        help="steady-state seconds per model (default %(default)s)",
    )
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")


def cmd_serve(args: argparse.Namespace) -> int:
    from collector.server.serve import serve

    return serve(
        args.bind,
        args.db,
        args.insecure,
        args.heartbeat,
        keys_dir=args.keys,
        calibrate=args.calibrate,
        limiter=RateLimiter(args.peer_rate, max(args.peer_burst, 1.0)),
    )


def cmd_campaign_run(args: argparse.Namespace) -> int:
    from collector.campaign_run import run_campaign

    return run_campaign(
        args.config,
        args.collector,
        args.detach,
        args.insecure,
        keys=keys_cli.client_keys(args),
        replace=args.replace,
        wait_for_agents=args.wait_for_agents,
    )


def cmd_status(args: argparse.Namespace) -> int:
    from collector.campaign_run import print_status

    return print_status(args.collector, args.insecure, keys=keys_cli.client_keys(args))


def cmd_export(args: argparse.Namespace) -> int:
    from collector.export import DatasetOptions, export
    from collector.export_dataset import parse_partition

    dataset = None
    if args.parquet_dataset is not None:
        partition = parse_partition(args.partition)
        dataset = DatasetOptions(args.parquet_dataset, partition, args.latencies)
    elif args.latencies:
        raise UsageError("--latencies needs --parquet-dataset", hint="add --parquet-dataset DIR")
    return export(args.db, args.campaign, args.csv, args.wide, args.parquet, dataset)


def cmd_demo(args: argparse.Namespace) -> int:
    from collector.demo import run_demo

    return run_demo(args.out, min_seconds=args.min_seconds, threads=args.threads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(PROG, lambda: args.func(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
