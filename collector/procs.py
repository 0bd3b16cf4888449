"""Child processes driven by what they print: start, `expect(pattern, timeout)`, stop.

Used by `flopgap demo` and by the integration tests, which wait on a process's own output
(bounded in time) instead of sleeping.
"""

from __future__ import annotations

import os
import queue
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

    def __init__(
        self, argv: Sequence[str], name: str, echo: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.echo = echo
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=full_env,
        )
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if self.echo:
                print(f"  [{self.name}] {line}", file=sys.stderr, flush=True)
            self._queue.put(line)
        self._queue.put(None)

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until a line matches `pattern`; ChildTimeout after `timeout` seconds."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                raise ChildTimeout(
                    f"{self.name} exited (code {self.proc.wait()}) before "
                    f"printing /{pattern}/; last output: {self.tail()}"
                )
            match = regex.search(line)
            if match:
                return match
        raise ChildTimeout(
            f"{self.name} did not print /{pattern}/ within {timeout:g} s; "
            f"last output: {self.tail()}"
        )

    def tail(self, n: int = 5) -> str:
        return " | ".join(self.lines[-n:]) or "(nothing)"

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ChildTimeout(
                f"{self.name} still running after {timeout:g} s; last output: {self.tail()}"
            ) from exc

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
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
