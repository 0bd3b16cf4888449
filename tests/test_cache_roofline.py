"""The cache-aware roofline: cache sizes from committed sysfs trees, per-level bandwidths from
a real (short) calibration on this machine, and the classification rules: a point above the
DRAM roof is judged against the cache its working set fits, nothing is labelled bound by a
roof it beats, and slowdown >= 1 always means slower than the roof allows.

Only structure and sanity are asserted for the measured figures, never how fast this box is.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from agent.board import device
from agent.engine import calibrate as cal
from agent.probes.caches import UNKNOWN, cpu_count, data_levels, read_caches, size_bytes
from collector.report.analysis import attach_roofline, roof_warnings
from collector.report.calibration import calibration_frame
from collector.report.roofs import ABOVE, Roof, classify, judge

SYSFS = Path(__file__).parent / "data" / "sysfs"
KIB, MIB = 1 << 10, 1 << 20
# peak 100 GFLOP/s; DRAM 10, L3 40, L2 80, L1 160 GB/s; L1 32 KiB, L2 1 MiB, L3 8 MiB
CAL = {"agent_id": "pi", "threads": 1, "peak_gflops": 100.0, "bandwidth_gbs": 10.0,
       "l1_bandwidth_gbs": 160.0, "l2_bandwidth_gbs": 80.0, "l3_bandwidth_gbs": 40.0,
       "l1_bytes": 32 * KIB, "l2_bytes": MIB, "l3_bytes": 8 * MIB}  # fmt: skip
CACHES = [Roof("L1", 160.0, 32 * KIB), Roof("L2", 80.0, MIB), Roof("L3", 40.0, 8 * MIB)]


@pytest.mark.parametrize(
    ("tree", "levels"),
    [
        ("synthetic-x86", {1: 32 * KIB, 2: MIB, 3: 32 * MIB}),
        ("synthetic-arm", {1: 64 * KIB, 2: 512 * KIB, 3: 2 * MIB}),  # a Pi 5
        ("synthetic-pi4-caches", {1: 32 * KIB, 2: MIB}),  # no L3
        ("none", {}),  # no cache folder: no roofs, never made-up sizes
    ],
)
def test_cache_sizes_come_from_the_tree_and_instruction_caches_are_left_out(
    tree: str, levels: dict[int, int]
) -> None:
    caches = read_caches(SYSFS / tree)
    assert data_levels(caches) == levels
    assert all(c["size_bytes"] > 0 for c in caches)
    descriptor = device.describe(SYSFS / tree)
    assert [descriptor[f"l{n}_bytes"] for n in (1, 2, 3)] == [levels.get(n) for n in (1, 2, 3)]


def test_size_and_cpu_list_parsing() -> None:
    assert size_bytes("32K") == 32 * KIB and size_bytes("2M") == 2 * MIB
    assert size_bytes("512") == 512 and size_bytes("") is None and size_bytes("big") is None
    assert cpu_count("0-3,6") == 5 and cpu_count("0") == 1 and cpu_count("x") is None
    pi4 = read_caches(SYSFS / "synthetic-pi4-caches")
    assert [c["shared_cpus"] for c in pi4 if c["level"] == 2] == [4]


def test_calibration_measures_each_level_of_this_machine() -> None:
    doc = cal.calibrate(1, seconds=0.2, matmul_n=64, stream_bytes=1 << 20, cache_seconds=0.3)
    levels = data_levels(read_caches("/"))
    for n in (1, 2, 3):
        assert doc[f"l{n}_bytes"] == levels.get(n)
        figure = doc[f"l{n}_bandwidth_gbs"]
        if n not in levels:
            assert figure is None
            continue
        assert len(doc[f"l{n}_bandwidth_gbs_runs"]) == doc["rounds"]
        # a figure may be None when noise hid it on a loaded box; a figure is sane when given
        assert figure is None or (math.isfinite(figure) and 0.1 < figure < 1e5)
    assert doc["cache_note"] == (None if levels else UNKNOWN)
    assert "valid" in doc and isinstance(doc["caches"], list)


def test_a_tree_without_caches_calibrates_the_dram_roof_only() -> None:
    doc = cal.calibrate(1, seconds=0.1, matmul_n=32, stream_bytes=1 << 16, root=str(SYSFS / "none"))
    assert doc["cache_note"] == UNKNOWN and doc["caches"] == []
    assert all(doc[f"l{n}_bandwidth_gbs"] is None for n in (1, 2, 3))


def test_above_the_dram_roof_with_a_working_set_in_l2_is_judged_against_l2() -> None:
    # intensity 0.5: DRAM roof 5, L2 roof 40 GFLOP/s; achieved 20 beats DRAM, not L2
    judged = judge(0.5, 20.0, 0.9 * MIB, 100.0, 10.0, CACHES)
    assert judged is not None and judged.bound == "memory (L2)" and judged.roof_level == "L2"
    assert judged.note == "cache-resident: 922 KiB working set < 1 MiB L2"
    assert judged.slowdown == pytest.approx(2.0)  # 40 allowed / 20 achieved: slower
    in_l3 = judge(0.5, 20.0, 1.8 * MIB, 100.0, 10.0, CACHES)  # too big for L2: the L3 roof
    assert in_l3 is not None and in_l3.bound == "memory (L3)" and in_l3.slowdown >= 1
    assert in_l3.note == "cache-resident: 1.8 MiB working set < 8 MiB L3"


def test_a_point_that_beats_its_level_climbs_to_a_closer_cache_never_down() -> None:
    # fits L2 (roof 40) but achieved 60: judged against L1 (roof 80), never DRAM or L2
    judged = judge(0.5, 60.0, 0.5 * MIB, 100.0, 10.0, CACHES)
    assert judged is not None and judged.bound == "memory (L1)" and judged.slowdown >= 1


def test_a_point_beating_every_roof_says_so_and_blames_the_calibration() -> None:
    judged = judge(0.5, 95.0, 0.5 * MIB, 100.0, 10.0, CACHES)
    assert judged is not None and judged.bound == ABOVE and judged.slowdown < 1
    assert "calibration is probably low" in str(judged.note)
    compute_side = judge(50.0, 120.0, 0.5 * MIB, 100.0, 10.0, CACHES)  # beats the peak
    assert compute_side is not None and compute_side.bound == ABOVE
    no_caches = judge(0.5, 20.0, 0.5 * MIB, 100.0, 10.0, [])
    assert no_caches is not None and no_caches.bound == ABOVE
    assert str(no_caches.note).startswith(UNKNOWN)


def test_under_the_dram_roof_a_point_is_memory_dram_or_compute() -> None:
    assert classify(0.5, 4.0, 0.5 * MIB, CAL) == ("memory (DRAM)", None, "DRAM", 1.25)
    bound, _, level, slowdown = classify(20.0, 50.0, 100 * MIB, CAL)
    assert (bound, level, slowdown) == ("compute", "DRAM", 2.0)
    assert classify(0.5, 4.0, 0.5 * MIB, None) == (None, None, None, None)


def test_no_models_row_is_labelled_bound_by_a_roof_it_beats() -> None:
    # one device, DRAM 10 GB/s: models at intensity 0.5 FLOP/B running 1x to 40x the DRAM roof
    ws = [0.5 * MIB, 2 * MIB, 6 * MIB, 20 * MIB, 0.01 * MIB, 100 * MIB]
    models = pd.DataFrame(
        {"device": "pi", "agent_id": "pi", "threads": 1, "model": [f"m{k}" for k in range(6)],
         "flops": 1e9, "bytes": 2e9, "unique_bytes": ws, "achieved_gflops": None,
         "p50_ms": [200.0, 60.0, 30.0, 50.0, 15.0, 2.0]}
    )  # fmt: skip
    models["achieved_gflops"] = 1e9 / (models["p50_ms"] * 1e6)
    out, missing = attach_roofline(models, calibration_frame([{**CAL, "detail_json": None}]))
    assert not missing
    for row in out.itertuples():
        achieved_gbs = row.achieved_gflops / 0.5
        if str(row.bound).startswith("memory"):
            assert achieved_gbs <= row.roof_bandwidth_gbs, row
            assert row.bound == f"memory ({row.roof_level})" and row.slowdown >= 1
        if row.bound != ABOVE:
            assert row.slowdown >= 1
    bounds = dict(zip(out["model"], out["bound"], strict=True))
    assert bounds["m0"] == "memory (DRAM)" and bounds["m1"] == "memory (L3)"
    assert bounds["m2"] == "memory (L2)" and "beats the L3 roof" in out.loc[2, "bound_note"]
    assert bounds["m4"] == "memory (L1)" and bounds["m5"] == ABOVE  # 1 TB/s beats all
    [warning] = roof_warnings(out)
    assert warning.startswith("m5 on pi: slowdown 0.") and "calibration is probably low" in warning


def test_older_calibrations_without_cache_columns_still_load() -> None:
    old = calibration_frame([{"agent_id": "pi", "threads": 1, "peak_gflops": 100.0,
                              "bandwidth_gbs": 10.0, "measured_at": 1.0,
                              "detail_json": '{"valid": true}'}])  # fmt: skip
    assert old.loc[0, "l2_bandwidth_gbs"] is None and old.loc[0, "l3_bytes"] is None
    detail = {"l2_bandwidth_gbs": 80.0, "l2_bytes": MIB}
    new = calibration_frame([{"agent_id": "pi", "threads": 1, "peak_gflops": 100.0,
                              "bandwidth_gbs": 10.0, "measured_at": 1.0,
                              "detail_json": detail}])  # fmt: skip
    assert new.loc[0, "l2_bandwidth_gbs"] == 80.0 and new.loc[0, "l2_bytes"] == MIB
