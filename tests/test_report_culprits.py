"""The per-model operator breakdown and each flagged finding's culprits, on hand-made frames
whose shares are known in advance."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from collector.report import build_report_from_frames
from collector.report.culprits import NO_PROFILE, percent, phrases
from collector.report.report import Report


def result(rid: str, model: str, flops: float, p50: float) -> dict[str, Any]:
    """One ok, valid result on rpi5 at one thread."""
    return {
        "result_id": rid, "model_name": model, "agent_id": "rpi5", "hostname": "rpi5-host",
        "board": "Pi 5", "threads": 1, "provider": "CPUExecutionProvider", "opt_level": "all",
        "p50_ms": p50, "flops": flops, "bytes": flops / 4, "status": "ok", "valid": True,
    }  # fmt: skip


def op(rid: str, name: str, op_type: str, us: float, flops: float, nbytes: float = 1e6) -> dict:
    """One profiled node as the per-op join stores it."""
    return {
        "result_id": rid, "node_name": name, "op_type": op_type, "provider": "CPU",
        "kernel_time_us": us, "flops": flops, "macs": None, "bytes": nbytes, "fused_from": "",
    }  # fmt: skip


# Five models on a power law p50 = 2e-6 * flops^0.8 except "det" (4x slower) and "seg"
# (4x slower, never profiled), so both are flagged and the rest fit.
FLOPS = {"a": 1e6, "b": 1e7, "det": 1e8, "c": 1e9, "seg": 3e8, "d": 3e9}
SLOW = {"det": 4.0, "seg": 4.0}
CALIBRATION = [{"agent_id": "rpi5", "threads": 1, "peak_gflops": 1000.0, "bandwidth_gbs": 10.0}]


def det_ops() -> list[dict]:
    """det's 1000 µs: ConvTranspose 18 % of time for 1 % of FLOPs, Add 9 % for 0.3 %,
    ReorderOutput 4 % for 0, two Convs the rest (69 % for 98.7 %)."""
    return [
        op("r-det", "up", "ConvTranspose", 180.0, 1e6),
        op("r-det", "add1", "Add", 50.0, 1e5, 4e5),
        op("r-det", "add2", "Add", 40.0, 2e5, 4e5),
        op("r-det", "reorder", "com.microsoft.nchwc.ReorderOutput", 40.0, 0.0, 4e6),
        op("r-det", "conv1", "Conv", 400.0, 5e7, 1e5),
        op("r-det", "conv2", "Conv", 290.0, 4.87e7, 1e5),
    ]


def a_ops() -> list[dict]:
    """a, not flagged: shares of its own time and FLOPs, not of det's."""
    return [op("r-a", "g", "Gemm", 30.0, 9e5), op("r-a", "r", "Relu", 10.0, 1e5)]


@pytest.fixture(scope="module")
def report() -> Report:
    rows = [result(f"r-{m}", m, f, 2e-6 * f**0.8 * SLOW.get(m, 1.0)) for m, f in FLOPS.items()]
    return build_report_from_frames(
        pd.DataFrame(rows), pd.DataFrame(det_ops() + a_ops()), pd.DataFrame(CALIBRATION)
    )


def test_every_flagged_model_and_only_those_get_culprits(report: Report) -> None:
    flagged = report.models[report.models["flag"] != ""].set_index("model")
    assert flagged.loc["det", "flag"] == "slower" and flagged.loc["seg", "flag"] == "slower"
    assert set(report.culprits) == {("rpi5", m) for m in flagged.index}
    assert ("rpi5", "a") not in report.culprits


def test_each_models_op_types_rank_by_excess_with_its_own_shares(report: Report) -> None:
    ops = report.tables["model_ops"]
    assert set(zip(ops["device"], ops["model"], strict=True)) == {("rpi5", "det"), ("rpi5", "a")}
    det = ops[ops["model"] == "det"]
    assert list(det["op_type"]) == [
        "ConvTranspose", "Add", "com.microsoft.nchwc.ReorderOutput", "Conv"
    ]  # fmt: skip
    assert det["time_share"].sum() == pytest.approx(1.0)
    assert det["flop_share"].sum() == pytest.approx(1.0)
    by_op = det.set_index("op_type")
    assert by_op.loc["Add", "nodes"] == 2 and by_op.loc["Conv", "nodes"] == 2
    assert by_op.loc["Add", "time_us"] == pytest.approx(90.0)
    assert by_op.loc["ConvTranspose", "excess_share"] == pytest.approx(0.18 - 0.01)
    assert by_op.loc["Conv", "gflops"] == pytest.approx(9.87e7 / 690e3)
    assert by_op.loc["Conv", "bytes"] == pytest.approx(2e5)
    a = ops[ops["model"] == "a"].set_index("op_type")
    assert a.loc["Gemm", "time_share"] == pytest.approx(0.75)
    assert a.loc["Relu", "flop_share"] == pytest.approx(0.1)


