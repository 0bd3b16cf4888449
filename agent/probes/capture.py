"""Capture the files and command outputs the power probes read, as a replayable tree.

`capture(out_dir)` runs detection, one read of every source found and its status, and one
pass of the device (with every descriptor probe: nvpmodel, vcgencmd version, ...), cpufreq
and thermal readers (machine ids are left out), while
recording every node read (path and exact text) and every command's output. It writes the
nodes at their board paths under out_dir and the outputs as out_dir/commands/<name>.txt
(<name>.error for a command that failed), the layout ReplayRunner and `detect(out_dir)`
read. Symlinked sysfs folders become plain folders; the tree holds only what was read.
A node that could not be read (e.g. a root-only RAPL counter) is not copied; CAPTURE.txt
lists the sources found and those unusable, with the reasons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.probes.commands import Command, CommandOutput, CommandRunner, runner_for
from agent.probes.nodes import recording
from agent.probes.registry import detect


class RecordingRunner(CommandRunner):
    """Passes commands to another runner and keeps what they printed.

    A streaming command's lines accumulate, so a replay yields them in the same order.
    """

    def __init__(self, inner: CommandRunner) -> None:
        super().__init__(inner.timeout_s)
        self.inner = inner
        self.outputs: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}

    def run(self, command: Command) -> CommandOutput:
        out = self.inner.run(command)
        if out.text is not None:
            kept = self.outputs.setdefault(command.name, [])
            if command.stream:
                kept.append(out.text.rstrip("\n") + "\n")
            else:
                kept[:] = [out.text]
        elif not out.missing:
            self.errors[command.name] = out.error or "failed"
        return out


def capture(
    out_dir: Path, root: Path = Path("/"), commands: CommandRunner | None = None
) -> list[Path]:
    """Write a replayable tree of what the power probes read under `root`; returns its files."""
    out_dir = Path(out_dir)
    runner = RecordingRunner(commands if commands is not None else runner_for(root))
    with recording() as seen:
        detection = detect(root, runner)
        for source in detection.sources:
            source.read()
            source.status()
        described = _read_system(root, runner)
    written: list[Path] = []
    for path, text in sorted(seen.items()):
        if path.name in PRIVATE_NODES:
            continue
        written.append(_write(out_dir / path.relative_to(root), text))
    for name, chunks in sorted(runner.outputs.items()):
        written.append(_write(out_dir / "commands" / f"{name}.txt", "".join(chunks)))
    for name, error in sorted(runner.errors.items()):
        if name not in runner.outputs:
            written.append(_write(out_dir / "commands" / f"{name}.error", error + "\n"))
    lines = [f"found: {s.name} {[r.name for r in s.rails]}" for s in detection.sources]
    lines += [f"unusable: {u.source}: {u.reason}" for u in detection.unusable]
    lines += [
        f"described: {k} = {described[k]}" for k in _fact_fields() if described.get(k) is not None
    ]
    written.append(_write(out_dir / "CAPTURE.txt", "\n".join(lines) + "\n"))
    return written


# Identifiers that must not leave the board in a fixture (the device id is a hash of them).
PRIVATE_NODES = frozenset({"machine-id", "product_uuid", "product_serial", "board_serial"})


def _fact_fields() -> list[str]:
    """The system-description fields (not the hostname: the tree may be sent to us)."""
    from agent.board.facts.registry import FACTS

    return [name for probe in FACTS for name in probe.fields]


def _read_system(root: Path, runner: CommandRunner) -> dict[str, Any]:
    """One pass of the device (with its system description: agent.board.facts), cpufreq and
    thermal readers, so their nodes and commands are captured too; returns the descriptor."""
    from agent.board import device
    from agent.probes import cpufreq, thermal

    device.board_model(root)
    described = device.describe(root, runner)
    dirs = cpufreq.cpu_dirs(root)
    cpufreq.frequencies_mhz(dirs)
    cpufreq.governors(dirs)
    cpufreq.throttle_count(dirs)
    thermal.temperatures_c(root)
    return described


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
