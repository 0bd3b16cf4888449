"""The report's analysis on hand-made frames whose answers are known in advance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from collector.report import build_report_from_frames
from collector.report.analysis import attach_roofline, model_table, roof_warnings
from collector.report.calibration import calibration_frame
from collector.report.compare import cross_device_table, pick_reference
from collector.report.fits import fit_devices, flag
from collector.report.frames import device_keys, results_frame
from collector.report.ops import op_label
from collector.report.roofline import achieved_gflops, efficiency, place, ridge
from collector.report.stats import (
    kendall_tau_b,
    pearson,
    power_law_fit,
    rankdata,
    residual_factor,
    spearman,
)


def result(rid: str, model: str, agent: str, flops: float | None, p50: float, **kw: Any) -> dict:
    """One ok result row as collector.export.rows would give it."""
    row = {
        "result_id": rid,
        "model_name": model,
        "agent_id": agent,
        "hostname": f"{agent}-host",
        "board": "TestBoard",
        "threads": 1,
        "provider": "CPUExecutionProvider",
        "opt_level": "all",
        "p50_ms": p50,
        "flops": flops,
        "bytes": None if flops is None else flops / 4,
        "status": "ok",
        "valid": True,
    }
    return {**row, **kw}


def power_law_results(agent: str = "rpi5", b: float = 0.8, scale: float = 2e-6) -> list[dict]:
    """Four models whose p50 is exactly scale * flops**b."""
    return [
        result(f"{agent}-{i}", f"m{i}", agent, f, scale * f**b)
        for i, f in enumerate([1e6, 1e7, 1e8, 1e9])
    ]


# --- rank correlations ---------------------------------------------------------------------


def test_rankdata_gives_ties_their_average_rank() -> None:
    assert rankdata([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert rankdata([3, 3, 3]).tolist() == [2.0, 2.0, 2.0]
    assert rankdata([5, 1, 4]).tolist() == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("correlate", [spearman, kendall_tau_b])
def test_perfect_monotone_relations_give_plus_and_minus_one(correlate: Any) -> None:
    x = [1.0, 2.0, 3.0, 10.0, 100.0]
    assert correlate(x, [v**3 for v in x]) == pytest.approx(1.0)
    assert correlate(x, [-math.log(v) for v in x]) == pytest.approx(-1.0)


def test_spearman_with_ties_matches_the_hand_computation() -> None:
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]: r = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_kendall_tau_b_with_ties_matches_the_hand_computation() -> None:
    # 6 pairs: 5 concordant, 1 tied in x only -> 5 / sqrt(5 * 6)
    assert kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    # scipy.stats.kendalltau's documented example (ties on both sides)
    tau = kendall_tau_b([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])
    assert tau == pytest.approx(-0.47140452079103173)


def test_correlations_are_none_when_undefined() -> None:
    assert spearman([1.0], [2.0]) is None
    assert kendall_tau_b([1.0], [2.0]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1, 2], [1, 2, 3]) is None


# --- power-law fit -------------------------------------------------------------------------


def test_fit_on_exact_power_law_recovers_exponent_and_unit_residuals() -> None:
    flops = np.array([1e6, 3e7, 1e8, 5e9])
    latency = 2e-6 * flops**0.8
    fit = power_law_fit(flops, latency)
    assert fit is not None
    assert fit.b == pytest.approx(0.8, abs=1e-12)
    assert fit.a == pytest.approx(math.log(2e-6), abs=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    for f, t in zip(flops, latency, strict=True):
        assert residual_factor(fit, f, t) == pytest.approx(1.0)


def test_fit_is_refused_rather_than_fabricated() -> None:
    assert power_law_fit([1e6, 1e7], [1.0, 2.0]) is None  # two points
    assert power_law_fit([1e6, 1e6, 1e6], [1.0, 2.0, 3.0]) is None  # no FLOPs spread
    assert power_law_fit([0.0, 1e6, 1e7], [1.0, 2.0, 3.0]) is None  # log of zero
    constant = power_law_fit([1e6, 1e7, 1e8], [2.0, 2.0, 2.0])
    assert constant is not None and constant.b == pytest.approx(0.0) and constant.r2 is None


def test_flag_thresholds_both_ways() -> None:
    assert flag(1.5) == "slower" and flag(3.1) == "slower"
    assert flag(1 / 1.5) == "faster" and flag(0.2) == "faster"
    assert flag(1.2) == "" and flag(None) == "" and flag(float("nan")) == ""
    assert flag(1.2, threshold=1.1) == "slower"


# --- roofline ------------------------------------------------------------------------------


def test_roofline_memory_side_of_the_ridge() -> None:
    # peak 100 GFLOP/s, 10 GB/s -> ridge 10 FLOP/B; intensity 2 -> roof 20 GFLOP/s
    point = place(flops=2e9, nbytes=1e9, time_ms=400.0, peak_gflops=100, bandwidth_gbs=10)
    assert point is not None
    assert point.bound == "memory (DRAM)"
    assert point.intensity == pytest.approx(2.0)
    assert point.attainable_gflops == pytest.approx(20.0)
    assert point.attainable_ms == pytest.approx(100.0)
    assert point.slowdown == pytest.approx(4.0)


def test_roofline_compute_side_and_at_the_ridge() -> None:
    point = place(flops=5e9, nbytes=1e8, time_ms=100.0, peak_gflops=100, bandwidth_gbs=10)
    assert point is not None and point.bound == "compute"
    assert point.attainable_gflops == pytest.approx(100.0)
    assert point.attainable_ms == pytest.approx(50.0) and point.slowdown == pytest.approx(2.0)
    at_ridge = place(flops=1e9, nbytes=1e8, time_ms=10.0, peak_gflops=100, bandwidth_gbs=10)
    assert at_ridge is not None and at_ridge.bound == "compute"
    assert ridge(100, 10) == pytest.approx(10.0)


def test_roofline_and_efficiency_are_none_without_their_inputs() -> None:
    assert place(2e9, 1e9, 400.0, None, 10) is None
    assert place(None, 1e9, 400.0, 100, 10) is None
    assert place(2e9, 0, 400.0, 100, 10) is None
    assert place(2e9, 1e9, float("nan"), 100, 10) is None
    assert achieved_gflops(2e9, 100.0) == pytest.approx(20.0)
    assert achieved_gflops(None, 100.0) is None and achieved_gflops(2e9, 0) is None
    assert efficiency(20.0, 100.0) == pytest.approx(0.2)
    assert efficiency(20.0, None) is None and efficiency(None, 100.0) is None


# --- per result and per device -------------------------------------------------------------


def test_repeats_collapse_to_their_median_and_missing_flops_stay_missing() -> None:
    rows = [result("a", "m", "d", 1e9, p) for p in (10.0, 30.0, 20.0)]
    rows.append(result("b", "uncounted", "d", None, 5.0, flops_error="unknown op Foo"))
    models, missing = model_table(results_frame(rows))
    m = models.set_index("model")
    assert m.loc["m", "p50_ms"] == 20.0 and m.loc["m", "results"] == 3
    assert m.loc["m", "achieved_gflops"] == pytest.approx(1e9 / 20e6)
    assert pd.isna(m.loc["uncounted", "flops"])  # NaN in the frame, null in JSON
    assert pd.isna(m.loc["uncounted", "achieved_gflops"])
    assert missing == ["uncounted on d: no FLOPs count (unknown op Foo)"]


def test_agent_with_two_settings_becomes_two_devices() -> None:
    rows = [result("a", "m", "pi", 1e9, 1.0), result("b", "m", "pi", 1e9, 0.4, threads=4)]
    rows.append(result("c", "m", "x86", 1e9, 0.1))
    keys = device_keys(results_frame(rows)).tolist()
    assert keys == ["pi/t1/CPU/all", "pi/t4/CPU/all", "x86"]


def test_exact_power_law_device_has_unit_residuals_and_no_flags() -> None:
    models, _ = model_table(results_frame(power_law_results()))
    out, fits, missing = fit_devices(models)
    assert missing == []
    row = fits.iloc[0]
    assert row["fit_b"] == pytest.approx(0.8) and row["r2"] == pytest.approx(1.0)
    assert row["spearman"] == pytest.approx(1.0) and row["kendall_tau_b"] == pytest.approx(1.0)
    assert [pytest.approx(1.0)] * 4 == out["residual"].tolist()
    assert (out["flag"] == "").all() and row["flagged"] == 0


def test_a_slow_model_is_flagged_with_a_sentence() -> None:
    rows = power_law_results()
    rows[2]["p50_ms"] *= 4.0
    report = build_report_from_frames(pd.DataFrame(rows))
    m = report.models.set_index("model")
    assert m.loc["m2", "flag"] == "slower" and m.loc["m2", "residual"] > 1.5
    assert report.findings()[0].startswith("m2 is ")
    assert report.findings()[0].endswith(
        "slower than its FLOPs predict on rpi5: no op profile: run with the per-op pass "
        "(campaign setting profile_ops = true)"
    )


def test_fewer_than_three_models_say_the_fit_is_not_possible() -> None:
    rows = [*power_law_results()[:2], result("x", "nof", "rpi5", None, 1.0)]
    report = build_report_from_frames(pd.DataFrame(rows))
    fit = report.fits.iloc[0]
    assert fit["fit_b"] is None and fit["spearman"] is None
    assert "fit not possible: 2 model(s)" in fit["note"]
    assert any("fit not possible" in m for m in report.missing)
    assert report.models["residual"].isna().all()


def test_calibration_joins_by_agent_and_threads_latest_first() -> None:
    calib = calibration_frame(
        [
            {"agent_id": "rpi5", "threads": 1, "peak_gflops": 1.0, "bandwidth_gbs": 1.0,
             "measured_at": 1.0},
            {"agent_id": "rpi5", "threads": 1, "peak_gflops": 100.0, "bandwidth_gbs": 10.0,
             "measured_at": 2.0},
            {"agent_id": "rpi5", "threads": 4, "peak_gflops": 300.0, "bandwidth_gbs": 12.0,
             "measured_at": 3.0},
        ]
    )  # fmt: skip
    assert len(calib) == 2
    rows = [result("a", "m", "rpi5", 2e9, 400.0), result("b", "m", "jetson", 2e9, 10.0)]
    rows[0]["bytes"] = 1e9
    models, _ = model_table(results_frame(rows))
    out, missing = attach_roofline(models, calib)
    pi = out.set_index("device").loc["rpi5"]
    assert pi["peak_gflops"] == 100.0 and pi["bound"] == "memory (DRAM)"
    assert pi["efficiency"] == pytest.approx(5.0 / 100.0)
    assert pi["slowdown"] == pytest.approx(4.0)
    jet = out.set_index("device").loc["jetson"]
    assert jet["efficiency"] is None and jet["bound"] is None
    assert missing == [
        "no calibration (peak, bandwidth) for jetson (agent jetson, 1 threads): "
        "no efficiency or roofline"
    ]


def test_empty_campaign_reports_what_is_missing() -> None:
    report = build_report_from_frames(pd.DataFrame(), campaign="nothing")
    assert report.models.empty and report.fits.empty and report.op_types.empty
    assert "campaign 'nothing' has no ok results" in report.missing
    assert report.findings() == []


def test_error_results_are_counted_not_analysed() -> None:
    rows = [*power_law_results(), {"result_id": "e", "agent_id": "rpi5", "status": "error"}]
    report = build_report_from_frames(pd.DataFrame(rows))
    assert len(report.models) == 4
    assert "1 result(s) ended in error: no latency" in report.missing


def test_devices_filter_by_agent_or_hostname() -> None:
    rows = power_law_results("rpi5") + power_law_results("jetson")
    assert set(build_report_from_frames(rows, devices=["rpi5"]).models["device"]) == {"rpi5"}
    by_host = build_report_from_frames(rows, devices=["jetson-host"])
    assert set(by_host.models["device"]) == {"jetson"}
    none = build_report_from_frames(rows, devices=["nowhere"])
    assert "the database has no ok results on those devices" in none.missing


# --- op types ------------------------------------------------------------------------------


def op(rid: str, name: str, op_type: str, us: float, flops: float | None, **kw: Any) -> dict:
    """One profiled node, as the agent's profiler pass would store it (1 MB moved)."""
    row: dict[str, Any] = {"result_id": rid, "node_name": name, "op_type": op_type}
    row["provider"] = "CPU"
    row.update(kernel_time_us=us, flops=flops, macs=None, bytes=1e6, fused_from="")
    return {**row, **kw}


