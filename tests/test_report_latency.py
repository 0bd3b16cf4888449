"""The latency view and how the report prints numbers: p50/p90 per device × model with invalid
results shown and marked, the fastest VALID model per device, and text/HTML/JSON that never
print a time as 1.796e+09, a count as 115.0, a share as 0.05656 or FLOPs as 3.2e+09."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from collector.report import Report, build_report_from_frames, render_text, units
from collector.report.latency import latency_table
from collector.report.plots import roofs_of
from collector.report.render_html import SCRIPT_HASH, SORT_SCRIPT, render_html

FOREIGN = "other processes used 40% of a core (threshold 5%)"


def _row(agent: str, model: str, p50: float, valid: bool = True, rid: str = "") -> dict:
    return {
        "result_id": rid or f"{agent}-{model}", "model_name": model, "agent_id": agent,
        "hostname": f"{agent}.lab", "board": "Board", "threads": 1,
        "provider": "CPUExecutionProvider", "opt_level": "all", "status": "ok",
        "p50_ms": p50, "p90_ms": p50 * 1.25, "flops": 1e9 * p50, "bytes": 1e8 * p50,
        "valid": valid, "invalid_reasons": None if valid else FOREIGN,
    }  # fmt: skip


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """pi-a: "quick" is fastest but invalid, so "mid" is its fastest valid model; "slow" has
    one valid and one invalid repeat; pi-b has only an invalid result."""
    rows = [
        _row("pi-a", "quick", 0.5, valid=False),
        _row("pi-a", "mid", 2.0),
        _row("pi-a", "slow", 8.0, rid="s1"),
        _row("pi-a", "slow", 100.0, valid=False, rid="s2"),
        _row("pi-a", "big", 20.0),
        _row("pi-b", "mid", 3.0, valid=False),
    ]
    ops = [
        {"result_id": "pi-a-mid", "node_name": f"n{i}", "op_type": "Conv", "provider": "CPU",
         "kernel_time_us": 100.0, "flops": 1e6, "bytes": 1e5, "fused_from": ""}
        for i in range(115)
    ]  # fmt: skip
    calib = [{"agent_id": "pi-a", "threads": 1, "peak_gflops": 50.0, "bandwidth_gbs": 8.0,
              "measured_at": 1.796e9}]  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(ops), pd.DataFrame(calib)


@pytest.fixture(scope="module")
def report() -> Report:
    return build_report_from_frames(*frames(), campaign="lat")


def test_latency_table_shows_every_result_and_marks_invalid(report: Report) -> None:
    table = {(r.device, r.model): r for r in report.latency.itertuples()}
    assert set(table) == {
        ("pi-a", "quick"), ("pi-a", "mid"), ("pi-a", "slow"), ("pi-a", "big"), ("pi-b", "mid")
    }  # fmt: skip
    quick = table[("pi-a", "quick")]
    assert not quick.valid and quick.p50_ms == 0.5 and quick.p90_ms == 0.625
    assert quick.invalid_reasons == "1 of 1 invalid: other processes"
    slow = table[("pi-a", "slow")]  # the invalid repeat is left out of the medians
    assert slow.valid and slow.p50_ms == 8.0 and slow.n == 1
    assert slow.invalid_reasons == "1 of 2 invalid (left out): other processes"
    mid = table[("pi-a", "mid")]
    assert mid.valid and mid.n == 1 and mid.invalid_reasons == ""
    assert "quick" not in set(report.models["model"])  # the analysis still leaves it out


def test_fastest_is_the_fastest_valid_model(report: Report) -> None:
    assert report.fastest == {"pi-a": "mid", "pi-b": None}
    doc = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert doc["fastest"] == {"pi-a": "mid", "pi-b": None}
    rows = doc["tables"]["latency"]
    assert rows[0].keys() == {
        "device", "model", "p50_ms", "p90_ms", "n", "valid", "invalid_reasons"
    }  # fmt: skip
    assert {(r["device"], r["model"]): r["valid"] for r in rows}[("pi-a", "quick")] is False


def test_text_opens_with_latency_and_prints_readable_numbers(report: Report) -> None:
    text = render_text(report)
    lines = text.splitlines()
    assert lines[2].startswith("== latency: p50/p90 ms per model and device")
    assert re.search(r"^quick\s+0\.5/0\.625 !\s+n/a$", text, re.MULTILINE)
    assert "fastest valid model per device: pi-a mid (2 ms), pi-b none valid" in text
    assert "- quick on pi-a: 1 of 1 invalid: other processes" in text
    assert re.search(r"1\s+Conv\s+115\s+100\.0 %\s+100\.0 %\s+0\.0 %", text)  # nodes, shares
    tables = text.split("== calibration used")[0]  # the prose after it is partly ops.py
    assert "115.0" not in text and not re.search(r"\d\.\d+e[+-]\d", tables)
    assert re.search(r"^big\s+20 GFLOP\s", text, re.MULTILINE)


def test_html_opens_with_latency_and_formats_cells(report: Report) -> None:
    page = render_html(report)
    assert page.index('id="latency"') < page.index("<h2>Figures</h2>")
    assert page.index("fastest valid model per device: pi-a mid") < page.index('id="latency"')
    assert re.search(
        r'class="invalid" data-sort="0\.5" title="1 of 1 invalid: other processes"', page
    )
    assert re.search(r'class="fastest" data-sort="2\.0">2 <small>2\.5</small>', page)
    assert ">2026-11-30T00:53:20Z<" in page  # measured_at 1.796e9 as ISO 8601 UTC
    assert "1.796e+09" not in page and not re.search(r">\d\.\d+e[+-]\d", page)
    assert ">115<" in page and ">115.0<" not in page
    assert ">100.0 %<" in page
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None and f"script-src 'sha256-{SCRIPT_HASH}'" in csp.group(1)
    assert "unsafe-inline" not in csp.group(1).split("script-src")[1].split(";")[0]
    assert page.count("<script>") == 1 and f"<script>{SORT_SCRIPT}</script>" in page


def test_units_rules() -> None:
    assert units.iso_utc(1.796e9) == "2026-11-30T00:53:20Z"
    assert units.integer(115.0) == "115" and units.integer(None) == "n/a"
    assert units.percent(0.05656) == "5.7 %"
    assert units.si(3.21e9, "FLOP") == "3.21 GFLOP" and units.si(2.5e6, "B") == "2.5 MB"
    assert units.si(0.0, "FLOP") == "0 FLOP" and units.si(float("nan")) == "n/a"
    assert units.ms(0.000123) == "0.000123" and units.ms(1234.5) == "1234"
    assert [units.tick(v) for v in (0.5, 2.0, 1000.0, 1e7)] == ["0.5", "2", "1000", "10M"]
    assert units.cell("measured_at", 1.796e9) == "2026-11-30T00:53:20Z"
    assert units.cell("nodes", 7.0) == "7" and units.cell("time_share", 0.25) == "25.0 %"


def test_roofline_draws_every_measured_roof() -> None:
    """DRAM always; L1/L2/L3 when part R's calibration columns hold numbers (None skipped)."""
    _, _, calib = frames()
    models = pd.DataFrame([{"agent_id": "pi-a", "threads": 1}])
    assert roofs_of(calib, models) == {"DRAM": 8.0}
    wide = calib.assign(l1_bandwidth_gbs=90.0, l2_bandwidth_gbs=40.0, l3_bandwidth_gbs=None)
    assert roofs_of(wide, models) == {"L1": 90.0, "L2": 40.0, "DRAM": 8.0}
    from collector.report import figures

    report = build_report_from_frames(*frames())
    mine = report.models[report.models["device"] == "pi-a"]
    fig, placed = figures.roofline_plot("pi-a", mine, report.op_types, roofs_of(wide, models))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:3] == ["L1 roof 90 GB/s", "L2 roof 40 GB/s", "DRAM roof 8 GB/s"]
    assert placed.boxes
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks and not any("times" in t or "^" in t or "×" in t for t in ticks)


