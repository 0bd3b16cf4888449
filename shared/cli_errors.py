"""How both CLIs turn exceptions into one clear line and an exit code.

Library code raises FlopgapError subclasses and never exits; only this wrapper decides what
the user sees. Tracebacks appear only with --debug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from shared.errors import FlopgapError

INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE


def run_guarded(prog: str, func: Callable[[], int], debug: bool) -> int:
    """Call `func`; map our errors to a one-line message and their exit code."""
    try:
        return func()
    except FlopgapError as exc:
        if debug:
            raise
        line = f"{prog}: error: {exc.message}"
        if exc.hint:
            line += f" -- {exc.hint}"
        print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(
            f"{prog}: internal error: {type(exc).__name__}: {exc} -- rerun with --debug and "
            "report the traceback",
            file=sys.stderr,
        )
        return INTERNAL_ERROR_EXIT
