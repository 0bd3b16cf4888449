"""The sweep generator: every family builds valid models that ORT runs and flopgap counts at
their closed-form MACs, sampling is seeded and bounded, ``sweep:NAME`` resolves in a campaign,
and ``flopgap sweep build`` writes the models with a manifest.

Real onnx checks, real onnxruntime sessions and real files; a few samples per family keep the
whole file to a few seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from agent.engine.options import settings_from_dict
from collector.campaign import CampaignSpec, load_campaign
from collector.cli import main
from collector.flops import count_model
from collector.sweep import (
    FAMILIES,
    KernelSample,
    SweepSpec,
    make_sample,
    named_samples,
    named_sweep,
    sample_family,
    sample_sweep,
)
from collector.sweep.build import MANIFEST
from collector.sweep.families import build_model
from collector.sweep.space import rejection
from shared.errors import UsageError

PER_FAMILY = 3


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_builds_checks_runs_and_counts(name: str) -> None:
    rng = np.random.default_rng(0)
    for sample in sample_family(name, PER_FAMILY, seed=7):
        model = build_model(sample)
        onnx.checker.check_model(model, full_check=True)
        assert (model.ir_version, model.opset_import[0].version) == (8, 17)
        declared = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
                    for v in model.graph.input}  # fmt: skip
        assert declared == dict(sample.inputs)
        session = _session(model)
        feeds = {n: rng.standard_normal(d).astype(np.float32) for n, d in sample.inputs.items()}
        outputs = session.run(None, feeds)
        expected = [tuple(d.dim_value for d in o.type.tensor_type.shape.dim)
                    for o in model.graph.output]  # fmt: skip
        assert [o.shape for o in outputs] == expected, sample.params
        assert all(np.isfinite(o).all() for o in outputs), sample.params
        cost = count_model(model)
        assert cost.uncounted == {}, sample.params
        assert cost.total.macs == sample.macs, sample.params  # closed form of the space
        assert cost.total.bytes > 0
        moves = name == "movement" or (name == "shuffle" and sample.params["kind"] != "sum")
        assert (cost.total.flops > 0) is not moves  # data movement does no FLOPs


@pytest.mark.parametrize(
    ("family", "params", "macs"),
    [
        (
            "conv",
            {
                "k": 3,
                "cin": 16,
                "cout": 32,
                "groups": 1,
                "size": 28,
                "stride": 2,
                "dilation": 1,
                "pad": "same",
            },
            32 * 16 * 9 * 14 * 14,
        ),
        (
            "conv",
            {
                "k": 5,
                "cin": 64,
                "cout": 64,
                "groups": 64,
                "size": 20,
                "stride": 1,
                "dilation": 2,
                "pad": "valid",
            },
            64 * 25 * 12 * 12,
        ),
        ("gemm", {"m": 8, "k": 256, "n": 100, "trans_b": 1}, 8 * 256 * 100),
        ("matmul", {"batch": 4, "m": 32, "k": 64, "n": 48, "rhs": "input"}, 4 * 32 * 64 * 48),
        ("matmul", {"batch": 0, "m": 50, "k": 128, "n": 64, "rhs": "weight"}, 50 * 128 * 64),
    ],
)
def test_macs_match_a_hand_computed_closed_form(family: str, params: dict, macs: int) -> None:
    sample = make_sample(family, params)
    assert sample.macs == macs
    assert count_model(build_model(sample)).total.macs == macs


def test_an_impossible_combination_is_rejected_never_built() -> None:
    bad = {"k": 3, "cin": 24, "cout": 32, "groups": 16, "size": 28, "stride": 1,
           "dilation": 1, "pad": "same"}  # fmt: skip
    assert rejection(FAMILIES["conv"], bad) is not None
    with pytest.raises(UsageError, match="groups 16 does not divide"):
        make_sample("conv", bad)
    with pytest.raises(UsageError):  # a hand-made record is checked again by the builder
        build_model(KernelSample("conv", bad, {"x": (1, 24, 28, 28)}))
    with pytest.raises(UsageError, match="no kernel family"):
        make_sample("lstm", {})


def test_sampling_is_deterministic_and_each_family_has_its_own_stream() -> None:
    spec = SweepSpec("t", ("conv", "gemm"), 6, seed=3)
    first, again = sample_sweep(spec), sample_sweep(spec)
    assert [(s.id, dict(s.params)) for s in first] == [(s.id, dict(s.params)) for s in again]
    other = sample_sweep(SweepSpec("t", ("conv", "gemm"), 6, seed=4))
    assert {s.id for s in first}.isdisjoint({s.id for s in other})
    gemm_alone = sample_sweep(SweepSpec("t", ("gemm",), 6, seed=3))
    assert [s.id for s in gemm_alone] == [s.id for s in first if s.family == "gemm"]
    assert len({s.id for s in first}) == len(first)
    assert build_model(first[0]).SerializeToString() == build_model(again[0]).SerializeToString()


def test_ids_are_stable_across_runs() -> None:
    sample = make_sample("gemm", {"m": 64, "k": 256, "n": 128, "trans_b": 0})
    assert sample.id == make_sample("gemm", {"trans_b": 0, "n": 128, "k": 256, "m": 64}).id
    assert sample.id == "gemm-edadbba7f7"  # pinned: a changed hash would orphan stored results


@pytest.mark.parametrize("name", list(FAMILIES))
def test_samples_respect_the_work_bound_and_the_weight_cap(name: str) -> None:
    fam = FAMILIES[name]
    lo, hi = fam.bounds
    samples = sample_family(name, 60, seed=0)
    assert all(lo <= s.work <= hi and s.weights <= fam.max_weights for s in samples)
    works = sorted(s.work for s in samples)
    spread = min(100.0, hi / lo / 3)  # conv_large's own bound spans 6x, the others' 1e3 and more
    assert works[-1] / works[0] > spread, "log-uniform sizes spread over the bound"


def test_sweep_name_resolves_in_a_campaign(tmp_path: Path) -> None:
    config = tmp_path / "campaign.toml"
    config.write_text('name = "k"\nmodels = ["sweep:smoke"]\n[targets]\nagents = ["*"]\n')
    spec = load_campaign(config)
    kernels = named_samples("smoke")
    assert [m.name for m in spec.models] == [s.id for s in kernels]
    assert {m.sweep for m in spec.models} == {"smoke"}
    assert {s.family for s in kernels} == set(named_sweep("smoke").families)
    restored = CampaignSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert restored.models == spec.models and restored.jobs() == spec.jobs()
    for job in spec.jobs():
        settings_from_dict(job.settings)
    paths = spec.materialize_models(tmp_path / "out")
    for model, sample in zip(spec.models, kernels, strict=True):
        built = build_model(sample).SerializeToString()
        assert paths[model.name].read_bytes() == built
        declared = {i.name: i.dims for i in model.inputs}
        assert declared == dict(sample.inputs)


def test_an_unknown_sweep_name_is_a_usage_error_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "campaign.toml"
    config.write_text('name = "k"\nmodels = ["sweep:nope"]\n[targets]\nagents = ["*"]\n')
    with pytest.raises(UsageError, match=r"models\[0\]: no sweep named 'nope'") as caught:
        load_campaign(config)
    assert "conv-small" in str(caught.value.hint)


def test_cli_build_writes_models_and_a_manifest(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "build", "--family", "conv,gemm", "--count", "3", "--seed", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["sweep"] == {"name": "conv+gemm", "families": ["conv", "gemm"], "count": 3,
                                 "seed": 1}  # fmt: skip
    rows = manifest["models"]
    assert [r["family"] for r in rows] == ["conv"] * 3 + ["gemm"] * 3
    for row in rows:
        data = (out / row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert row["macs"] == make_sample(row["family"], row["params"]).macs
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST] + [r["file"] for r in rows])


def test_cli_errors_and_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "build", "--family", "nope", "--out", str(tmp_path)]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["sweep", "build", "--name", "smoke", "--out", str(blocker)]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["sweep", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{name}:" in listed for name in FAMILIES) and "conv-small" in listed
    for argv in (["sweep", "--help"], ["sweep", "build", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
    assert "--family" in capsys.readouterr().out
