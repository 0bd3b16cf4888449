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
