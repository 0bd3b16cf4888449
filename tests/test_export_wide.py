"""The wide CSV: model x device matrices with their units in a `.meta.json` (as the long CSV
has) and a validity matrix of the same shape; a missing cell is empty, never 0 (issue 17)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collector.cli import main
from collector.flops import CONVENTION
from collector.store import Store
from collector.store.jobs import Failure
from tests.test_report_render import FLOPS, _document
from tests.test_report_validity import FOREIGN, FREQ

KEY = ["model_name", "input_shapes", "provider", "threads", "opt_level"]
SHAPES = json.dumps({"x": [1, 8]}, sort_keys=True, separators=(",", ":"))


def _fleet(path: Path) -> None:
    """Campaign "fleet" on agents pi5 and jetson:
    - tiny: valid on both (pi5 twice: 1 ms and 3 ms, median 2 ms);
    - small: pi5 valid once and invalid once (4x slower; left out), jetson invalid only;
    - big: pi5 only, its job failed on jetson (an error result, no number);
    - dwnet: never counted (no FLOPs): latency but no GFLOP/s."""
    store = Store(path)
    store.add_campaign("c1", "fleet", {})
    runs = [("pi5", "tiny", 1.0, []), ("pi5", "tiny", 3.0, []), ("jetson", "tiny", 0.5, []),
            ("pi5", "small", 5.0, []), ("pi5", "small", 20.0, [FOREIGN]),
            ("jetson", "small", 2.0, [FOREIGN]), ("jetson", "small", 4.0, [FREQ]),
            ("pi5", "big", 100.0, []), ("pi5", "dwnet", 7.0, [])]  # fmt: skip
    for i, (agent, model, ms, reasons) in enumerate(runs):
        doc = _document(agent, model, ms)
        doc.update(valid=not reasons, invalid_reasons=reasons)
        store.add_jobs([(f"j{i}", "c1", agent, model, model, {}, i, 1, 60.0)])
        store.record_result(f"j{i}", f"r{i}", agent, doc, np.ones(10))
    store.add_jobs([("jf", "c1", "jetson", "big", "big", {}, 0, 1, 60.0)])
    store.start_job("jf")
    store.fail_attempt("jf", Failure("rf", "jetson", "oom", "out of memory"))
    for model in ("tiny", "small", "big"):
        total = {"flops": FLOPS[model], "macs": FLOPS[model] / 2, "flops_2mac": FLOPS[model],
                 "params": 1, "bytes": FLOPS[model] / 5, "intensity": 5.0}  # fmt: skip
        store.put_cost(model, SHAPES, CONVENTION, {"total": total}, None)
    store.close()


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files `flopgap export --csv wide.csv --wide` writes, through the real CLI."""
    tmp = tmp_path_factory.mktemp("wide")
    _fleet(tmp / "fleet.sqlite")
    argv = ["export", "--db", str(tmp / "fleet.sqlite"), "--csv", str(tmp / "wide.csv")]
    assert main([*argv, "--wide"]) == 0
    return tmp / "wide.csv"


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=KEY)


def test_three_matrices_of_one_shape_each_with_its_sidecar(wide: Path) -> None:
    names = ["wide.csv", "wide_gflops.csv", "wide_valid.csv"]
    for name in names:
        assert (wide.parent / name).exists() and (wide.parent / f"{name}.meta.json").exists()
    frames = [_read(wide.parent / name) for name in names]
    assert all(f.index.equals(frames[0].index) for f in frames)
    assert all(list(f.columns) == ["jetson", "pi5"] for f in frames)
    assert [i[0] for i in frames[0].index] == ["big", "dwnet", "small", "tiny"]


def test_numbers_stay_numbers_and_missing_is_empty(wide: Path) -> None:
    p50, gflops = _read(wide), _read(wide.parent / "wide_gflops.csv")
    assert p50.dtypes.map(pd.api.types.is_float_dtype).all()
    assert gflops.dtypes.map(pd.api.types.is_float_dtype).all()
    cell = p50.xs("tiny", level="model_name")
    assert cell["pi5"].item() == 2.0  # median of 1 and 3 ms
    assert p50.xs("small", level="model_name")["pi5"].item() == 5.0  # the invalid 20 ms left out
    assert p50.xs("small", level="model_name")["jetson"].item() == 3.0  # invalid only: marked
    # flops / the cell's p50, so the two matrices agree cell for cell
    assert gflops.xs("tiny", level="model_name")["pi5"].item() == pytest.approx(1e6 / 2e-3 / 1e9)
    with wide.open() as handle:
        big = next(r for r in csv.DictReader(handle) if r["model_name"] == "big")
    assert big["jetson"] == "" and big["pi5"] == "100.0"  # failed on jetson: empty, not 0
    with (wide.parent / "wide_gflops.csv").open() as handle:
        dwnet = next(r for r in csv.DictReader(handle) if r["model_name"] == "dwnet")
    assert dwnet["pi5"] == "" and dwnet["jetson"] == ""  # uncounted; not run on jetson


