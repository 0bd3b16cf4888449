"""`flopgap-agent doctor`: check that this board is ready to measure (agent.board.doctor)."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli_parsers import Subparsers, command


def add_parser(sub: Subparsers) -> None:
    doc = command(
        sub,
        "doctor",
        cmd_doctor,
        help="check that this board is ready to measure, and say what to fix",
        description="Checks onnxruntime, power/thermal/frequency sensors, the CPU governor, "
        "throttling, free memory and disk, clock sync and the collector (a real round trip "
        "with the keys), then shows the system description the results will carry (power "
        "mode, L4T/JetPack, jetson_clocks, GPU/DLA, Pi firmware and throttle history, caches, "
        "ISA flags, power supply, governors), each missing field with what was looked for. "
        "Exit code 0 when nothing fails; warnings still allow measuring.",
    )
    doc.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="agent config to take the collector, keys and cache from "
        "(default: the enrolled one, if any)",
    )
    doc.add_argument("--collector", metavar="tcp://HOST:PORT")
    doc.add_argument("--keys", type=Path, metavar="FILE", help="this agent's secret key file")
    doc.add_argument(
        "--collector-key", type=Path, metavar="FILE", help="the collector's public key file"
    )
    doc.add_argument(
        "--sysfs-root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="check a captured tree instead of this machine",
    )
    doc.add_argument("--cache", type=Path, help="model cache folder whose disk is checked")
    doc.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="wait this long for the collector (default %(default)s)",
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    """Exit code 1 when a check fails, 0 otherwise (warnings included)."""
    from agent.board import config
    from agent.board.doctor import FAIL, render, run_checks
    from shared.errors import UsageError
    from shared.keys import load_peer_keys

    path = args.config or (config.default_path() if config.default_path().is_file() else None)
    settings = config.load(path) if path is not None else {}
    collector = args.collector or settings.get("collector")
    secret = args.keys or settings.get("keys")
    server = args.collector_key or settings.get("collector_key")
    if (secret is None) != (server is None):
        raise UsageError("--keys and --collector-key go together")
    keys = load_peer_keys(secret, server) if secret is not None and server is not None else None
    name = settings.get("name") or "agent"
    cache = args.cache or settings.get("cache") or config.default_dirs(name)["cache"]
    checks = run_checks(args.sysfs_root, cache, collector, keys, args.timeout)
    print(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0
