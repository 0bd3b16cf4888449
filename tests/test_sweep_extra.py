"""The families the first sweep lacked: ORT runs them as the whole models that showed them
missing do (fused, folded), flopgap counts them at their closed form, and adding them changed
no named sweep.

Building, checking, running and counting every family's samples is `tests/test_sweep.py`'s
parametrisation over ``FAMILIES``, which includes these; here are the fusions, the caps and the
pinned ids. Real onnxruntime sessions with the profiler on, as the agent's per-op pass runs them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from agent.engine.profile_ops import profile_ops
from agent.engine.session import SessionSettings
from collector.flops import count_model
from collector.op_join import OpJoin, join_ops
from collector.sweep import FAMILIES, KernelSample, make_sample, named_samples, named_sweep
from collector.sweep.families import build_model
from collector.sweep.space import MAX_WEIGHTS
from collector.sweep.space_extra import FC_MAX_WEIGHTS
from shared.errors import UsageError

ADDED = ("lrn", "skip_layernorm", "fc_large", "softmax_axis", "depthwise", "grouped")
CONTEXT = ("conv_large", "chain", "shuffle", "elementwise")
# sha256 of the sorted ids, "\n"-joined, computed on the commit before these families existed.
PINNED = {
    "all": (352, "63fa6fd132ed19e5496bd319881d342ff90b206c01cba8992cd6949268778cca"),
    "smoke": (22, "7172b213cc09d4450a6208f4f20c8122e81f35451f1dbf614de3e720fd9ad8df"),
    "cnn": (168, "572fbf743b3586c5a3b91c50b477bbfec1868f68c3fb5c5857f1cd61d64584a1"),
    "conv-small": (32, "6e9ae60f3d24351489df1e7f54d1c3b514722d0062757c74f708c3e647098eab"),
    # computed on the commit before the context families: measured stores hold its results
    "predict": (680, "9b11f83199f546d53e0a65cd9979ea2d9696b9c042338e6c64454bda620df27a"),
    "predict-context": (840, "d8307ad809d2d9a5b3fe115efdba2718b778e62202eae6cc72cc889edd2b571d"),
}


def _fc(**params: Any) -> KernelSample:
    base = {"m": 1, "k": 4096, "n": 1024, "form": "gemm", "trans_b": 1, "relu": 1}
    return make_sample("fc_large", base | params)


def _profiled(sample: KernelSample, tmp_path: Path) -> tuple[onnx.ModelProto, OpJoin]:
    """The graph ORT (opt level all, 1 thread) executes, and its join to the original's nodes."""
    path = tmp_path / f"{sample.id}.onnx"
    path.write_bytes(build_model(sample).SerializeToString())
    settings = SessionSettings(threads=1, opt_level="all")
    prof = profile_ops(path, settings, dict(sample.inputs), tmp_path / "work", runs=2)
    joined = join_ops(prof.document, prof.optimized_model, path, dict(sample.inputs))
    assert joined.unmatched == [] and joined.not_profiled == [], sample.params
    return onnx.load(str(prof.optimized_model)), joined


@pytest.mark.parametrize("name", sorted(PINNED))
def test_named_sweeps_kept_their_samples(name: str) -> None:
    count, digest = PINNED[name]
    ids = sorted(s.id for s in named_samples(name))
    assert len(ids) == count
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == digest


def test_the_predict_sweep_has_every_family_and_contains_all() -> None:
    spec = named_sweep("predict")
    assert (spec.count, spec.seed) == (40, 0)
    assert set(spec.families) == set(FAMILIES) - set(CONTEXT) and set(ADDED) <= set(spec.families)
    assert not set(ADDED) & set(named_sweep("all").families)
    samples = named_samples("predict")
    assert len(samples) == 40 * len(spec.families) == len({s.id for s in samples})
    # the same seed draws the same first 32 of each old family: sweep:all's results train it too
    assert {s.id for s in named_samples("all")} <= {s.id for s in samples}


def test_predict_context_adds_the_context_families_to_predict() -> None:
    spec = named_sweep("predict-context")
    assert set(spec.families) == set(FAMILIES) == set(named_sweep("predict").families) | {*CONTEXT}
    assert {s.id for s in named_samples("predict")} <= {
        s.id for s in named_samples("predict-context")
    }


@pytest.mark.parametrize("bias", [0, 1])
def test_add_and_layernorm_run_as_one_skip_layernorm(tmp_path: Path, bias: int) -> None:
    sample = make_sample("skip_layernorm", {"batch": 2, "seq": 64, "dim": 128, "bias": bias})
    optimized, joined = _profiled(sample, tmp_path)
    assert [(n.domain, n.op_type) for n in optimized.graph.node] == [
        ("com.microsoft", "SkipLayerNormalization")
    ]
    (row,) = joined.rows
    assert row["op_type"].endswith("SkipLayerNormalization")
    assert set(row["fused_from"]) == {n.name for n in build_model(sample).graph.node}


