"""The report's renderers: terminal text, JSON, CSV, PNG and the self-contained HTML file;
and build_report reading a real collector store."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from collector.flops import CONVENTION
from collector.report import (
    Report,
    build_report,
    build_report_from_frames,
    render_text,
    write_csv_dir,
    write_html,
    write_png_dir,
)
from collector.store import Store
from collector.store.rows import CalibrationRow, OpTimeRow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FLOPS = {"tiny": 1e6, "small": 1e7, "dwnet": 5e7, "big": 1e9}


def fleet_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two devices x four models (dwnet 4x slower than its FLOPs predict on rpi5), a
    calibration for rpi5 only, and op times for dwnet on rpi5."""
    rows = []
    for agent, scale in (("rpi5", 3e-6), ("jetson", 1e-6)):
        for model, flops in FLOPS.items():
            slow = 4.0 if (agent, model) == ("rpi5", "dwnet") else 1.0
            rows.append({
                "result_id": f"{agent}-{model}", "model_name": model, "agent_id": agent,
                "hostname": f"{agent}-host", "board": "Board", "threads": 1,
                "provider": "CPUExecutionProvider", "opt_level": "all", "status": "ok",
                "p50_ms": scale * flops**0.8 * slow, "flops": flops, "bytes": flops / 5,
                "valid": True,
            })  # fmt: skip
    ops = [
        {"result_id": "rpi5-dwnet", "node_name": "dw", "op_type": "Conv", "depthwise": True,
         "provider": "CPU", "kernel_time_us": 600.0, "flops": 1e7, "bytes": 4e6, "fused_from": ""},
        {"result_id": "rpi5-dwnet", "node_name": "pw", "op_type": "Conv", "depthwise": False,
         "provider": "CPU", "kernel_time_us": 300.0, "flops": 3.5e7, "bytes": 2e6,
         "fused_from": "bn;relu"},
        {"result_id": "rpi5-dwnet", "node_name": "add", "op_type": "Add", "depthwise": None,
         "provider": "CPU", "kernel_time_us": 100.0, "flops": 5e6, "bytes": 3e6, "fused_from": ""},
    ]  # fmt: skip
    calib = [{"agent_id": "rpi5", "threads": 1, "peak_gflops": 50.0, "bandwidth_gbs": 8.0,
              "measured_at": 1.0}]  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(ops), pd.DataFrame(calib)


@pytest.fixture(scope="module")
def report() -> Report:
    results, ops, calib = fleet_frames()
    return build_report_from_frames(results, ops, calib, campaign="fleet")


def test_text_has_the_expected_tables(report: Report) -> None:
    text = render_text(report)
    assert "flopgap report: campaign fleet" in text
    assert " ".join(text.split()).count(" ".join(f"FLOPs convention: {CONVENTION}".split())) == 1
    prose = [line for line in text.splitlines() if line.startswith(("- ", "  ", "FLOPs"))]
    assert prose and max(len(line) for line in prose) <= 100
    for device in ("rpi5", "jetson"):
        assert f"== {device}: {device}-host (Board) [CPU, 1 threads, opt all] ==" in text
    assert re.search(r"model\s+FLOPs\s+FLOP/B\s+p50 ms\s+GFLOP/s\s+eff\s+bound", text)
    assert "FLOPs vs p50 over 4 models: Spearman +1.00, Kendall tau-b +1.00" in text
    assert "fit: ln(p50 ms) = " in text
    assert re.search(r"dwnet .* slower$", text, re.MULTILINE)
    assert "== op types on rpi5: time share vs FLOP share ==" in text
    assert re.search(r"1\s+Conv \(depthwise\)\s+1\s+60.0 %\s+20.0 %\s+40.0 %\s+16.67\s+4 MB", text)
    assert "== missing ==" in text and "no calibration (peak, bandwidth) for jetson" in text
    assert "dwnet is " in text and "slower than its FLOPs predict on rpi5" in text
    widths = {len(line) for line in text.splitlines() if line.startswith("-----")}
    assert max(widths) <= 110


def test_text_of_an_empty_report() -> None:
    text = render_text(build_report_from_frames(None, campaign="void"))
    assert "campaign 'void' has no ok results" in text


