"""`flopgap-agent capture OUT_DIR`: copy what the probes read into a tree tests can replay."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli_parsers import Subparsers, command


def add_parser(sub: Subparsers) -> None:
    cap = command(
        sub,
        "capture",
        cmd_capture,
        help="copy what the probes read into a tree tests can replay",
        description="Copy exactly the sysfs/procfs files the power, thermal, frequency and "
        "device readers use (and the output of vcgencmd, tegrastats and nvpmodel) into "
        "OUT_DIR. Send the folder to the flopgap developers to add your board as a test "
        "fixture; machine ids and the hostname are left out.",
    )
    cap.add_argument("out_dir", type=Path)
    cap.add_argument(
        "--sysfs-root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="capture from DIR instead of / (e.g. to re-capture a tree)",
    )


def cmd_capture(args: argparse.Namespace) -> int:
    from agent.probes.capture import capture

    written = capture(args.out_dir, args.sysfs_root)
    print(f"captured {len(written)} files into {args.out_dir}")
    print((args.out_dir / "CAPTURE.txt").read_text().rstrip())
    return 0
