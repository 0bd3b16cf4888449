"""capture(): each fixture tree, captured as if it were "/", replays to the same sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.probes.capture import capture
from agent.probes.registry import detect

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
BOARDS = [
    "intel-laptop-rapl",
    "amd-rapl",
    "jetson-nano-jp4",
    "jetson-orin",
    "rpi5",
    "laptop-battery-current-only",
    "rpi4-ina226",
    "rpi4-ina226-reindexed",
    "none",
]


def snapshot(root: Path) -> list[tuple[object, ...]]:
    detection = detect(root)
    out: list[tuple[object, ...]] = []
    for source in detection.sources:
        reading = source.read()
        out.append(
            (
                source.name,
                [r.name for r in source.rails],
                source.headline,
                source.update_interval_s,
                reading.values,
                sorted(reading.gaps),
                source.status(),
            )
        )
    out.append(tuple(u.source for u in detection.unusable))
    return out


@pytest.mark.parametrize("board", BOARDS)
def test_capture_replays_to_the_same_sources_and_readings(board: str, tmp_path: Path) -> None:
    out = tmp_path / board
    written = capture(out, root=SYSFS / board)
    assert all(p.is_relative_to(out) for p in written)
    assert snapshot(out) == snapshot(SYSFS / board)


def test_capture_copies_only_what_the_probes_read(tmp_path: Path) -> None:
    written = capture(tmp_path / "pi", root=SYSFS / "rpi5")
    names = {p.relative_to(tmp_path / "pi").as_posix() for p in written}
    assert "commands/vcgencmd_pmic_read_adc.txt" in names
    assert "commands/vcgencmd_get_throttled.txt" in names
    assert "proc/device-tree/model" in names  # the device descriptor reads it
    arm = capture(tmp_path / "arm", root=SYSFS / "synthetic-arm")
    arm_names = {p.relative_to(tmp_path / "arm").as_posix() for p in arm}
    assert (SYSFS / "synthetic-arm" / "etc" / "machine-id").exists()
    assert "etc/machine-id" not in arm_names  # read for the device id, never copied out
    assert "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq" in arm_names
    assert (tmp_path / "pi" / "CAPTURE.txt").read_text().startswith("found: pi5-pmic")