def op_report(ops: list[dict], results: list[dict] | None = None) -> Any:
    """The report of one model "net" (1 GFLOP) on rpi5 with these op times."""
    results = results or [result("r1", "net", "rpi5", 1e9, 1.0)]
    return build_report_from_frames(pd.DataFrame(results), pd.DataFrame(ops))


def test_op_shares_sum_to_one_and_rank_by_excess_time() -> None:
    ops = [
        op("r1", "conv1", "Conv", 200.0, 8e8, fused_from="bn1;relu1"),
        op("r1", "dw1", "Conv", 500.0, 1e8, group=32, channels=32),
        op("r1", "add1", "Add", 300.0, 1e8),
    ]
    table = op_report(ops).op_types.set_index("op_type")
    assert table["time_share"].sum() == pytest.approx(1.0)
    assert table["flop_share"].sum() == pytest.approx(1.0)
    assert table.loc["Conv (depthwise)", "time_share"] == pytest.approx(0.5)
    assert table.loc["Conv (depthwise)", "flop_share"] == pytest.approx(0.1)
    assert table.loc["Conv (depthwise)", "rank"] == 1
    assert table.loc["Conv", "excess_share"] == pytest.approx(0.2 - 0.8)
    assert table.loc["Conv", "gflops"] == pytest.approx(8e8 / 200e3)
    assert table.loc["Conv", "fused_nodes"] == 2


