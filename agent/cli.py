"""`flopgap-agent`: the board-side command.

flopgap-agent bench MODEL.onnx   one local measurement, no network
flopgap-agent run --collector tcp://HOST:PORT   serve jobs from a collector
flopgap-agent enroll BUNDLE | doctor | service install   set a board up (deploy/README.md)

Heavy modules are imported by the commands that use them: `run` must reach the fork of its
worker server (agent.worker) with numpy loaded, onnxruntime not, and one thread, and its
network loop never loads onnxruntime at all (bench/agent_footprint.py measures why). So the
measurement flags, which need agent.measure and hence onnxruntime, are added to the parser
only when the command line asks for `bench` (or for no command, e.g. --help).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from shared.cli_errors import run_guarded

PROG = "flopgap-agent"


def build_parser(measure_flags: bool = True) -> argparse.ArgumentParser:
    """The whole command line; without `measure_flags`, `bench` lacks its measurement flags
    (they import onnxruntime), for command lines that are not `bench`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure ONNX Runtime inference on this board, locally or for a collector.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bench = sub.add_parser(
        "bench",
        help="measure one model locally",
        description="Load MODEL, run it once cold, warm it up, time the steady state, and "
        "report latency statistics, memory, system state and a validity verdict.",
    )
    bench.add_argument("model", type=Path, help="the .onnx file to measure")
    bench.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="shape of an input with dynamic dims, e.g. images=1x3x224x224",
    )
    bench.add_argument("--json", action="store_true", help="print the result document as JSON")
    bench.add_argument(
        "--raw",
        type=Path,
        metavar="FILE.npy",
        help="also save every steady-state latency (int64 ns) to FILE.npy",
    )
    if measure_flags:
        from agent.options import add_measure_flags

        add_measure_flags(bench)
    bench.set_defaults(func=cmd_bench)

    run = sub.add_parser(
        "run",
        help="serve a collector: measure the jobs it sends",
        description="Register with a collector (this side connects out, so NAT is fine), "
        "measure each job in a child process with the same engine as `bench`, and send results "
        "back. Results wait in --spool until the collector acknowledges them; models are cached "
        "by content hash in --cache. Reconnects forever.",
    )
    run.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (TOML or INI; default $FLOPGAP_AGENT_CONFIG or "
        "~/.config/flopgap/agent/agent.toml when it exists); flags override it",
    )
    run.add_argument(
        "--collector", metavar="tcp://HOST:PORT", help="required here or in the config file"
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
        "--keys",
        type=Path,
        metavar="FILE",
        help="this agent's CURVE secret key file (NAME.key_secret from `flopgap keys agent "
        "NAME` on the collector; mode 0600); needs --collector-key",
    )
    run.add_argument(
        "--collector-key",
        type=Path,
        metavar="FILE",
        help="the collector's public key file (collector.key), pinned: no other server is accepted",
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
    run.set_defaults(func=cmd_run)
    cap = sub.add_parser(
        "capture",
        help="copy what the probes read into a tree tests can replay",
        description="Copy exactly the sysfs/procfs files the power, thermal, frequency and "
        "device readers use (and the output of vcgencmd/tegrastats) into OUT_DIR. Send the "
        "folder to the flopgap developers to add your board as a test fixture; machine ids "
        "are left out.",
    )
    cap.add_argument("out_dir", type=Path)
    cap.add_argument(
        "--sysfs-root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="capture from DIR instead of / (e.g. to re-capture a tree)",
    )
    cap.set_defaults(func=cmd_capture)
    _add_deploy_commands(sub)
    return parser


def _add_deploy_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`doctor`, `enroll` and `service`: getting a board ready (deploy/README.md)."""
    doc = sub.add_parser(
        "doctor",
        help="check that this board is ready to measure, and say what to fix",
        description="Checks onnxruntime, power/thermal/frequency sensors, the CPU governor, "
        "throttling, free memory and disk, clock sync and the collector (a real round trip "
        "with the keys). Exit code 0 when nothing fails; warnings still allow measuring.",
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
    doc.set_defaults(func=cmd_doctor)
    enr = sub.add_parser(
        "enroll",
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
    enr.set_defaults(func=cmd_enroll)
    svc = sub.add_parser("service", help="install or remove the systemd unit that runs `run`")
    actions = svc.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("install", "uninstall"):
        p = actions.add_parser(action, help=f"{action} {PROG}.service")
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
        p.set_defaults(func=cmd_service)


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent import config
    from agent.doctor import FAIL, render, run_checks
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


def cmd_enroll(args: argparse.Namespace) -> int:
    from agent import config
    from agent.enroll import enroll
    from agent.runner import parse_tags

    folder = args.dir or config.DEFAULT_DIR
    tags = parse_tags(args.tag) if args.tag else None
    cfg, changed = enroll(args.bundle, folder, args.spool, args.cache, tags)
    print(f"enrolled: {cfg}" if changed else f"unchanged: {cfg} already holds this enrolment")
    flag = "" if cfg == config.default_path() else f" --config {cfg}"
    print(f"next: {PROG} doctor{flag} && {PROG} service install{flag}")
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from agent import config, service

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


def cmd_capture(args: argparse.Namespace) -> int:
    from agent.capture import capture

    written = capture(args.out_dir, args.sysfs_root)
    print(f"captured {len(written)} files into {args.out_dir}")
    print((args.out_dir / "CAPTURE.txt").read_text().rstrip())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from agent.input_specs import parse_input_specs
    from agent.measure import measure
    from agent.options import settings_from_args
    from agent.table import render

    shapes = parse_input_specs(args.input)
    settings = settings_from_args(args, shapes)
    result = measure(args.model, settings)
    if args.raw:
        np.save(args.raw, result.latencies_ns)
    if args.json:
        print(json.dumps(result.document, indent=2, sort_keys=True))
    else:
        print(render(result.document))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from agent.config import merge_run_settings
    from shared.errors import UsageError

    args = merge_run_settings(args)
    args.tag = [f"{k}={v}" for k, v in args.config_tags.items()] + args.tag
    if (args.keys is None) != (args.collector_key is None):
        raise UsageError(
            "--keys and --collector-key go together",
            hint="pass this agent's NAME.key_secret and the collector's collector.key",
        )
    # Before numpy loads: with one BLAS thread it starts no thread (agent.worker says why).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from agent import worker

    # Fork the worker's server now, while this process has one thread and holds no keys: it
    # shares the interpreter and numpy with this process instead of loading its own. What
    # only the network loop needs (ZeroMQ, the wire protocol) is imported after the fork.
    worker.start_server(fork=True)
    from agent.runner import parse_tags, run_agent
    from shared.keys import load_peer_keys

    tags = parse_tags(args.tag)
    keys = load_peer_keys(args.keys, args.collector_key) if args.keys else None
    max_bytes = args.max_message_mb * 1024 * 1024 if args.max_message_mb else None
    home = Path.home()
    spool = args.spool or home / ".local" / "state" / "flopgap" / args.name / "spool"
    cache = args.cache or home / ".cache" / "flopgap" / "models"
    limit = args.memory_limit_mb * 1024 * 1024 if args.memory_limit_mb else None
    return run_agent(
        args.collector,
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # no global option takes
    parser = build_parser(measure_flags=command in (None, "bench"))  # a value: see above
    args = parser.parse_args(argv)
    return run_guarded(PROG, lambda: args.func(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
