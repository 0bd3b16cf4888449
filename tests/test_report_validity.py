"""The report uses valid results only by default, counts what it left out and why, and names
the calibration each device's roofline stands on (issue 14)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from collector.report import build_report, build_report_from_frames, render_text, write_html
from collector.report import cli as report_cli
from collector.report.calibration import NO_VERDICT, calibration_frame
from collector.report.validity import reason_kinds
from collector.store import Store
from tests.test_report_render import FLOPS, _document

FOREIGN = "other processes used 1.02 CPU cores during the window (limit 0.25); stop them and rerun"
FREQ = "CPU frequency changed during the window (cpu0 800-3400 MHz); set the governor"


def _mixed_store(path: Path) -> Store:
    """Campaign "fleet" on agent pc: tiny, small and big valid; dwnet measured twice, 4x
    slower than its FLOPs predict, and invalid both times (two different reasons)."""
    store = Store(path)
    store.add_campaign("c1", "fleet", {})
    shapes = json.dumps({"x": [1, 8]}, sort_keys=True, separators=(",", ":"))
    p50 = {"tiny": 0.01, "small": 0.063, "big": 2.5, "dwnet": 4 * 0.25}
    runs = [(m, ms, []) for m, ms in p50.items() if m != "dwnet"]
    runs += [("dwnet", p50["dwnet"], [FOREIGN]), ("dwnet", p50["dwnet"], [FREQ])]
    for i, (model, ms, reasons) in enumerate(runs):
        doc = _document("pc", model, ms)
        doc.update(valid=not reasons, invalid_reasons=reasons)
        store.add_jobs([(f"j{i}", "c1", "pc", model, model, {}, 0, 1, 60.0)])
        store.record_result(f"j{i}", f"r{i}", "dev", doc, np.ones(10))
    for model in p50:
        total = {"flops": FLOPS[model], "macs": FLOPS[model] / 2, "flops_2mac": FLOPS[model],
                 "params": 1, "bytes": FLOPS[model] / 5, "intensity": 5.0}  # fmt: skip
        store.put_cost(model, shapes, "2*MACs", {"total": total}, None)
    return store


def _calibration(**detail: Any) -> dict[str, Any]:
    return {"threads": 1, "peak_gflops": 50.0, "bandwidth_gbs": 10.0, "onnxruntime": "1",
            "measured_at": "2026-01-02T03:04:05+00:00", **detail}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = _mixed_store(tmp_path / "mixed.sqlite")
    s.put_calibration("pc", _calibration(valid=True, invalid_reasons=[], rounds=3,
                                         peak_spread=0.02, bandwidth_spread=0.05))  # fmt: skip
    yield s
    s.close()


def test_invalid_results_are_left_out_by_default_and_counted_by_reason(store: Store) -> None:
    report = build_report(store, campaign="fleet")
    assert sorted(report.models["model"]) == ["big", "small", "tiny"]
    assert report.models["valid"].all() and report.fits.iloc[0]["models"] == 3
    assert not any("dwnet" in f for f in report.findings())
    v = report.validity
    assert (v.results, v.valid, v.invalid) == (5, 3, 2)
    assert v.reasons == {"other processes": 1, "frequency changed": 1}
    text = " ".join(render_text(report).split())
    assert (
        "validity: 5 results: 3 valid, 2 invalid (other processes 1, frequency changed 1); "
        "the 2 invalid ones are left out of findings, fits, rankings and roofline "
        "(--include-invalid uses them)"
    ) in text


def test_include_invalid_puts_them_back_and_says_so(store: Store) -> None:
    report = build_report(store, campaign="fleet", include_invalid=True)
    dwnet = report.models.set_index("model").loc["dwnet"]
    assert dwnet["results"] == 2 and not dwnet["valid"]
    assert any("dwnet" in f for f in report.findings())  # 4x slower than its FLOPs predict
    assert any(m.startswith("measurements flagged invalid") for m in report.missing)
    text = " ".join(render_text(report).split())
    assert "the invalid ones are included (--include-invalid)" in text


def test_a_campaign_with_only_invalid_results_says_what_to_do(tmp_path: Path) -> None:
    frame = pd.DataFrame([{"result_id": "r", "model_name": "m", "agent_id": "pc",
                           "threads": 1, "p50_ms": 1.0, "flops": 1e6, "status": "ok",
                           "valid": False, "invalid_reasons": FOREIGN}])  # fmt: skip
    report = build_report_from_frames(frame, campaign="fleet")
    assert report.models.empty
    assert any(
        "has no valid results (1 results: 0 valid, 1 invalid (other processes 1))" in m
        and "--include-invalid" in m
        for m in report.missing
    ), report.missing


def test_the_report_names_the_calibration_it_used_in_every_output(
    store: Store, tmp_path: Path
) -> None:
    report = build_report(store, campaign="fleet")
    [line] = report.calibration_used
    assert line.startswith("pc: calibration of pc at 1 threads taken 2026-01-02T03:04:05Z")
    assert "peak 50.0 GFLOP/s, bandwidth 10.0 GB/s, ridge 5.0 FLOP/B; valid;" in line
    assert "best of 3 rounds, spread peak 2.0%, bandwidth 5.0%" in line
    assert "== calibration used ==" in render_text(report)
    assert "Calibration used" in write_html(report, tmp_path / "r.html").read_text()
    doc = report.to_json()
    assert doc["calibration_used"] == [line]
    assert doc["validity"]["invalid_reasons"] == {"other processes": 1, "frequency changed": 1}
    [row] = doc["tables"]["calibration"]
    assert row["verdict"] == "valid" and row["taken_at"] == "2026-01-02T03:04:05Z"


def test_cli_include_invalid_flag(store: Store, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers())
    db = str(tmp_path / "mixed.sqlite")  # the fixture's store
    for flags, models in (([], 3), (["--include-invalid"], 4)):
        out = tmp_path / f"r{len(flags)}.json"
        args = parser.parse_args(["report", "--db", db, "--json", str(out), *flags])
        assert args.func(args, io.StringIO()) == 0
        doc = json.loads(out.read_text())
        assert len(doc["tables"]["models"]) == models
        assert doc["validity"]["invalid_included"] is bool(flags)


def test_an_invalid_or_unjudged_calibration_in_a_frame() -> None:
    cal = calibration_frame(
        [
            {"agent_id": "pc", "threads": 1, "peak_gflops": 50.0, "bandwidth_gbs": 10.0,
             "measured_at": 0.0, "detail_json": json.dumps(_calibration())},
            {"agent_id": "pc", "threads": 2, "peak_gflops": 20.0, "bandwidth_gbs": 5.0,
             "measured_at": 0.0,
             "detail_json": json.dumps(_calibration(valid=False, invalid_reasons=[FOREIGN]))},
        ]
    )  # fmt: skip
    assert list(cal["verdict"]) == [NO_VERDICT, f"invalid: {FOREIGN}"]  # old rows count valid
    results = pd.DataFrame([
        {"result_id": f"r{t}", "model_name": "m", "agent_id": "pc", "threads": t,
         "p50_ms": 1.0, "flops": 1e6, "bytes": 1e5, "status": "ok", "valid": True,
         "provider": "CPUExecutionProvider", "opt_level": "all"}
        for t in (1, 2)
    ])  # fmt: skip
    report = build_report_from_frames(results, calibration=cal)
    peaks = dict(zip(report.models["threads"], report.models["peak_gflops"], strict=True))
    assert peaks == {1: 50.0, 2: None}
    assert any(m.startswith("calibration of pc at 2 threads left out: invalid") for m in
               report.missing)  # fmt: skip
    kept = build_report_from_frames(results, calibration=cal, include_invalid=True)
    assert list(kept.models["peak_gflops"]) == [50.0, 20.0]


def test_reason_kinds_read_export_text_and_lists() -> None:
    joined = "; ".join([FOREIGN, FREQ])  # export's invalid_reasons cell; FOREIGN has a "; "
    assert reason_kinds(joined) == ["other processes", "frequency changed"]
    assert reason_kinds([FOREIGN]) == ["other processes"]
    assert reason_kinds("p90 needs 44 runs at 99% confidence, have 40") == ["too few runs"]
    assert reason_kinds("something new: details") == ["something new"]
    assert reason_kinds("") == ["no reason recorded"]
