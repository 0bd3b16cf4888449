"""`flopgap-agent service install|uninstall`: the systemd unit that runs `run`
(agent.board.service)."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.commands import PROG
from shared.cli_parsers import Subparsers, actions, command


def add_parser(sub: Subparsers) -> None:
    svc = sub.add_parser("service", help="install or remove the systemd unit that runs `run`")
    steps = actions(svc)
    for action in ("install", "uninstall"):
        p = command(steps, action, cmd_service, help=f"{action} {PROG}.service")
        p.add_argument(
            "--user",
            action="store_true",
            help="a per-user unit (systemctl --user) instead of a system one",
        )
        p.add_argument(
            "--unit-dir",
            type=Path,
            metavar="DIR",
            help="write the unit here instead of systemd's folder",
        )
        if action == "install":
            p.add_argument(
                "--config",
                type=Path,
                metavar="FILE",
                help="agent config the service runs with (default: the enrolled one)",
            )
            p.add_argument(
                "--run-as",
                metavar="USER",
                help="User= of a system unit (default: the config file's owner)",
            )


def cmd_service(args: argparse.Namespace) -> int:
    from agent.board import config, service

    if args.action == "uninstall":
        removed = service.uninstall(args.unit_dir, args.user)
        print(f"removed {removed}" if removed else "no unit installed")
        if removed:
            print(service.next_steps(removed, args.user, installed=False))
        return 0
    path, changed = service.install(
        args.config or config.default_path(), args.unit_dir, args.user, args.run_as
    )
    print(f"{'wrote' if changed else 'unchanged'}: {path}")
    print(service.next_steps(path, args.user, installed=True))
    return 0