def test_repeats_average_instead_of_adding_up() -> None:
    results = [result("r1", "net", "rpi5", 1e9, 1.0), result("r2", "net", "rpi5", 1e9, 1.0)]
    ops = [op("r1", "c", "Conv", 100.0, 1e9), op("r2", "c", "Conv", 300.0, 1e9)]
    table = op_report(ops, results).op_types
    assert table.loc[0, "time_us"] == pytest.approx(200.0)
    assert table.loc[0, "flops"] == pytest.approx(1e9) and table.loc[0, "nodes"] == 1


def test_depthwise_needs_a_hint() -> None:
    base = {"op_type": "Conv"}
    assert op_label(pd.Series(base)) == "Conv"
    assert op_label(pd.Series({**base, "depthwise": True})) == "Conv (depthwise)"
    assert op_label(pd.Series({**base, "depthwise": False, "group": 8, "channels": 8})) == "Conv"
    assert op_label(pd.Series({**base, "group": 8, "channels": 8})) == "Conv (depthwise)"
    assert op_label(pd.Series({**base, "group": 2, "channels": 8})) == "Conv"
    assert op_label(pd.Series({"op_type": "FusedConv", "depthwise": True})).endswith("(depthwise)")
    assert op_label(pd.Series({"op_type": "Add", "depthwise": True})) == "Add"


