"""The page-load benchmark's own parts: its synthetic fleet is the size it claims with a
consistent profile, and its probe reads a load time from a real report page in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report_page
from collector.report import build_report_from_frames, write_html


def test_the_fleet_is_ten_devices_by_twenty_models_each_profiled() -> None:
    results, ops, calib = report_page.fleet()
    assert results.groupby("agent_id")["model_name"].nunique().eq(20).all()
    assert results["agent_id"].nunique() == 10 and len(calib) == 10
    assert set(ops["result_id"]) == set(results["result_id"])
    per_result = ops.groupby("result_id")["kernel_time_us"].sum()
    p50_us = results.set_index("result_id")["p50_ms"] * 1e3
    assert (per_result / p50_us.loc[per_result.index]).round(9).eq(1.0).all()
    assert not results["valid"].all() and results["valid"].mean() > 0.9


def test_the_probe_reads_the_load_event_of_a_report(tmp_path: Path) -> None:
    binary = report_page.chromium()
    if binary is None:
        pytest.skip("needs Chromium: apt-get install -y chromium")
    page = write_html(build_report_from_frames(None), tmp_path / "empty.html")
    probed = tmp_path / "probed.html"
    probed.write_text(report_page.probed(page.read_text()), encoding="utf-8")
    assert "script-src 'unsafe-inline'" in probed.read_text()
    timing, wall = report_page.load(binary, probed, tmp_path / "profile")
    assert 0 < timing["load_ms"] < wall * 1e3
    assert timing["images"] == 0 and timing["decoded"] is True
