"""Commands that some power sources read from (vcgencmd, tegrastats), run or replayed.

A source never calls subprocess itself: it asks a CommandRunner for a named Command. The
default runner runs the real program with a timeout; ReplayRunner answers from files
captured on a board (`<root>/commands/<name>.txt`, or `<name>.error` for a command that
failed there), so tests and users replay a board through the same parsing code.
"""

from __future__ import annotations

import os
import selectors
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """A command a source runs. `name` is its capture file stem; `stream` marks a command
    that prints one line per interval and never exits (tegrastats): the first line is taken."""

    name: str
    argv: tuple[str, ...]
    stream: bool = False


@dataclass(frozen=True)
class CommandOutput:
    """What a command printed (text), or why it printed nothing (error).

    `missing` means the program does not exist here, which makes a source absent, not
    unusable.
    """

    text: str | None
    error: str | None = None
    missing: bool = False


class CommandRunner:
    """Runs the real command; every wait is bounded by `timeout_s`."""

    def __init__(self, timeout_s: float = 3.0) -> None:
        self.timeout_s = timeout_s

    def run(self, command: Command) -> CommandOutput:
        """Run `command` and return its standard output, or the reason it gave none."""
        try:
            proc = subprocess.Popen(
                command.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        except FileNotFoundError:
            return CommandOutput(None, f"{command.argv[0]}: not installed", missing=True)
        except OSError as exc:
            return CommandOutput(None, f"{command.argv[0]}: {exc.strerror or exc}")
        if command.stream:
            return self._first_line(proc, command)
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return CommandOutput(None, f"{' '.join(command.argv)}: timed out ({self.timeout_s} s)")
        if proc.returncode != 0:
            said = (err or out).strip().splitlines()[:1]
            detail = f": {said[0]}" if said else ""
            return CommandOutput(None, f"{' '.join(command.argv)}: exit {proc.returncode}{detail}")
        return CommandOutput(out)

    def _first_line(self, proc: subprocess.Popen[str], command: Command) -> CommandOutput:
        """The first line a streaming command prints, waiting at most timeout_s."""
        assert proc.stdout is not None
        line = ""
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if selector.select(timeout=self.timeout_s):
                line = proc.stdout.readline()
        proc.terminate()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=1.0)
        if not line.strip():
            return CommandOutput(None, f"{' '.join(command.argv)}: printed no line")
        return CommandOutput(line)


class ReplayRunner(CommandRunner):
    """Answers from `<directory>/<name>.txt` (re-read on every call, so a test may rewrite it).

    A streaming command's capture holds one line per interval; each call returns the next
    line, cycling, so a replay yields a time series. `<name>.error` replays a failure; no file
    at all means the command did not exist on the captured board.
    """

    def __init__(self, directory: Path | str) -> None:
        super().__init__()
        self.directory = Path(directory)
        self._next_line: dict[str, int] = {}

    def run(self, command: Command) -> CommandOutput:
        out_path = self.directory / f"{command.name}.txt"
        err_path = self.directory / f"{command.name}.error"
        try:
            text = out_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            try:
                return CommandOutput(None, err_path.read_text(encoding="utf-8").strip())
            except OSError:
                return CommandOutput(
                    None, f"{command.argv[0]}: not captured in {self.directory}", missing=True
                )
        except (OSError, UnicodeDecodeError) as exc:
            return CommandOutput(None, f"{out_path}: {exc}")
        if not command.stream:
            return CommandOutput(text)
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return CommandOutput(None, f"{out_path}: empty capture")
        index = self._next_line.get(command.name, 0)
        self._next_line[command.name] = index + 1
        return CommandOutput(lines[index % len(lines)] + "\n")


def runner_for(root: Path | str) -> CommandRunner:
    """The runner that matches a filesystem root.

    On the real root ("/") commands really run. Any other root is a captured board: its
    commands are replayed from `<root>/commands/`; when that folder does not exist, the
    replay finds no command at all, rather than running this machine's programs against
    another board's files.
    """
    if os.path.realpath(root) == os.path.realpath("/"):
        return CommandRunner()
    return ReplayRunner(Path(root) / "commands")
