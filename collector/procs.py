"""Child processes driven by what they print: start, `expect(pattern, timeout)`, stop.

Used by `flopgap demo` and by the integration tests, which wait on a process's own output
(bounded in time) instead of sleeping.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from shared.errors import FlopgapError


class ChildTimeout(FlopgapError):
    """A child did not print what was expected in time, or did not exit."""


class Child:
    """A subprocess whose merged stdout/stderr is read line by line in a thread."""

    def __init__(self, argv: Sequence[str], name: str, echo: bool = False,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.name = name
        self.echo = echo
        self.lines: list[str] = []
        self._cursor = 0  # expect() consumes lines up to here; seen() looks at all of them
        self._closed = False
        self._changed = threading.Condition()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, bufsize=1, env=full_env,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.echo:
                print(f"  [{self.name}] {line.rstrip()}", file=sys.stderr, flush=True)
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _wait(self, pattern: str, timeout: float, start: int) -> tuple[re.Match[str], int]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self._changed:
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    index += 1
                    if match:
                        return match, index
                remaining = deadline - time.monotonic()
                if self._closed:
                    raise ChildTimeout(
                        f"{self.name} exited (code {self.proc.wait()}) before "
                        f"printing /{pattern}/; last output: {self.tail()}"
                    )
                if remaining <= 0:
                    raise ChildTimeout(
                        f"{self.name} did not print /{pattern}/ within "
                        f"{timeout:g} s; last output: {self.tail()}"
                    )
                self._changed.wait(remaining)

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """The next line (after the last expected one) matching `pattern`, waiting up to
        `timeout` seconds; ChildTimeout if none comes."""
        match, self._cursor = self._wait(pattern, timeout, self._cursor)
        return match

    def seen(self, pattern: str, timeout: float) -> re.Match[str]:
        """Any line so far, or to come within `timeout`, matching `pattern` (order-free)."""
        return self._wait(pattern, timeout, 0)[0]

    def tail(self, n: int = 5) -> str:
        return " | ".join(self.lines[-n:]) or "(nothing)"

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ChildTimeout(f"{self.name} still running after {timeout:g} s; "
                               f"last output: {self.tail()}") from exc  # fmt: skip

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a power cut or the OOM killer."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