def test_each_cell_says_whether_it_is_valid_and_why_not(wide: Path) -> None:
    valid = _read(wide.parent / "wide_valid.csv")
    small = valid.xs("small", level="model_name")
    assert small["pi5"].item() == "valid"
    assert small["jetson"].item() == f"invalid: {FOREIGN}; {FREQ}"
    assert valid.xs("tiny", level="model_name").eq("valid").all(axis=None)
    assert pd.isna(valid.xs("big", level="model_name")["jetson"].item())
    p50 = _read(wide)
    trusted = p50.where(valid.eq("valid"))  # what a pandas user does with the two files
    assert pd.isna(trusted.xs("small", level="model_name")["jetson"].item())
    assert trusted.xs("small", level="model_name")["pi5"].item() == 5.0


def test_sidecars_name_units_convention_and_markers(wide: Path) -> None:
    meta = json.loads((wide.parent / "wide.csv.meta.json").read_text())
    assert meta["value"] == "p50_ms" and "ms" in meta["unit"]
    assert meta["index_columns"] == KEY and meta["device_columns"] == ["jetson", "pi5"]
    assert meta["flops_convention"] == CONVENTION
    assert meta["files"] == {"p50_ms": "wide.csv", "achieved_gflops": "wide_gflops.csv",
                             "validity": "wide_valid.csv"}  # fmt: skip
    assert "never 0" in meta["missing"] and meta["rows"] == 4
    gflops = json.loads((wide.parent / "wide_gflops.csv.meta.json").read_text())
    assert gflops["value"] == "achieved_gflops" and "1e9 FLOP/s" in gflops["unit"]
    validity = json.loads((wide.parent / "wide_valid.csv.meta.json").read_text())
    assert set(validity["validity_values"]) == {"valid", "invalid: <reasons>"}


def test_a_store_with_only_failed_results_writes_empty_matrices(tmp_path: Path) -> None:
    store = Store(tmp_path / "f.sqlite")
    store.add_campaign("c1", "fleet", {})
    store.add_jobs([("jf", "c1", "pi5", "big", "big", {}, 0, 1, 60.0)])
    store.start_job("jf")
    store.fail_attempt("jf", Failure("rf", "pi5", "oom", "out of memory"))
    store.close()
    out = tmp_path / "w.csv"
    assert main(["export", "--db", str(tmp_path / "f.sqlite"), "--csv", str(out), "--wide"]) == 0
    assert out.read_text().strip() == ",".join(KEY)
    assert json.loads((tmp_path / "w_valid.csv.meta.json").read_text())["rows"] == 0


def test_batch_sizes_of_one_model_are_two_rows_not_one_median(tmp_path: Path) -> None:
    """A campaign's batch sizes run one model at two input shapes: a shared median of 1 ms
    and 8 ms would describe neither; an uncounted model has latency but no GFLOP/s."""
    store = Store(tmp_path / "b.sqlite")
    store.add_campaign("c1", "fleet", {})
    for i, (batch, ms) in enumerate(((1, 1.0), (8, 8.0))):
        doc = _document("pi5", "tiny", ms)
        doc["model"]["inputs"]["x"]["shape"] = [batch, 8]
        store.add_jobs([(f"j{i}", "c1", "pi5", "tiny", "tiny", {}, 0, 1, 60.0)])
        store.record_result(f"j{i}", f"r{i}", "pi5", doc, np.ones(10))
    store.close()
    out = tmp_path / "b.csv"
    assert main(["export", "--db", str(tmp_path / "b.sqlite"), "--csv", str(out), "--wide"]) == 0
    p50 = _read(out)
    assert sorted(p50["pi5"]) == [1.0, 8.0]
    assert [json.loads(i[1])["x"][0] for i in p50.index] == [1, 8]
    assert _read(tmp_path / "b_gflops.csv")["pi5"].isna().all()