def test_op_times_that_do_not_match_the_graph_are_reported() -> None:
    ops = [
        op("r1", "conv1", "Conv", 200.0, 6e8),
        op("r1", "mystery", "Foo", 100.0, None),
        op("gone", "x", "Add", 1.0, 1.0),
    ]
    report = op_report(ops)
    table = report.op_types.set_index("op_type")
    assert math.isnan(table.loc["Foo", "flop_share"])
    assert table.loc["Conv", "flop_share"] == pytest.approx(1.0)
    text = " | ".join(report.missing)
    assert "op times of 1 result(s) match no ok result" in text
    assert "1 profiled node(s) match no counted node" in text
    ops = [op("r1", "conv1", "Conv", 200.0, 6e8)]
    wanted = "op FLOPs sum to 600 MFLOP, the model counts 1 GFLOP"
    assert any(wanted in m for m in op_report(ops).missing)


def test_batchnorm_folded_into_weights_is_not_a_mismatch() -> None:
    folded = [op("r1", "conv1", "FusedConv", 200.0, 9e8, fused_from="bn1", folded_flops=1e8)]
    report = op_report(folded)
    assert not any("op FLOPs sum to" in m for m in report.missing)
    assert any("100 MFLOP of its counted FLOPs are never run" in n for n in report.notes)
    short = [op("r1", "conv1", "FusedConv", 200.0, 6e8, fused_from="bn1", folded_flops=1e8)]
    assert any("600 MFLOP (+100 MFLOP folded into weights)" in m for m in op_report(short).missing)


