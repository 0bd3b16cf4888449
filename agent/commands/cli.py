"""`flopgap-agent`: the board-side command.

flopgap-agent bench MODEL.onnx   one local measurement, no network
flopgap-agent run --collector tcp://HOST:PORT   serve jobs from a collector
flopgap-agent enroll BUNDLE | doctor | service install   set a board up (deploy/README.md)

Each command's parser and handler live in agent.commands, one module each. Heavy modules
are imported by the commands that use them: `run` must reach the fork of its worker server
(agent.jobs.worker) with numpy loaded, onnxruntime not, and one thread, and its network loop never
loads onnxruntime at all (bench/agent_footprint.py measures why). So the measurement flags,
which need agent.engine.measure and hence onnxruntime, are added to the parser only when the command
line asks for `bench` (or for no command, e.g. --help).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__
from agent.commands import PROG, bench, capture, doctor, enroll, run, service
from shared.cli_errors import run_guarded

__all__ = ["PROG", "build_parser", "main"]


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
    bench.add_parser(sub, measure_flags)
    run.add_parser(sub)
    capture.add_parser(sub)
    doctor.add_parser(sub)  # doctor, enroll and service: getting a board ready
    enroll.add_parser(sub)  # (deploy/README.md)
    service.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # no global option takes
    parser = build_parser(measure_flags=command in (None, "bench"))  # a value: see above
    args = parser.parse_args(argv)
    return run_guarded(PROG, lambda: args.func(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
