"""Capture the files and command outputs the power probes read, as a replayable tree.

`capture(out_dir)` runs detection, one read of every source found and its status, and one
pass of the device, cpufreq and thermal readers (machine ids are left out), while
recording every node read (path and exact text) and every command's output. It writes the
nodes at their board paths under out_dir and the outputs as out_dir/commands/<name>.txt
(<name>.error for a command that failed), the layout ReplayRunner and `detect(out_dir)`
read. Symlinked sysfs folders become plain folders; the tree holds only what was read.
A node that could not be read (e.g. a root-only RAPL counter) is not copied; CAPTURE.txt
lists the sources found and those unusable, with the reasons.
"""

from __future__ import annotations

from pathlib import Path

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
        _read_system(root)
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
    written.append(_write(out_dir / "CAPTURE.txt", "\n".join(lines) + "\n"))
    return written


# Identifiers that must not leave the board in a fixture (the device id is a hash of them).
PRIVATE_NODES = frozenset({"machine-id", "product_uuid", "product_serial", "board_serial"})


def _read_system(root: Path) -> None:
    """One pass of the device, cpufreq and thermal readers, so their nodes are captured too."""
    from agent.board import device
    from agent.probes import cpufreq, thermal

    device.board_model(root)
    device.describe(root)
    dirs = cpufreq.cpu_dirs(root)
    cpufreq.frequencies_mhz(dirs)
    cpufreq.governors(dirs)
    cpufreq.throttle_count(dirs)
    thermal.temperatures_c(root)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
