"""The system description (agent.board.facts) read from fixture trees through describe(), the
code path a board runs: each tree's command answers are replayed from its `commands/`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.board import device
from agent.board.facts.nvpmodel import parse_query
from agent.board.facts.pi_firmware import parse_version
from agent.board.facts.policies import cpu_ranges
from agent.board.facts.registry import FACTS, describe_facts
from agent.probes.commands import runner_for

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
MAXN, W15 = SYSFS / "jetson-orin-nx-maxn", SYSFS / "jetson-orin-nx-15w"
PI5, X86 = SYSFS / "rpi5-throttled", SYSFS / "x86-epyc-vm"
FIELDS = [name for probe in FACTS for name in probe.fields]
JETSON_ONLY = ("power_mode", "power_mode_id", "l4t", "jetpack", "jetson_clocks", "dla")


def test_orin_in_maxn_with_clocks_pinned() -> None:
    d = device.describe(MAXN)
    assert (d["power_mode"], d["power_mode_id"]) == ("MAXN", 0)  # from `nvpmodel -q`
    assert (d["l4t"], d["jetpack"]) == ("35.4.1", "5.1.2")  # the nvidia-jetpack package
    assert d["jetson_clocks"] == "on"
    assert (d["gpu"], d["dla"]) == ("ga10b", 2)
    assert d["isa"] == ["asimd", "asimdhp", "fphp", "asimddp"]  # A78AE: no SVE, no i8mm
    assert d["governors"] == "schedutil:0-7"
    for absent in ("pi_firmware", "throttled", "throttled_now", "power_supply"):
        assert d[absent] is None


def test_orin_in_15w_from_the_status_file_and_the_release_table() -> None:
    """`nvpmodel -q` failed there: the id comes from /var/lib/nvpmodel/status, the name from
    nvpmodel.conf; no nvidia-jetpack package, so JetPack comes from L4T 35.4.1."""
    d = device.describe(W15)
    assert (d["power_mode"], d["power_mode_id"]) == ("15W", 2)
    assert (d["l4t"], d["jetpack"]) == ("35.4.1", "5.1.2")
    assert d["jetson_clocks"] == "off"


def test_two_power_modes_are_two_descriptors() -> None:
    maxn, w15 = device.describe(MAXN), device.describe(W15)
    differ = {k for k in maxn if maxn[k] != w15[k]}
    assert differ == {"power_mode", "power_mode_id", "jetson_clocks"}


def test_pi5_throttle_bits_and_firmware() -> None:
    d = device.describe(PI5)
    assert d["throttled"] == "0x50005"
    assert d["throttled_now"] == ["under_voltage", "throttled"]
    assert d["throttled_since_boot"] == ["under_voltage", "throttled"]
    assert d["pi_firmware"] == "26826259 (2024/09/23 14:02:56)"
    assert d["gpu"] == "v3d" and d["dla"] is None
    assert d["governors"] == "ondemand:0-3"
    assert "asimddp" in d["isa"] and "sve" not in d["isa"]
    for absent in JETSON_ONLY:
        assert d[absent] is None


def test_this_machines_x86_capture() -> None:
    """x86-epyc-vm is `flopgap-agent capture` run on the project's build VM (an AMD EPYC)."""
    d = device.describe(X86)
    for flag in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"):
        assert flag in d["isa"]
    assert not {"asimd", "neon", "amx_tile"} & set(d["isa"])
    for absent in (*JETSON_ONLY, "throttled", "pi_firmware"):
        assert d[absent] is None


def test_a_bare_tree_reports_every_field_missing_with_what_was_looked_for(
    tmp_path: Path,
) -> None:
    facts = describe_facts(tmp_path, runner_for(tmp_path))
    assert list(facts.values) == FIELDS and all(v is None for v in facts.values.values())
    assert set(facts.missing) == set(FIELDS)
    assert "nvpmodel -q" in facts.missing["power_mode"]
    assert "/proc/cpuinfo" in facts.missing["isa"]


def test_partly_pinned_clocks_and_a_jetpack_6_release(tmp_path: Path) -> None:
    root = Path(shutil.copytree(MAXN, tmp_path / "orin"))
    (root / "sys/devices/system/cpu/cpufreq/policy4/scaling_min_freq").write_text("729600\n")
    (root / "commands/dpkg_nvidia_jetpack.txt").unlink()
    (root / "etc/nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
    )
    d = device.describe(root)
    assert d["jetson_clocks"] == "partial"
    assert (d["l4t"], d["jetpack"]) == ("36.4.3", "6.2")
    (root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 9.9, GCID: 1\n")
    assert device.describe(root)["jetpack"] is None  # not in NVIDIA's table: never guessed


@pytest.mark.parametrize(
    ("tree", "supply"),
    [
        ("intel-laptop-rapl", "ac online, battery charging"),
        ("laptop-battery-current-only", "ac offline, battery discharging"),  # mouse skipped
        ("none", "ac online"),
    ],
)
def test_power_supply(tree: str, supply: str) -> None:
    assert device.describe(SYSFS / tree)["power_supply"] == supply


def test_parsers_on_real_output_shapes() -> None:
    warned = "NVPM WARN: fan mode is not set!\nNV Fan Mode:quiet\nNV Power Mode: MODE_30W\n3\n"
    assert parse_query(warned) == (3, "MODE_30W")
    assert parse_query("garbage") == (None, None)
    pi4 = "Mar 17 2023 10:52:00 \nCopyright (c) 2012 Broadcom\nversion 82f3750a (clean)\n"
    assert parse_version(pi4) == "82f3750a (Mar 17 2023 10:52:00)"
    assert parse_version("vcgencmd: VCHI initialization failed") is None
    assert cpu_ranges([6, 0, 1, 2, 3]) == "0-3,6" and cpu_ranges([4]) == "4"
