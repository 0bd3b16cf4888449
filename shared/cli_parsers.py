"""How both CLIs declare a subcommand, so each command module states only its own flags.

Every command is the same pair: a subparser with a one-line help (and a longer description),
and the handler `main` dispatches to through `args.func`. Writing the pair once keeps the two
in step: a command cannot be listed without a handler, or given one twice.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What `add_subparsers` returns; command modules take it to add themselves."""

Handler = Callable[[argparse.Namespace], int]


def command(
    sub: Subparsers,
    name: str,
    func: Handler,
    help: str | None = None,
    description: str | None = None,
    **defaults: Any,
) -> argparse.ArgumentParser:
    """A subcommand `name` whose arguments dispatch to `func` (plus any fixed `defaults`)."""
    # argparse lists a subcommand in its parent's help only when `help` is passed at all
    if help is None:
        parser = sub.add_parser(name, description=description)
    else:
        parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func, **defaults)
    return parser


def actions(parser: argparse.ArgumentParser) -> Subparsers:
    """The `ACTION` level of a two-level command (`service install`, `keys agent`)."""
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")
