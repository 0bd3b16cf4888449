"""RAPL: wrap-around, overlapping domains, root-only counters, and an end-to-end sampler run
against a counter that a helper thread advances at a known rate."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.power import report as power_report
from agent.power.energy import Samples
from agent.power.meter import PowerSampler, open_sampler
from agent.probes import nodes
from agent.probes.base import Reading, Source
from agent.probes.registry import detect

SYSFS = Path(__file__).resolve().parent / "data" / "sysfs"
POWERCAP = "sys/class/powercap"
GRANT = "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj"


def copy_board(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(SYSFS / name, tmp_path / name))


def bump(root: Path, deltas_uj: dict[str, int]) -> None:
    """Advance each domain's counter by a delta, wrapping at its max_energy_range_uj."""
    for folder, delta in deltas_uj.items():
        domain = root / POWERCAP / folder
        wrap = int((domain / "max_energy_range_uj").read_text())
        energy = int((domain / "energy_uj").read_text())
        (domain / "energy_uj").write_text(f"{(energy + delta) % wrap}\n")


def two_reading_result(source: Source, root: Path, deltas_uj: dict[str, int]) -> dict:
    first = source.read()
    bump(root, deltas_uj)
    second = source.read()
    samples = to_samples(source, [first, second])
    return power_report.build(source, samples, [], (first.t_ns, second.t_ns), 10, None)


def to_samples(source: Source, readings: list[Reading]) -> Samples:
    return Samples(
        np.array([r.t_ns for r in readings], dtype=np.int64),
        {
            rail.name: np.array([r.values.get(rail.name, np.nan) for r in readings])
            for rail in source.rails
        },
    )


def test_overlapping_intel_domains_are_not_summed(tmp_path: Path) -> None:
    root = copy_board("intel-laptop-rapl", tmp_path)
    source = detect(root).best
    assert source is not None
    deltas = {
        "intel-rapl:1": 30_000_000,  # psys 30 J
        "intel-rapl:0": 20_000_000,  # package 20 J, inside psys
        "intel-rapl:0:0": 12_000_000,  # core, inside package
        "intel-rapl:0:1": 3_000_000,  # uncore, inside package
        "intel-rapl-mmio:0": 20_000_000,  # the same package through MMIO
    }
    result = two_reading_result(source, root, deltas)
    assert result["energy_j"] == pytest.approx(30.0)  # psys alone, not 85 J
    assert result["headline_rail"] == "psys"
    assert result["energy_j_per_inference"] == pytest.approx(3.0)


def test_amd_package_wraps_and_only_packages_are_summed(tmp_path: Path) -> None:
    root = copy_board("amd-rapl", tmp_path)
    source = detect(root).best
    assert source is not None
    deltas = {
        "intel-rapl:0": 1_000_000,  # 65532000000 + 1 J wraps past 65532610987
        "intel-rapl:1": 2_000_000,
        "intel-rapl:0:0": 500_000,
        "intel-rapl:1:0": 500_000,
    }
    result = two_reading_result(source, root, deltas)
    wrapped = int((root / POWERCAP / "intel-rapl:0" / "energy_uj").read_text())
    assert wrapped == 65532000000 + 1_000_000 - 65532610987  # the fixture really wrapped
    assert result["energy_j"] == pytest.approx(3.0)  # 1 J + 2 J; cores not added
    assert result["headline_rail"] == "package-0+package-1"


def assert_root_only_reason(root: Path) -> None:
    detection = detect(root)
    assert all(s.name != "rapl" for s in detection.sources)
    [rapl] = [u for u in detection.unusable if u.source == "rapl"]
    assert "CVE-2020-8694" in rapl.reason and GRANT in rapl.reason
    assert "intel-rapl-mmio:*/energy_uj" in rapl.reason  # this machine has an MMIO domain
    sampler, reason = open_sampler(root)
    assert sampler is None and reason is not None and GRANT in reason


def test_root_only_rapl_by_file_mode(tmp_path: Path) -> None:
    root = copy_board("intel-laptop-rapl", tmp_path)
    files = list((root / POWERCAP).glob("intel-rapl*:*/energy_uj"))
    for f in files:
        f.chmod(0o000)
    try:
        if os.access(files[0], os.R_OK):
            pytest.skip("this user reads mode-000 files (root): see the injected test")
        assert_root_only_reason(root)
    finally:
        for f in files:
            f.chmod(0o644)


def test_root_only_rapl_by_injected_permission_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs everywhere, root included: the node reader raises what the kernel would raise."""
    real = nodes.read_node

    def deny_energy(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(nodes, "read_node", deny_energy)
    assert_root_only_reason(SYSFS / "intel-laptop-rapl")


class CounterWriter(threading.Thread):
    """Advances energy_uj at `watts` on its own perf_counter clock, wrapping at `wrap_uj`."""

    def __init__(self, path: Path, watts: float, start_uj: int, wrap_uj: int) -> None:
        super().__init__(daemon=True)
        self.path, self.rate, self.start_uj, self.wrap = path, watts * 1e6, start_uj, wrap_uj
        self.done = threading.Event()
        self.write(start_uj)

    def write(self, value: int) -> None:
        tmp = self.path.with_name(".energy_uj.tmp")
        tmp.write_text(f"{value}\n")
        os.replace(tmp, self.path)  # atomic: the sampler never sees a half-written file

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.done.wait(0.001):
            elapsed = time.perf_counter() - t0
            self.write(int(self.start_uj + self.rate * elapsed) % self.wrap)


def test_sampler_measures_a_known_rate_through_a_wrap(tmp_path: Path) -> None:
    domain = tmp_path / POWERCAP / "intel-rapl:0"
    domain.mkdir(parents=True)
    (domain / "name").write_text("package-0\n")
    (domain / "max_energy_range_uj").write_text("3000000\n")  # 3 J: wraps every 0.6 s at 5 W
    writer = CounterWriter(domain / "energy_uj", 5.0, 2_500_000, 3_000_000)
    writer.start()
    sampler = PowerSampler(root=tmp_path, rate_hz=100)
    try:
        sampler.start()
        assert sampler.wait_samples(5, timeout_s=5.0)
        start_ns = time.perf_counter_ns()
        threading.Event().wait(1.0)  # the measured window: a bounded wait, not a sync sleep
        end_ns = time.perf_counter_ns()
        result = sampler.window(start_ns, end_ns, iterations=200)
    finally:
        sampler.stop()
        writer.done.set()
        writer.join(timeout=5.0)
    window_s = (end_ns - start_ns) / 1e9
    assert result["avg_w"] == pytest.approx(5.0, rel=0.05)
    assert result["rails"]["package-0"]["avg_w"] == pytest.approx(5.0, rel=0.05)
    assert result["energy_j"] == pytest.approx(5.0 * window_s, rel=0.05)
    assert result["energy_j_per_inference"] == pytest.approx(result["energy_j"] / 200)
    assert result["samples"] >= 50 and result["sensor_period_ms"] == 1.0
    assert result["net_energy_j_per_inference"] is None  # no idle baseline taken
    assert not [w for w in result["warnings"] if "sensor updates" in w]
    raw = sampler.raw().values["package-0"]
    assert np.any(np.diff(raw) < 0), "the counter should have wrapped during the run"