def test_every_op_row_is_placed_on_the_devices_roofline(report: Report) -> None:
    det = report.model_ops[report.model_ops["model"] == "det"].set_index("op_type")
    # Conv: 9.87e7 FLOP over 2e5 B = 493 FLOP/B, right of the ridge (1000 / 10 = 100 FLOP/B),
    # at 143 GFLOP/s, under the 1000 GFLOP/s peak
    assert det.loc["Conv", "bound"] == "compute"
    # Add: 3e5 FLOP over 8e5 B = 0.375 FLOP/B, moving 8.9 GB/s under the 10 GB/s roof: memory
    assert str(det.loc["Add", "bound"]).startswith("memory")
    assert det.loc["com.microsoft.nchwc.ReorderOutput", "bound"] == "data movement"


def test_a_flagged_finding_names_its_top_three_culprits(report: Report) -> None:
    assert report.culprits[("rpi5", "det")] == [
        "ConvTranspose 18 % of time for 1 % of FLOPs",
        "Add 9 % for 0.3 %",
        "ReorderOutput 4 % for 0",
    ]
    det = next(f for f in report.findings() if f.startswith("det "))
    assert det.endswith(
        "slower than its FLOPs predict on rpi5: ConvTranspose 18 % of time for 1 % of FLOPs, "
        "Add 9 % for 0.3 %, ReorderOutput 4 % for 0"
    )


def test_a_flagged_model_without_a_profile_says_so(report: Report) -> None:
    assert report.culprits[("rpi5", "seg")] == [NO_PROFILE]
    seg = next(f for f in report.findings() if f.startswith("seg "))
    assert seg.endswith(f"on rpi5: {NO_PROFILE}")
    assert "per-op pass" in NO_PROFILE


def test_json_puts_culprits_on_flagged_rows_and_keeps_findings_strings(report: Report) -> None:
    doc = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert all(isinstance(f, str) for f in doc["findings"])
    rows = {r["model"]: r for r in doc["tables"]["models"]}
    assert rows["det"]["culprits"][0] == "ConvTranspose 18 % of time for 1 % of FLOPs"
    assert rows["seg"]["culprits"] == [NO_PROFILE]
    assert rows["a"]["culprits"] is None  # not flagged
    listed = {(c["device"], c["model"]): c["culprits"] for c in doc["culprits"]}
    assert listed == {k: v for k, v in report.culprits.items()}
    ops = doc["tables"]["model_ops"]
    assert {"device", "model", "op_type", "excess_share", "bytes", "bound"} <= set(ops[0])


def test_an_op_type_with_unknown_flops_ranks_last_and_is_never_a_culprit() -> None:
    rows = [result(f"r-{m}", m, f, 2e-6 * f**0.8 * SLOW.get(m, 1.0)) for m, f in FLOPS.items()]
    ops = [*det_ops(), {**op("r-det", "mystery", "Foo", 500.0, 0.0), "flops": None}]
    report = build_report_from_frames(pd.DataFrame(rows), pd.DataFrame(ops))
    det = report.model_ops[report.model_ops["model"] == "det"]
    assert det["op_type"].iloc[-1] == "Foo" and pd.isna(det["excess_share"].iloc[-1])
    assert not any(c.startswith("Foo") for c in report.culprits[("rpi5", "det")])
    placed = det[det["op_type"] != "com.microsoft.nchwc.ReorderOutput"]
    assert placed["bound"].isna().all()  # no calibration: no roofline, never a guess


def test_a_zero_flop_op_leading_the_list_reads_as_a_share() -> None:
    rows = pd.DataFrame(
        [{"op_type": "com.microsoft.nchwc.ReorderInput", "time_share": 0.3, "flop_share": 0.0,
          "excess_share": 0.3},
         {"op_type": "com.microsoft.nchwc.Conv (depthwise)", "time_share": 0.5,
          "flop_share": 0.3, "excess_share": 0.2},
         {"op_type": "Gemm", "time_share": 0.2, "flop_share": 0.7, "excess_share": -0.5}]
    )  # fmt: skip
    assert phrases(rows) == [
        "ReorderInput 30 % of time for 0 % of FLOPs", "Conv (depthwise) 50 % for 30 %"
    ]  # fmt: skip


def test_percentages_read_as_a_person_writes_them() -> None:
    assert [percent(v) for v in (0.18, 0.0103, 0.003, 0.0, None, 0.00042)] == [
        "18 %", "1 %", "0.3 %", "0", "?", "0.04 %"
    ]  # fmt: skip
