"""Device descriptor and CPU/thermal readers, on fixture trees through the real code path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.board import device
from agent.engine.sampler import Sampler
from agent.probes import cpufreq, thermal

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
ARM, JETSON, X86 = SYSFS / "synthetic-arm", SYSFS / "synthetic-jetson", SYSFS / "synthetic-x86"


def test_board_model_from_each_source() -> None:
    assert device.board_model(ARM) == "Raspberry Pi 5 Model B Rev 1.0"  # NUL stripped
    assert device.board_model(JETSON).startswith("NVIDIA Jetson (R35 (release), REVISION: 4.1")
    assert device.board_model(X86) == "LENOVO 20XW0055GE"
    assert device.board_model(SYSFS / "no-such-board") is None


def test_cpu_model_falls_back_to_arm_model_line() -> None:
    assert device.describe(ARM)["cpu_model"] == "Raspberry Pi 5 Model B Rev 1.0"


def test_device_id_is_stable_hashed_and_root_dependent() -> None:
    first, again = device.device_id(ARM), device.device_id(ARM)
    assert first == again and len(first) == 16
    assert "0123456789abcdef" not in first  # the raw machine-id never leaves the board
    assert device.device_id(X86) != first


def test_describe_has_the_descriptor_fields() -> None:
    d = device.describe(ARM)
    for key in (
        "device_id",
        "hostname",
        "os",
        "kernel",
        "arch",
        "cpu_model",
        "physical_cores",
        "logical_cores",
        "ram_mb",
        "python",
        "onnxruntime",
        "providers",
        "board",
    ):
        assert key in d
    assert "CPUExecutionProvider" in d["providers"]


def test_cpufreq_readers() -> None:
    dirs = cpufreq.cpu_dirs(ARM)
    assert list(dirs) == [0, 1]
    assert cpufreq.frequencies_mhz(dirs) == {0: 2400.0, 1: 1500.0}
    assert cpufreq.governors(dirs) == ["ondemand", "performance"]
    assert cpufreq.throttle_count(dirs) is None  # not exposed: missing, not zero
    assert cpufreq.throttle_count(cpufreq.cpu_dirs(X86)) == 6
    assert cpufreq.frequencies_mhz(cpufreq.cpu_dirs(X86)) is None


def test_thermal_skips_unreadable_zone_and_reports_missing_as_none() -> None:
    assert thermal.temperatures_c(ARM) == {"cpu-thermal": 48.75}  # gpu zone holds garbage
    assert thermal.temperatures_c(X86) is None


def test_sampler_reads_the_fixture_and_sees_an_allocation() -> None:
    sampler = Sampler(interval_s=0.005, root=ARM)
    sampler.start()
    before = sampler.report.peak_rss_mb
    block = np.ones(64 * 1024 * 1024, dtype=np.uint8)  # 64 MiB, pages touched
    report = sampler.stop()
    assert block.sum() == block.size
    assert report.peak_rss_mb >= before + 60
    assert report.freq_min_mhz == {0: 2400.0, 1: 1500.0}
    assert report.governors == ["ondemand", "performance"]
    assert report.temp_max_c == {"cpu-thermal": 48.75}