def test_json_round_trips_and_names_the_convention(report: Report) -> None:
    doc = report.to_json()
    encoded = json.dumps(doc, allow_nan=False)
    assert json.loads(encoded) == doc
    assert doc["flops_convention"] == CONVENTION
    assert doc["format"] == "flopgap-report/1"
    models = {(r["device"], r["model"]): r for r in doc["tables"]["models"]}
    assert models[("rpi5", "dwnet")]["flag"] == "slower"
    assert models[("jetson", "big")]["efficiency"] is None  # uncalibrated: null, not 0
    assert isinstance(models[("rpi5", "big")]["threads"], int)
    assert set(doc["tables"]) == {
        "latency",
        "models",
        "fits",
        "op_types",
        "cross_device",
        "calibration",
        "model_ops",
    }
    assert doc["missing"] and doc["findings"][0].startswith("dwnet is ")


def test_csv_dir_has_one_file_per_table(report: Report, tmp_path: Path) -> None:
    written = write_csv_dir(report, tmp_path / "csv")
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["latency.csv", "models.csv", "fits.csv", "op_types.csv", "cross_device.csv",
         "calibration.csv", "model_ops.csv", "README.txt"]
    )  # fmt: skip
    with (tmp_path / "csv" / "models.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and "residual" in rows[0]
    jetson = next(r for r in rows if r["device"] == "jetson")
    assert jetson["efficiency"] == ""  # missing is an empty cell
    assert CONVENTION in (tmp_path / "csv" / "README.txt").read_text()


def _images(html: str) -> list[bytes]:
    sources = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [base64.b64decode(s) for s in sources]


def test_html_is_self_contained_with_inline_pngs(report: Report, tmp_path: Path) -> None:
    html = write_html(report, tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    images = _images(html)
    # heatmaps (ms, GFLOP/s) + per device: scatter x2, roofline x1 (rpi5 only), op shares x1
    assert len(images) == 6
    assert all(image.startswith(PNG_MAGIC) for image in images)
    assert "jetson: roofline: skipped: no calibration" in html
    assert "jetson: time share vs FLOP share: skipped: no per-op times" in html
    assert '<table class="sortable" id="latency">' in html and "dwnet" in html
    assert html.count("<img ") == len(images)


def test_html_escapes_names(tmp_path: Path) -> None:
    results, _, _ = fleet_frames()
    results["model_name"] = results["model_name"].str.replace("tiny", "<b>tiny</b>")
    html = write_html(build_report_from_frames(results), tmp_path / "r.html").read_text()
    assert "<b>tiny</b>" not in html and "&lt;b&gt;tiny&lt;/b&gt;" in html


def test_png_dir_writes_the_same_plots(report: Report, tmp_path: Path) -> None:
    written = write_png_dir(report, tmp_path / "png")
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    assert pngs == sorted(
        ["heatmap_ms.png", "heatmap_gflops.png", "scatter_rpi5.png", "scatter_jetson.png",
         "roofline_rpi5.png", "op_shares_rpi5.png"]
    )  # fmt: skip
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in written if p.suffix == ".png")
    skipped = (tmp_path / "png" / "skipped.txt").read_text()
    assert "roofline_jetson: no calibration" in skipped


def test_plots_degrade_when_nothing_can_be_drawn(tmp_path: Path) -> None:
    empty = build_report_from_frames(None)
    html = write_html(empty, tmp_path / "empty.html").read_text()
    assert "<img" not in html and "skipped: no result with both FLOPs and latency" in html
    assert [p.name for p in write_png_dir(empty, tmp_path / "png")] == ["skipped.txt"]


# --- build_report on a real store -----------------------------------------------------------


def _document(agent: str, model: str, p50: float) -> dict[str, Any]:
    """The parts of a result document that collector.export reads."""
    return {
        "schema_version": 1,
        "model": {"name": model, "sha256": model, "size_bytes": 1,
                  "inputs": {"x": {"type": "tensor(float)", "shape": [1, 8]}}},
        "load_ms": 1.0, "first_inference_ms": 1.0, "warmup": {"n": 1, "ms": 1.0},
        "latency_ms": {"n": 10, "p50": p50, "p90": p50, "p95": p50, "p99": p50, "mean": p50,
                       "std": 0.0, "cv": 0.0, "min": p50, "max": p50, "median_ci95": None},
        "memory": {"rss_before_mb": 1, "rss_after_load_mb": 1, "peak_rss_mb": 1, "hwm_mb": 1},
        "valid": True, "invalid_reasons": [], "system": {},
        "device": {"hostname": f"{agent}-host", "cpu_model": "cpu", "arch": "x86_64",
                   "logical_cores": 4, "board": None},
        "settings": {"provider": "CPUExecutionProvider", "threads": 1, "inter_threads": 1,
                     "opt_level": "all"},
        "power": None,
    }  # fmt: skip


def _store(path: Path, p50: dict[str, float], cls: type[Store] = Store) -> Store:
    """A store holding campaign "fleet": one result and one FLOPs count per model."""
    store = cls(path)
    store.add_campaign("c1", "fleet", {})
    shapes = json.dumps({"x": [1, 8]}, sort_keys=True, separators=(",", ":"))
    for i, (model, ms) in enumerate(p50.items()):
        store.add_jobs([(f"j{i}", "c1", "pc", model, model, {}, 0, 1, 60.0)])
        store.record_result(f"j{i}", f"r{i}", "dev", _document("pc", model, ms), np.ones(10))
        total = {"flops": FLOPS[model], "macs": FLOPS[model] / 2, "flops_2mac": FLOPS[model],
                 "params": 1, "bytes": FLOPS[model] / 5, "intensity": 5.0}  # fmt: skip
        store.put_cost(model, shapes, CONVENTION, {"total": total}, None)
    return store


class ProfilingStore(Store):
    """The interface build_report expects once the store keeps op times and calibrations."""

    def op_time_rows(self, campaign_id: str | None = None) -> list[OpTimeRow]:
        return [OpTimeRow("r0", "n", "MatMul", "CPU", 5.0, 1_000_000, 500_000, 100_000, None,
                          None, None)]  # fmt: skip

    def calibration_rows(self) -> list[CalibrationRow]:
        return [CalibrationRow("pc", 1, 10.0, 2.0, 0.0, "{}")]


def test_build_report_reads_a_store(tmp_path: Path) -> None:
    store = _store(tmp_path / "r.sqlite", {"tiny": 0.01, "small": 0.05, "big": 2.0})
    try:
        report = build_report(store, campaign="fleet")
    finally:
        store.close()
    assert sorted(report.models["model"]) == ["big", "small", "tiny"]
    assert report.fits.iloc[0]["models"] == 3
    assert "no per-op times: the profiling pass was not run" in report.missing
    assert any(m.startswith("no calibration (peak, bandwidth) for pc") for m in report.missing)


def test_build_report_uses_op_times_and_calibration_when_the_store_has_them(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "p.sqlite", {"tiny": 0.01}, ProfilingStore)
    try:
        report = build_report(store, campaign="fleet")
    finally:
        store.close()
    assert report.op_types.iloc[0]["op_type"] == "MatMul"
    assert report.models.iloc[0]["peak_gflops"] == 10.0
    assert not any("store has no" in m for m in report.missing)


def test_unknown_campaign_is_a_usage_error(tmp_path: Path) -> None:
    from shared.errors import UsageError

    store = Store(tmp_path / "e.sqlite")
    try:
        with pytest.raises(UsageError):
            build_report(store, campaign="nope")
    finally:
        store.close()


def test_cli_prints_and_writes_every_output(tmp_path: Path) -> None:
    import argparse
    import io

    from collector.report import cli

    _store(tmp_path / "c.sqlite", {"tiny": 0.01, "small": 0.05, "big": 2.0}).close()
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(
        ["report", "--db", str(tmp_path / "c.sqlite"), "--campaign", "fleet", "--html",
         str(out / "r.html"), "--png-dir", str(out / "png"), "--csv-dir", str(out / "csv"),
         "--json", str(out / "r.json")]
    )  # fmt: skip
    stream = io.StringIO()
    assert args.func(args, stream) == 0
    assert "== pc: pc-host [CPU, 1 threads, opt all] ==" in stream.getvalue()
    assert json.loads((out / "r.json").read_text())["flops_convention"] == CONVENTION
    assert (out / "r.html").exists() and (out / "csv" / "models.csv").exists()
    assert (out / "png" / "scatter_pc.png").read_bytes().startswith(PNG_MAGIC)


def test_cli_refuses_a_missing_database(tmp_path: Path) -> None:
    import argparse

    from collector.report import cli
    from shared.errors import UsageError

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", "--db", str(tmp_path / "none.sqlite")])
    with pytest.raises(UsageError):
        args.func(args)
