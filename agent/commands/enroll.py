"""`flopgap-agent enroll BUNDLE`: install the keys and config a collector's bundle holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.commands import PROG
from shared.cli_parsers import Subparsers, command


def add_parser(sub: Subparsers) -> None:
    enr = command(
        sub,
        "enroll",
        cmd_enroll,
        help="install an enrolment bundle from `flopgap keys agent NAME --bundle FILE`",
        description="Check the bundle, install its keys (0600 in a 0700 folder) and write the "
        "agent config that `run`, `doctor` and `service install` read.",
    )
    enr.add_argument("bundle", type=Path, metavar="FILE")
    enr.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="where keys and agent.toml go (default ~/.config/flopgap/agent)",
    )
    enr.add_argument("--spool", type=Path, help="results spool folder to write in the config")
    enr.add_argument("--cache", type=Path, help="model cache folder to write in the config")
    enr.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tags to write in the config, replacing its tags (repeatable)",
    )


def cmd_enroll(args: argparse.Namespace) -> int:
    from agent.board import config
    from agent.board.enroll import enroll
    from agent.board.tags import parse_tags

    folder = args.dir or config.DEFAULT_DIR
    tags = parse_tags(args.tag) if args.tag else None
    cfg, changed = enroll(args.bundle, folder, args.spool, args.cache, tags)
    print(f"enrolled: {cfg}" if changed else f"unchanged: {cfg} already holds this enrolment")
    flag = "" if cfg == config.default_path() else f" --config {cfg}"
    print(f"next: {PROG} doctor{flag} && {PROG} service install{flag}")
    return 0