def test_latency_of_nothing() -> None:
    assert latency_table(pd.DataFrame(columns=["model_name"])).empty
    report = build_report_from_frames(None)
    assert report.fastest == {} and report.latency.empty
    assert "latency: no ok results" in render_text(report)


def test_ms_heatmap_marks_invalid_cells(report: Report) -> None:
    from collector.report import figures

    fig = figures.latency_heatmap(report.latency)
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert "0.5*" in cells and "2" in cells and "(* invalid" in fig.axes[0].get_title()


def test_other_parts_columns_are_rendered_when_present(report: Report) -> None:
    """Part O's tables["model_ops"] and part R's bound_note show in text and HTML when the
    frames have them, and are simply absent when they do not."""
    ops = pd.DataFrame([
        {"device": "pi-a", "model": "mid", "op_type": op, "nodes": 3.0, "time_share": t,
         "flop_share": f, "excess_share": t - f, "time_us": 40.0, "flops": 2e6,
         "bytes": 3e5, "gflops": 1.5, "bound": "memory (DRAM)"}
        for op, t, f in (("ConvTranspose", 0.18, 0.01), ("Add", 0.09, 0.003))
    ])  # fmt: skip
    models = report.models.assign(bound_note="cache-resident: 1.8 MB working set < 2 MB L2")

    class WithOps(Report):
        @property
        def tables(self) -> dict[str, pd.DataFrame]:
            return {**super().tables, "model_ops": ops}

    fields = {k: getattr(report, k) for k in report.__dataclass_fields__}
    wider = WithOps(**{**fields, "models": models})
    text = render_text(wider)
    assert "== operators of mid on pi-a, by excess time ==" in text
    assert re.search(r"ConvTranspose\s+3\s+18\.0 %\s+1\.0 %\s+17\.0 %\s+300 kB", text)
    assert "cache-resident: 1.8 MB working set < 2 MB L2" in text
    page = render_html(wider)
    assert "mid: operators by excess time" in page and ">17.0 %<" in page
    assert "cache-resident: 1.8 MB working set &lt; 2 MB L2" in page
    bare = Report(**{
        **fields, "model_ops": pd.DataFrame(),
        "models": report.models.drop(columns=["bound_note"], errors="ignore"),
    })  # fmt: skip
    assert "operators of" not in render_text(bare) and "bound_note" not in render_html(bare)
