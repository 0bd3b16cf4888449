"""Flags several `flopgap` commands share, written once so their help cannot drift apart."""

from __future__ import annotations

import argparse
from pathlib import Path

from collector import keys_cli

DEFAULT_COLLECTOR = "tcp://127.0.0.1:5555"


def add_collector_flags(parser: argparse.ArgumentParser) -> None:
    """Where a client command finds the collector, and the keys it talks to it with."""
    parser.add_argument("--collector", default=DEFAULT_COLLECTOR, metavar="ADDR")
    parser.add_argument("--insecure", action="store_true")
    keys_cli.add_client_flags(parser)


def add_results_flags(parser: argparse.ArgumentParser) -> None:
    """Which stored results a command that reads the database takes."""
    parser.add_argument("--db", type=Path, required=True, help="the collector's database")
    parser.add_argument("--campaign", help="only this campaign (name, id or id prefix)")


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    """--input, --input-value and --input-file: a model's input shapes and given values, in the
    grammar of `flopgap-agent bench` (shared.input_specs, shared.input_values)."""
    parser.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="size of a dynamic input, e.g. images=1x3x640x640 (repeatable)",
    )
    parser.add_argument(
        "--input-value",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of an input that decides control flow or shapes, e.g. sr=16000 or "
        "state=zeros[2,1,128] (repeatable; sets that input's shape too)",
    )
    parser.add_argument(
        "--input-file",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="real data for an input, from a .npy file (repeatable)",
    )