@pytest.mark.parametrize("form", ["gemm", "matmul"])
def test_the_fc_weight_is_folded_and_the_relu_fused(tmp_path: Path, form: str) -> None:
    sample = _fc(form=form, trans_b=int(form == "gemm"), k=4096, n=1024)
    model = build_model(sample)
    assert model.ByteSize() < 4 * 1024 + 1024  # the bias, and a 16 MB weight made at load time
    assert sample.weights == 4096 * 1024 + 1024 and sample.weights > MAX_WEIGHTS
    optimized, joined = _profiled(sample, tmp_path)
    assert [n.op_type for n in optimized.graph.node] == ["FusedGemm"]
    weight = optimized.graph.node[0].input[1]
    folded = {t.name: tuple(t.dims) for t in optimized.graph.initializer}
    assert folded[weight] in ((1024, 4096), (4096, 1024))  # the Gemm reads the folded weight
    (row,) = joined.rows  # no ConstantOfShape kernel ran
    assert row["op_type"].endswith("FusedGemm") and joined.constant_folded == ["constantofshape_0"]
    assert row["macs"] == sample.macs == 4096 * 1024
    assert row["bytes"] > 4 * 4096 * 1024  # the row's bytes include the streamed weight


def test_fc_large_counts_exactly_and_relu_free_stays_a_gemm(tmp_path: Path) -> None:
    sample = _fc(m=3, k=9216, n=3000, relu=0, trans_b=0)
    cost = count_model(build_model(sample))
    assert cost.uncounted == {} and cost.total.macs == sample.macs == 3 * 9216 * 3000
    optimized, _ = _profiled(sample, tmp_path)
    assert [n.op_type for n in optimized.graph.node] == ["Gemm"]


def test_fc_large_has_its_own_weight_cap_and_floor() -> None:
    assert FAMILIES["fc_large"].max_weights == FC_MAX_WEIGHTS == 8 * MAX_WEIGHTS
    assert all(FAMILIES[n].max_weights == MAX_WEIGHTS for n in FAMILIES if n != "fc_large")
    assert FAMILIES["fc_large"].bounds == (1e5, 1e9)
    with pytest.raises(UsageError, match="over 32000000"):
        _fc(k=25088, n=4096)  # VGG's first FC: 400 MB, past a 1 GB board
    with pytest.raises(UsageError, match="gemm family's regime"):
        _fc(k=1024, n=1024)
    with pytest.raises(UsageError, match="no transB"):
        _fc(form="matmul", trans_b=1)


@pytest.mark.parametrize("act", ["relu", "relu6", "none"])
def test_depthwise_bn_and_activation_run_as_one_conv(tmp_path: Path, act: str) -> None:
    params = {"k": 3, "c": 32, "size": 56, "stride": 2, "act": act}
    sample = make_sample("depthwise", params)
    assert sample.macs == 32 * 9 * 28 * 28
    _, joined = _profiled(sample, tmp_path)
    (conv,) = [row for row in joined.rows if row["op_type"].endswith("Conv")]
    originals = {n.name for n in build_model(sample).graph.node}
    assert set(conv["fused_from"]) == originals  # Conv, BatchNormalization and the activation
    assert conv["macs"] == sample.macs and conv["depthwise"] is True


def test_softmax_runs_over_the_asked_axis() -> None:
    sample = make_sample("softmax_axis", {"rank": 4, "axis": 1, "d0": 1, "d1": 16, "d2": 4,
                                          "d3": 840})  # fmt: skip
    x = np.random.default_rng(0).standard_normal((1, 16, 4, 840)).astype(np.float32)
    session = ort.InferenceSession(build_model(sample).SerializeToString())
    (y,) = session.run(None, {"x": x})
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("family", "params", "why"),
    [
        ("grouped", {"k": 3, "groups": 3, "cin": 32, "cout": 48, "size": 14, "stride": 1},
         "does not divide"),
        ("grouped", {"k": 1, "groups": 16, "cin": 48, "cout": 64, "size": 14, "stride": 1},
         "channels per group"),
        ("depthwise", {"k": 4, "c": 32, "size": 28, "stride": 1, "act": "relu"}, "even k"),
        ("softmax_axis", {"rank": 3, "axis": 1, "d0": 64, "d1": 1, "d2": 512}, "one element"),
        ("softmax_axis", {"rank": 3, "axis": 3, "d0": 64, "d1": 8, "d2": 512}, "axis 3"),
    ],
)  # fmt: skip
def test_impossible_points_are_refused_with_the_reason(
    family: str, params: dict[str, Any], why: str
) -> None:
    with pytest.raises(UsageError, match=why):
        make_sample(family, params)


def test_grouped_samples_use_every_group_count_and_keep_channels_on_multiples_of_8() -> None:
    samples = named_samples("predict")
    grouped = [s for s in samples if s.family == "grouped"]
    assert {s.params["groups"] for s in grouped} == {2, 3, 4, 8, 16}
    assert all(s.params["cin"] % 8 == 0 and s.params["cout"] % 8 == 0 for s in grouped)
    depthwise = [s for s in samples if s.family == "depthwise"]
    assert {s.params["act"] for s in depthwise} == {"none", "relu", "relu6", "hardswish"}