def test_without_op_times_the_report_says_so() -> None:
    report = build_report_from_frames(pd.DataFrame(power_law_results()))
    assert "no per-op times: the profiling pass was not run" in report.missing
    assert report.op_types.empty


@pytest.mark.parametrize("fused", ["bn;relu", ["bn", "relu"]])
def test_fusion_is_noted(fused: Any) -> None:
    report = op_report([op("r1", "conv1", "Conv", 200.0, 1e9, fused_from=fused)])
    assert report.op_types.loc[0, "fused_nodes"] == 2
    assert report.notes == [
        "rpi5: ORT fused 2 original node(s) into 1 node(s) (Conv); their FLOPs and time are "
        "counted on the fused node"
    ]


# --- across devices ------------------------------------------------------------------------


def cross_models(calibrated: bool) -> pd.DataFrame:
    rows = [result("a", "m", "big", 1e9, 10.0), result("b", "m", "small", 1e9, 80.0)]
    rows.append(result("c", "other", "big", 1e8, 1.0))
    calib = [{"agent_id": "big", "threads": 1, "peak_gflops": 100.0, "bandwidth_gbs": 20.0}]
    if calibrated:
        calib.append({"agent_id": "small", "threads": 1, "peak_gflops": 25.0,
                      "bandwidth_gbs": 5.0})  # fmt: skip
    models, _ = model_table(results_frame(rows))
    return attach_roofline(models, calibration_frame(calib))[0]


def test_latency_ratio_against_peak_ratio() -> None:
    table, missing = cross_device_table(cross_models(calibrated=True))
    assert missing == [] and len(table) == 1
    row = table.iloc[0]
    assert (row["device"], row["reference"]) == ("small", "big")
    assert row["latency_ratio"] == pytest.approx(8.0)
    assert row["peak_ratio"] == pytest.approx(4.0)
    assert row["gap"] == pytest.approx(2.0)
    assert row["roofline_ratio"] == pytest.approx(4.0)  # same intensity, both roofs 4x apart


def test_cross_device_without_calibration_says_missing() -> None:
    table, missing = cross_device_table(cross_models(calibrated=False))
    row = table.iloc[0]
    assert row["latency_ratio"] == pytest.approx(8.0)
    assert row["peak_ratio"] is None and row["gap"] is None
    assert missing == [
        "cross-device: no calibrated peak for small: latency ratios shown without peak ratios"
    ]


def test_reference_is_preferred_device_else_best_covered() -> None:
    models = cross_models(calibrated=True)
    assert pick_reference(models) == "big"
    assert pick_reference(models, ["small"]) == "small"
    assert pick_reference(models.iloc[0:0]) is None


def test_only_a_point_above_every_roof_is_flagged_in_the_slowdown_direction() -> None:
    models = pd.DataFrame(
        {"model": ["a", "b", "c"], "device": ["pi"] * 3, "slowdown": [0.5, 1.0, 1.5],
         "bound": ["above every roof", "memory (L2)", "memory (DRAM)"],
         "bound_note": ["calibration probably low", "cache-resident", None]}
    )  # fmt: skip
    warnings = roof_warnings(models)
    assert len(warnings) == 1 and warnings[0].startswith("a on pi: slowdown 0.50 (< 1")
    assert "faster than its roofline" not in warnings[0] and "×" not in warnings[0]
