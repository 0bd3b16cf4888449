"""`flopgap keys`: make the collector's CURVE keys and allowlist agents and clients.

flopgap keys init [DIR]            the collector's key pair and empty allowlists (DIR 0700)
flopgap keys agent NAME [--dir D]  an agent key pair: public key allowlisted as NAME
flopgap keys agent NAME --bundle FILE --collector tcp://HOST:PORT   one enrolment file instead
flopgap keys client NAME [--dir D] a key pair for `campaign run` / `status`
flopgap keys list [--dir D]        who is allowlisted

Also the flags other commands use for keys (`add_serve_flags`, `add_client_flags`,
`client_keys`), so every command spells them the same way. See SECURITY.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared import keys
from shared.cli_parsers import Subparsers, actions, command
from shared.errors import UsageError


def add_parser(subparsers: Subparsers) -> None:
    """Register `keys` and its actions under the `flopgap` command."""
    parser = subparsers.add_parser(
        "keys",
        help="create CURVE keys and allowlist agents and clients",
        description="Keys encrypt every connection and tell the collector who is who: an "
        "agent is known by its key, whatever name it claims. See SECURITY.md.",
    )
    sub = actions(parser)
    init = command(sub, "init", cmd_init, help="create the collector's key pair and allowlists")
    init.add_argument(
        "dir", nargs="?", type=Path, default=keys.DEFAULT_DIR, metavar="DIR",
        help="key folder, made 0700 (default %(default)s)",
    )  # fmt: skip
    for role, what in (("agent", "an agent (a board)"), ("client", "campaign run / status")):
        p = command(
            sub, role, cmd_issue, help=f"create and allowlist a key pair for {what}", role=role
        )
        p.add_argument("name", help=f"the {role}'s identity: letters, digits, . _ -")
        _add_dir(p)
        p.add_argument(
            "--out", type=Path, metavar="FILE",
            help=f"where the secret key goes (default DIR/{keys.ISSUED}/NAME"
            f"{keys.SECRET_SUFFIX}); move it to the {role}, then delete it here",
        )  # fmt: skip
        if role == "agent":
            p.add_argument(
                "--bundle", type=Path, metavar="FILE",
                help="write ONE enrolment file (0600) instead: the agent's key pair, the "
                "collector's public key and --collector; on the board run "
                "`flopgap-agent enroll FILE`",
            )  # fmt: skip
            p.add_argument(
                "--collector", metavar="tcp://HOST:PORT",
                help="the address agents reach the collector at (needed with --bundle)",
            )  # fmt: skip
    _add_dir(command(sub, "list", cmd_list, help="allowlisted agents and clients"))


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=keys.DEFAULT_DIR,
        help="the collector's key folder (default %(default)s)",
    )  # fmt: skip


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """`serve --keys DIR`: CURVE on, only keys allowlisted in DIR may connect."""
    parser.add_argument(
        "--keys", type=Path, metavar="DIR",
        help="the key folder from `flopgap keys init`: encrypt, and accept only allowlisted "
        "keys (needed for a non-loopback --bind)",
    )  # fmt: skip


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """`--keys FILE --collector-key FILE` for commands that talk to a collector."""
    parser.add_argument(
        "--keys", type=Path, metavar="FILE",
        help="this client's secret key (from `flopgap keys client NAME`); needs --collector-key",
    )  # fmt: skip
    parser.add_argument(
        "--collector-key", type=Path, metavar="FILE",
        help="the collector's public key (collector.key), pinned",
    )  # fmt: skip


def client_keys(args: argparse.Namespace) -> keys.PeerKeys | None:
    """The keys named by add_client_flags' flags, or None when neither is given."""
    secret, server = getattr(args, "keys", None), getattr(args, "collector_key", None)
    if secret is None and server is None:
        return None
    if secret is None or server is None:
        raise UsageError(
            "--keys and --collector-key go together",
            hint="pass your NAME.key_secret and the collector's collector.key",
        )
    return keys.load_peer_keys(secret, server)


def cmd_init(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    keys.private_dir(folder)
    for role in keys.ROLES:
        keys.private_dir(keys.allowlist_dir(folder, role))
    public = folder / f"{keys.COLLECTOR}{keys.PUBLIC_SUFFIX}"
    keys.create_pair(public, folder / f"{keys.COLLECTOR}{keys.SECRET_SUFFIX}")
    print(f"collector keys in {folder} (0700); copy {public} to every agent and client")
    print(f"next: flopgap keys agent NAME --dir {folder}, then flopgap serve --keys {folder}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    role: str = args.role
    name = keys.check_name(args.name)
    server_key = folder / f"{keys.COLLECTOR}{keys.PUBLIC_SUFFIX}"
    if not server_key.is_file():
        raise UsageError(f"no collector keys in {folder}", hint=f"flopgap keys init {folder}")
    allowlisted = keys.private_dir(keys.allowlist_dir(folder, role)) / f"{name}.key"
    secret = args.out or keys.private_dir(folder / keys.ISSUED) / f"{name}{keys.SECRET_SUFFIX}"
    if allowlisted.exists():
        raise UsageError(
            f"{role} {name} already has a key ({allowlisted})",
            hint=f"delete {allowlisted} to revoke it, then run this again",
        )
    bundle = getattr(args, "bundle", None)
    if bundle is not None:
        return _issue_bundle(args, folder, name, allowlisted, server_key)
    keys.create_pair(allowlisted, secret)
    print(f"{role} {name}: public key allowlisted as {allowlisted}")
    print(f"secret key: {secret} (0600): copy it and {server_key} to the {role} over a "
          "secure channel (scp), then delete it here")  # fmt: skip
    if role == "agent":
        print(f"on the board: flopgap-agent run --collector tcp://HOST:PORT --name {name} "
              f"--keys {secret.name} --collector-key {server_key.name}")  # fmt: skip
    else:
        print(f"then: flopgap status --collector tcp://HOST:PORT --keys {secret.name} "
              f"--collector-key {server_key.name}")  # fmt: skip
    return 0


def _issue_bundle(
    args: argparse.Namespace, folder: Path, name: str, allowlisted: Path, server_key: Path
) -> int:
    """`keys agent NAME --bundle FILE`: allowlist a new key and write one enrolment file."""
    from shared.enrollment import bundle_text
    from shared.transport import parse_tcp

    bundle: Path = args.bundle
    if not args.collector:
        raise UsageError(
            "--bundle needs --collector tcp://HOST:PORT",
            hint="the address this agent will reach the collector at",
        )
    parse_tcp(args.collector)
    if bundle.exists():
        raise UsageError(f"{bundle} already exists", hint="delete it or choose another FILE")
    staging = keys.private_dir(folder / keys.ISSUED) / f"{name}{keys.SECRET_SUFFIX}"
    pair = keys.create_pair(allowlisted, staging)
    staging.unlink()  # the bundle is the only copy of the secret key
    text = bundle_text(name, args.collector, keys.load_public(server_key), pair)
    fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
    os.chmod(bundle, 0o600)
    print(f"agent {name}: public key allowlisted as {allowlisted}")
    print(f"bundle: {bundle} (0600, holds the secret key): copy it to the board over a secure "
          "channel (scp), then delete it here")  # fmt: skip
    print(f"on the board: flopgap-agent enroll {bundle.name} && flopgap-agent doctor")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    allowed = keys.read_allowlist(args.dir)
    for key, identity in sorted(allowed.items(), key=lambda item: item[1]):
        print(f"{identity:<40} {key.decode('ascii')}")
    if not allowed:
        print(f"no keys allowlisted in {args.dir}")
    return 0
