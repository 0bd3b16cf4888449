"""Power-source detection and units on each board's fixture tree, through the real code path.

The trees under tests/data/sysfs/ are hand-made from POWER.md's paths and units
(see tests/data/sysfs/POWER-FIXTURES.md), not captured on boards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.probes import pi_pmic
from agent.probes.base import ENERGY_COUNTER, POWER_GAUGE, Source
from agent.probes.battery import Battery
from agent.probes.commands import CommandRunner, ReplayRunner, runner_for
from agent.probes.hwmon import HwmonMeter
from agent.probes.registry import detect

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"


def board(name: str) -> Path:
    return SYSFS / name


def copy_board(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(board(name), tmp_path / name, symlinks=True))


def only(name: str) -> Source:
    found = detect(board(name)).best
    assert found is not None
    return found


def test_intel_laptop_rapl_psys_is_the_headline_and_domains_are_rails() -> None:
    source = only("intel-laptop-rapl")
    assert source.name == "rapl" and source.kind == ENERGY_COUNTER and source.unit == "J"
    assert source.headline == ("psys",)
    names = {r.name for r in source.rails}
    assert names == {"package-0", "package-0/core", "package-0/uncore", "psys", "mmio/package-0"}
    reading = source.read()
    assert reading.values["psys"] == pytest.approx(123456.789012)  # µJ -> J
    assert reading.gaps == {}
    assert {r.name: r.wrap_j for r in source.rails}["psys"] == pytest.approx(262143.32885)
    assert "never summed" in (source.caveat or "")


def test_amd_rapl_headline_is_the_sum_of_packages_only() -> None:
    source = only("amd-rapl")
    assert source.headline == ("package-0", "package-1")
    assert source.headline_rail == "package-0+package-1"
    assert "package-0/core" in {r.name for r in source.rails}
    assert "CPU packages only" in (source.caveat or "")


def test_charging_battery_is_present_but_unusable_with_the_reason() -> None:
    detection = detect(board("intel-laptop-rapl"))
    [battery] = [u for u in detection.unusable if u.source == "battery BAT0"]
    assert "'Charging'" in battery.reason and "unplug the charger" in battery.reason


def test_discharging_battery_power_now_is_microwatts(tmp_path: Path) -> None:
    root = copy_board("intel-laptop-rapl", tmp_path)
    (root / "sys/class/power_supply/BAT0/status").write_text("Discharging\n")
    [battery] = [s for s in detect(root).sources if isinstance(s, Battery)]
    assert battery.read().values == {"BAT0": pytest.approx(23.45)}


def test_current_only_battery_is_current_times_voltage_and_device_batteries_skipped() -> None:
    source = only("laptop-battery-current-only")
    assert source.name == "battery" and [r.name for r in source.rails] == ["BAT0"]
    assert source.read().values == {"BAT0": pytest.approx(18.0)}  # 1.5 A × 12 V, µA × µV


def test_battery_that_starts_charging_mid_run_is_a_gap(tmp_path: Path) -> None:
    root = copy_board("laptop-battery-current-only", tmp_path)
    source = only_in(root)
    (root / "sys/class/power_supply/BAT0/status").write_text("Charging\n")
    reading = source.read()
    assert reading.values == {} and "status is now 'Charging'" in reading.gaps["BAT0"]


def only_in(root: Path) -> Source:
    found = detect(root).best
    assert found is not None
    return found


def test_jetson_nano_iio_power_is_milliwatts_and_input_rail_is_the_headline() -> None:
    detection = detect(board("jetson-nano-jp4"))
    assert [s.name for s in detection.sources] == ["ina3221x", "tegrastats"]
    source = detection.sources[0]
    assert source.headline == ("POM_5V_IN",)
    assert source.read().values == pytest.approx(
        {"POM_5V_IN": 2.0, "POM_5V_GPU": 0.12, "POM_5V_CPU": 0.4}
    )


def test_jetson_orin_ina3221_is_volts_times_amps_by_label() -> None:
    detection = detect(board("jetson-orin"))
    assert [s.name for s in detection.sources] == ["ina3221", "tegrastats"]
    source = detection.sources[0]
    assert source.kind == POWER_GAUGE and source.headline == ("VDD_IN",)
    assert source.update_interval_s == pytest.approx(0.006)
    assert source.read().values == pytest.approx(
        {"VDD_IN": 5.0, "VDD_CPU_GPU_CV": 0.6, "VDD_SOC": 1.4}  # mV × mA / 1e6
    )


def test_orin_channels_found_by_label_whatever_their_order_and_hwmon_number(
    tmp_path: Path,
) -> None:
    root = copy_board("jetson-orin", tmp_path)
    chip = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon"
    (chip / "hwmon1").rename(chip / "hwmon7")
    dev = chip / "hwmon7"
    (dev / "in1_label").write_text("VDD_SOC\n")
    (dev / "in3_label").write_text("VDD_IN\n")
    (dev / "in2_label").write_text("NC\n")  # not connected: skipped
    source = only_in(root)
    assert source.headline == ("VDD_IN",)
    assert source.read().values == pytest.approx({"VDD_SOC": 5.0, "VDD_IN": 1.4})


def test_hwmon_meter_matched_by_name_across_an_index_change() -> None:
    first, second = only("rpi4-ina226"), only("rpi4-ina226-reindexed")
    assert isinstance(first, HwmonMeter) and isinstance(second, HwmonMeter)
    assert (first.device.name, second.device.name) == ("hwmon2", "hwmon5")
    assert [r.name for r in first.rails] == [r.name for r in second.rails] == ["ina226"]
    assert first.read().values == second.read().values == {"ina226": pytest.approx(4.998)}
    assert first.update_interval_s == pytest.approx(0.035)


def test_pi5_pmic_rails_are_volts_times_amps_with_the_caveat() -> None:
    source = only("rpi5")
    assert source.name == "pi5-pmic"
    assert source.caveat == (
        "sum of SoC rails, not board power (misses PMIC losses and 5 V peripherals)"
    )
    assert source.headline_rail == "sum of SoC rails"
    values = source.read().values
    assert values["VDD_CORE"] == pytest.approx(0.81262990 * 0.88187950)
    assert "EXT5V" not in values and "BATT" not in values  # voltage only: no rail
    assert len(values) == 12 and set(source.headline) == set(values)


def test_pi5_throttled_flags_and_temperature() -> None:
    status = only("rpi5").status()
    assert status == {
        "throttled": {
            "raw": "0x50005",
            "now": ["under_voltage", "throttled"],
            "since_boot": ["under_voltage", "throttled"],
        },
        "temp_c": 48.8,
    }
    assert pi_pmic.decode_throttled(0xF000F)["now"] == list(pi_pmic.FLAGS)
    assert pi_pmic.decode_throttled(0x80000) == {"now": [], "since_boot": ["soft_temp_limit"]}
    assert pi_pmic.parse_throttled("garbage") is None


def test_pi_without_pmic_adc_or_access_is_unusable_with_the_reason(tmp_path: Path) -> None:
    root = copy_board("rpi5", tmp_path)
    adc = root / "commands" / "vcgencmd_pmic_read_adc.txt"
    adc.write_text('error=2 error_msg="Invalid arguments"\n')
    [why] = [u.reason for u in detect(root).unusable]
    assert "no rails" in why and "INA226" in why
    adc.unlink()
    (root / "commands" / "vcgencmd_pmic_read_adc.error").write_text(
        "vcgencmd pmic_read_adc: exit 255: VCHI initialization failed\n"
    )
    [why] = [u.reason for u in detect(root).unusable]
    assert "VCHI" in why and "sudo usermod -aG video" in why


def test_none_tree_has_no_source_and_says_what_was_looked_for() -> None:
    detection = detect(board("none"))
    assert detection.best is None and detection.unusable == []
    reason = detection.unavailable_reason()
    for wanted in ("intel-rapl", "ina3221", "pmic_read_adc", "power_supply", "tegrastats"):
        assert wanted in reason


def test_root_comes_from_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOPGAP_SYSFS_ROOT", str(board("rpi4-ina226")))
    assert detect().root == board("rpi4-ina226")
    assert [s.name for s in detect().sources] == ["hwmon"]
    monkeypatch.setenv("FLOPGAP_SYSFS_ROOT", str(board("rpi5")))
    assert [s.name for s in detect().sources] == ["pi5-pmic"]


def test_runner_replays_under_a_tree_and_runs_for_real_on_slash() -> None:
    assert type(runner_for("/")) is CommandRunner
    replay = runner_for(board("rpi5"))
    assert isinstance(replay, ReplayRunner)
    assert replay.run(pi_pmic.MEASURE_TEMP).text == "temp=48.8'C\n"
    missing = runner_for(board("none")).run(pi_pmic.MEASURE_TEMP)
    assert missing.missing and missing.text is None
