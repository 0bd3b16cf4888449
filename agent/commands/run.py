"""`flopgap-agent run --collector tcp://HOST:PORT`: serve a collector's jobs (agent.link.loop).

`--collector` repeats: collectors sharing one store, tried in order (agent.link.endpoints).

The order of start-up matters: the worker's fork server is forked first, while this process
has one thread, no ZeroMQ context and no keys (agent.jobs.worker says why); only then are the
network loop and the keys imported and loaded.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared.cli_parsers import Subparsers, command


def add_parser(sub: Subparsers) -> None:
    run = command(
        sub,
        "run",
        cmd_run,
        help="serve a collector: measure the jobs it sends",
        description="Register with a collector (this side connects out, so NAT is fine), "
        "measure each job in a child process with the same engine as `bench`, and send results "
        "back. Results wait in --spool until the collector acknowledges them; models are cached "
        "by content hash in --cache. Reconnects forever. Given several collectors (--collector "
        "repeated, or a list in the config file: collectors sharing one store), it connects to "
        "the first that answers, moves to the next when the current one has been gone for "
        "longer than the heartbeat timeout (5 heartbeats), and sends its unacknowledged "
        "results to whichever it reaches; their result ids keep delivery idempotent.",
    )
    run.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (TOML or INI; default $FLOPGAP_AGENT_CONFIG or "
        "~/.config/flopgap/agent/agent.toml when it exists); flags override it",
    )
    run.add_argument(
        "--collector",
        dest="collectors",
        action="append",
        metavar="tcp://HOST:PORT",
        help="a collector to serve; repeat it for collectors sharing one store, tried in "
        "order (required here or in the config file)",
    )
    run.add_argument("--name", help="agent name shown in the collector (default: hostname)")
    run.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag campaigns can select on, e.g. board=pi5 (repeatable)",
    )
    run.add_argument(
        "--spool",
        type=Path,
        help="unacknowledged results (default ~/.local/state/flopgap/NAME/spool)",
    )
    run.add_argument(
        "--spool-max-mb",
        type=int,
        metavar="MB",
        help="cap on unacknowledged results on disk; beyond it results wait in memory "
        "(default: no cap; 0 keeps every result in memory only)",
    )
    run.add_argument("--cache", type=Path, help="model cache (default ~/.cache/flopgap/models)")
    run.add_argument("--cache-max-mb", type=int, help="model cache size cap (default 2048)")
    run.add_argument(
        "--memory-limit-mb",
        type=int,
        help="address-space cap of each job's child process (RLIMIT_AS)",
    )
    run.add_argument(
        "--device-lock",
        type=Path,
        metavar="FILE",
        help="the lock every measurement on this board holds, shared with `bench` (default "
        "$FLOPGAP_DEVICE_LOCK, else /run/lock/flopgap/device.lock or /tmp/flopgap-device.lock)",
    )
    _add_security_flags(run)


def _add_security_flags(run: argparse.ArgumentParser) -> None:
    """Keys, the received-frame cap and --insecure (SECURITY.md)."""
    run.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="this agent's CURVE secret key file (NAME.key_secret from `flopgap keys agent "
        "NAME` on the collector; mode 0600); needs --collector-key",
    )
    run.add_argument(
        "--collector-key",
        dest="collector_keys",
        action="append",
        type=Path,
        metavar="FILE",
        help="the collector's public key file (collector.key), pinned: no other server is "
        "accepted. Given once, it is pinned for every --collector (a fleet's collectors "
        "sharing one key pair); repeated, one per --collector in the same order",
    )
    run.add_argument(
        "--max-message-mb",
        type=int,
        metavar="MB",
        help="drop the connection on any received frame larger than this (default: the "
        "protocol's model limit plus headroom)",
    )
    run.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback collector without CURVE keys (trusted networks)",
    )


def _check_device_lock(path: Path | None) -> None:
    """Use `path` as the device lock (through its variable, which `bench` reads too), and
    open it now: a lock no job could take is a start-up error, not a failure per job."""
    from agent.board import device_lock

    if path is not None:
        os.environ[device_lock.LOCK_ENV] = str(path)
    device_lock.DeviceLock("flopgap-agent run").check()


def cmd_run(args: argparse.Namespace) -> int:
    from agent.board.config import merge_run_settings
    from agent.link.endpoints import check_counts
    from shared.errors import UsageError

    args = merge_run_settings(args)
    args.tag = [f"{k}={v}" for k, v in args.config_tags.items()] + args.tag
    if (args.keys is None) != (args.collector_key is None):
        raise UsageError(
            "--keys and --collector-key go together",
            hint="pass this agent's NAME.key_secret and the collector's collector.key",
        )
    check_counts(args.collectors, args.collector_keys)  # before the fork server starts
    _check_device_lock(args.device_lock)
    # Before numpy loads: with one BLAS thread it starts no thread (agent.jobs.worker says why).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from agent.jobs import worker

    # Fork the worker's server now, while this process has one thread and holds no keys: it
    # shares the interpreter and numpy with this process instead of loading its own. What
    # only the network loop needs (ZeroMQ, the wire protocol) is imported after the fork.
    worker.start_server(fork=True)
    from agent.board.tags import parse_tags
    from agent.link.endpoints import pair
    from agent.link.loop import run_agent
    from shared.keys import load_peer_keys, load_public

    tags = parse_tags(args.tag)
    keys = load_peer_keys(args.keys, args.collector_key) if args.keys else None
    pinned = [load_public(path) for path in args.collector_keys] if args.keys else []
    endpoints = pair(args.collectors, pinned)
    max_bytes = args.max_message_mb * 1024 * 1024 if args.max_message_mb else None
    home = Path.home()
    spool = args.spool or home / ".local" / "state" / "flopgap" / args.name / "spool"
    cache = args.cache or home / ".cache" / "flopgap" / "models"
    limit = args.memory_limit_mb * 1024 * 1024 if args.memory_limit_mb else None
    return run_agent(
        endpoints,
        args.name,
        tags,
        spool,
        cache,
        args.cache_max_mb * 1024 * 1024,
        limit,
        args.insecure,
        keys,
        max_bytes,
        None if args.spool_max_mb is None else args.spool_max_mb * 1024 * 1024,
    )
