"""The predictor's parts on their own: features from real optimized graphs, the kernel
regressors' fallback and extrapolation, the correction's fit, families and the fold guard."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from collector.predict.correction import IDENTITY, fit_correction
from collector.predict.evaluate import Fold, summarize
from collector.predict.families import is_sweep, model_family
from collector.predict.features import FEATURES, kernel_rows
from collector.predict.kernels import MIN_OWN, KernelPredictor, train_kernels
from collector.predict.optimize import optimize_for_device
from collector.sweep.families import build_model
from collector.sweep.space import sample_family


@pytest.mark.parametrize("family", ["conv", "gemm", "matmul", "conv_transpose"])
def test_features_count_the_work_of_the_kernel_as_it_ran(family: str, tmp_path: Path) -> None:
    """At opt level disable the graph is the sweep's own, so the main node's MACs from its
    profiled shapes are the sample's closed-form MACs exactly."""
    for i, sample in enumerate(sample_family(family, 3, seed=5)):
        path = tmp_path / f"{i}.onnx"
        onnx.save(build_model(sample), str(path))
        graph = optimize_for_device(path, opt_level="disable", cache_dir=tmp_path / "cache")
        proto = onnx.load(str(graph.path), load_external_data=False).graph
        rows = kernel_rows(proto, graph.nodes)
        main = max(rows, key=lambda r: r["log_macs"])
        assert math.isclose(math.exp(main["log_macs"]), sample.macs, rel_tol=1e-9), sample
        assert set(FEATURES) <= set(main)


def test_a_fused_node_is_its_own_family_with_its_activation(tmp_path: Path) -> None:
    """Conv+BN+Relu at opt level all is one node whose family is the op ORT runs."""
    sample = next(s for s in sample_family("conv_bn_act", 20, seed=1) if s.params["act"] == "relu")
    path = tmp_path / "block.onnx"
    onnx.save(build_model(sample), str(path))
    graph = optimize_for_device(path, opt_level="all", cache_dir=tmp_path / "cache")
    rows = kernel_rows(onnx.load(str(graph.path)).graph, graph.nodes)
    convs = [r for r in rows if r["family"].endswith("Conv")]
    assert len(convs) == 1, [r["family"] for r in rows]
    assert convs[0]["family"] != "Conv"  # fused: FusedConv, or NCHWc on x86
    assert convs[0]["activation"] == 1.0  # Relu


def _law_rows(family: str, n: int, low: float, high: float, seed: int) -> pd.DataFrame:
    """Rows whose time follows t = 5 µs + MACs / 1e4 exactly (a fit test needs a known law)."""
    rng = np.random.default_rng(seed)
    macs = np.exp(rng.uniform(math.log(low), math.log(high), n))
    rows = []
    for i, m in enumerate(macs):
        row = dict.fromkeys(FEATURES, float("nan"))
        row.update(log_macs=math.log(m), log_bytes=math.log(m / 10), kh=3.0, group=1.0)
        rows.append({**row, "family": family, "kernel_time_us": 5 + m / 1e4,
                     "result_id": f"{family}-{i}", "node": f"n{i}"})  # fmt: skip
    return pd.DataFrame(rows)


def test_kernels_extrapolate_by_their_base_and_name_what_they_pooled() -> None:
    train = pd.concat([_law_rows("A", 60, 1e5, 1e7, 0), _law_rows("B", MIN_OWN - 1, 1e5, 1e6, 1)])
    predictor = train_kernels(train)
    assert "A" in predictor.families and "B" not in predictor.families
    beyond = _law_rows("A", 5, 1e8, 1e9, 2)  # 10-100x past the largest trained kernel
    pred, basis = predictor.predict(beyond)
    np.testing.assert_allclose(pred, beyond["kernel_time_us"], rtol=0.15)
    assert basis == ["family"] * 5
    _, basis_b = predictor.predict(_law_rows("B", 2, 1e5, 1e6, 3))
    assert basis_b == ["pooled", "pooled"]
    assert predictor.sigma("A") < 0.2 and predictor.oof is not None


def test_a_stored_predictor_predicts_exactly_what_it_did_before() -> None:
    predictor = train_kernels(_law_rows("A", 40, 1e5, 1e7, 4))
    again = KernelPredictor.from_json(predictor.to_json())
    probe = _law_rows("A", 7, 1e5, 1e8, 5)
    np.testing.assert_array_equal(predictor.predict(probe)[0], again.predict(probe)[0])
    assert again.sigma("A") == predictor.sigma("A")


def test_the_correction_recovers_a_known_per_run_and_per_node_cost() -> None:
    rng = np.random.default_rng(0)
    sums = np.exp(rng.uniform(math.log(20), math.log(5e4), 80))
    nodes = np.maximum(1, (sums / rng.uniform(20, 200, 80)).astype(int))  # 20-200 µs a node
    p50 = 4.0 + 0.95 * sums - 1.5 * nodes
    keep = p50 > 0
    fit = fit_correction(sums[keep], nodes[keep], p50[keep])
    assert fit.scale == pytest.approx(0.95, rel=0.01)
    assert fit.per_kernel_us == pytest.approx(-1.5, abs=0.1)
    assert fit.sigma < 0.01
    assert fit_correction([10.0, 20.0], [1, 2], [11.0, 21.0]) == IDENTITY


@pytest.mark.parametrize(
    ("name", "family"),
    [("light_resnet50", "resnet"), ("resnet18", "resnet"), ("inception_v1", "inception"),
     ("light_bvlc_alexnet", "alexnet"), ("mobilenet_v2", "mobilenet"), ("yolov8n", "yolov"),
     ("conv-46b71602fd", "sweep:conv"), ("conv_bn_act-0123456789", "sweep:conv_bn_act")],
)  # fmt: skip
def test_model_families(name: str, family: str) -> None:
    assert model_family(name) == family
    assert is_sweep(family) == family.startswith("sweep:")


def test_a_fold_refuses_to_score_a_family_it_trained_on() -> None:
    fold = Fold("resnet", ["sweep:conv", "mobilenet"], 10)
    fold.check("resnet")
    with pytest.raises(AssertionError):
        fold.check("mobilenet")


def test_summary_counts_only_what_was_predicted() -> None:
    s = summarize([0.05, -0.2, None], [1.0, 2.0, 3.0], [1.05, 1.6, None])
    assert s["models"] == 2 and s["within_10"] == 0.5 and s["within_5"] == 0.5
    assert s["mape"] == pytest.approx(0.125)
