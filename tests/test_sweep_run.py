"""Adaptive sweeps: neighbours of a kernel are valid, seeded samples of its family; ``refine``
spends exactly its budget, most around the worst-predicted kernels; and ``run_sweep`` measures
round after round on a real collector and agent until the budget is spent, each job stored.

The budget is spent on an injected clock that steps a fixed amount per reading, so which rounds
run does not depend on how fast this machine is today.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from collector.cli import main
from collector.sweep import FAMILIES, KernelSample, sample_family
from collector.sweep.neighbours import AXES, neighbours, refine
from collector.sweep.run import SweepRound, run_sweep
from collector.sweep.space import family, rejection
from tests.fleet_helpers import start_agent, start_collector


def _changed(a: KernelSample, b: KernelSample) -> set[str]:
    return {k for k in a.params if a.params[k] != b.params.get(k)} | (set(b.params) - set(a.params))


def _is_neighbour(near: KernelSample, of: KernelSample) -> bool:
    """Same family, same structure (every str parameter), one or two shape parameters moved;
    a depthwise conv's cin, cout and groups move as one, and a kernel moved to 1 x 1 takes its
    dilation to 1."""
    moved = _changed(near, of)
    strings = {k for k, v in of.params.items() if isinstance(v, str)}
    if of.params.get("groups") == of.params.get("cin") == of.params.get("cout"):
        moved = {"channels" if k in ("cin", "cout", "groups") else k for k in moved}
    if "k" in moved and near.params.get("k") == 1:
        moved.discard("dilation")
    return near.family == of.family and not moved & strings and 1 <= len(moved) <= 2


@pytest.mark.parametrize("name", list(FAMILIES))
def test_neighbours_are_valid_distinct_samples_of_the_family_and_seeded(name: str) -> None:
    for sample in sample_family(name, 4, seed=11):
        found = neighbours(sample, 6, np.random.default_rng(5))
        assert len(found) == 6, (sample.params, found)
        assert len({s.id for s in found}) == 6 and sample.id not in {s.id for s in found}
        for near in found:
            assert rejection(family(name), near.params) is None, near.params
            assert _is_neighbour(near, sample), (sample.params, near.params)
            assert set(_changed(near, sample)) <= set(AXES[name]), near.params
            for key in ("cin", "cout", "c"):
                if key in near.params:
                    assert int(near.params[key]) % 8 == 0, near.params
        again = neighbours(sample, 6, np.random.default_rng(5))
        assert [s.id for s in again] == [s.id for s in found]
    other = neighbours(sample, 6, np.random.default_rng(6))
    assert [s.id for s in other] != [s.id for s in found]


def _scored() -> tuple[list[KernelSample], dict[str, float]]:
    samples = sample_family("binary", 6, seed=0) + sample_family("gemm", 4, seed=0)
    errors = {s.id: e for s, e in zip(samples, (0.9, 0.5, 0.2, 0.1, 0.05, 0.02), strict=False)}
    return samples, errors


def _origin(near: KernelSample, samples: Sequence[KernelSample]) -> list[str]:
    return [s.id for s in samples if _is_neighbour(near, s)]


def test_refine_spends_the_budget_on_the_worst_first_without_repeats() -> None:
    samples, errors = _scored()
    picked = refine(samples, errors, 12, seed=3)
    assert len(picked) == 12
    ids = [s.id for s in picked]
    assert len(set(ids)) == 12 and not set(ids) & {s.id for s in samples}
    worst = max(errors, key=lambda i: errors[i])
    per = {i: sum(1 for s in picked if i in _origin(s, samples)) for i in errors}
    assert per[worst] == max(per.values()) and per[worst] >= 4, per
    ranked = sorted(errors, key=lambda i: -errors[i])
    assert per[ranked[0]] >= per[ranked[1]] >= per[ranked[2]], per
    assert [s.id for s in refine(samples, errors, 12, seed=3)] == ids
    assert refine(samples, errors, 0, seed=3) == []


def test_refine_falls_back_to_fresh_draws_of_the_worst_family() -> None:
    samples, _ = _scored()
    gemm = [s for s in samples if s.family == "gemm"]
    only_gemm = {gemm[0].id: 0.8}  # one error known: at most 8 neighbours around it
    picked = refine(samples, only_gemm, 20, seed=1)
    assert len(picked) == 20 and len({s.id for s in picked}) == 20
    assert not {s.id for s in picked} & {s.id for s in samples}
    near = [s for s in picked if _is_neighbour(s, gemm[0])]
    assert 1 <= len(near) <= 8
    assert {s.family for s in picked} == {"gemm"}  # the only family with an error
    nothing_known = refine(samples, {}, 6, seed=1)
    assert len(nothing_known) == 6 and {s.family for s in nothing_known} <= {"binary", "gemm"}


class StepClock:
    """Each reading is ``step`` seconds after the last: a round (two readings) takes one step."""

    def __init__(self, step: float) -> None:
        self.step, self.now = step, 0.0

    def __call__(self) -> float:
        value, self.now = self.now, self.now + self.step
        return value


def _results_per_job(db: Path, campaign_ids: Sequence[str]) -> dict[str, int]:
    marks = ",".join("?" * len(campaign_ids))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute(
            f"SELECT j.model_name, COUNT(r.result_id) FROM jobs j LEFT JOIN results r "
            f"ON r.job_id = j.job_id AND r.job_result = 1 WHERE j.campaign_id IN ({marks}) "
            "GROUP BY j.job_id",
            list(campaign_ids),
        ).fetchall()
    return {name: count for name, count in rows}


@pytest.mark.integration
def test_run_sweep_measures_a_refine_round_around_the_worst_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "results.sqlite"
    first = sample_family("binary", 3, seed=4)
    worst = first[1]
    asked: list[list[str]] = []

    def score(samples: Sequence[KernelSample]) -> Mapping[str, float]:
        asked.append([s.id for s in samples])
        return {s.id: (0.9 if s.id == worst.id else 0.01) for s in samples}

    collector, endpoint = start_collector(db)
    agent = start_agent(endpoint, "sweeper", tmp_path)
    out = io.StringIO()
    try:
        collector.expect(r"agent sweeper registered", 30)
        # 30 s a round: round 1 is 10 s a job, 40 s are left, so round 2 is 4 jobs and then
        # the budget (70 s) is spent.
        rounds = run_sweep(
            endpoint=endpoint, agents=["sweeper"], threads=1, out_dir=tmp_path / "sweep",
            first=first, budget_minutes=70 / 60, score=score, seed=0, out=out,
            stamp="test", clock=StepClock(30.0), min_round_jobs=2,
        )  # fmt: skip
        monkeypatch.setattr("collector.sweep.run.MAX_ROUND_JOBS", 2)  # one message per round
        split = run_sweep(
            endpoint=endpoint, agents=["sweeper"], threads=1, out_dir=tmp_path / "split",
            first=sample_family("binary", 3, seed=9), budget_minutes=10, score=None, out=out,
            stamp="split",
        )  # fmt: skip
        refused = run_sweep(
            endpoint=endpoint, agents=["nobody"], threads=1, out_dir=tmp_path / "refused",
            first=first[:1], budget_minutes=10, score=score, out=out, stamp="refused",
        )  # fmt: skip
    finally:
        assert agent.stop() == 0, agent.tail(20)
        collector.stop()
    text = out.getvalue()
    assert [r.index for r in rounds] == [1, 2], text
    assert all(r.exit_code in (0, 7) and r.campaign_id for r in rounds), rounds
    assert [len(r.samples) for r in rounds] == [3, 4], text
    assert all(_is_neighbour(s, worst) for s in rounds[1].samples), rounds[1].samples
    assert asked == [[s.id for s in first]]  # scored once: after round 2 nothing fits
    assert "sweep round 2: 4 samples, 4 jobs" in text and "sweep done" in text, text
    for r in rounds:
        assert (r.folder / "manifest.json").is_file() and (r.folder / "campaign.toml").is_file()
        assert {p.stem for p in r.folder.glob("*.onnx")} == {s.id for s in r.samples}
    stored = _results_per_job(db, [r.campaign_id for r in rounds if r.campaign_id])
    assert stored == {s.id: 1 for r in rounds for s in r.samples}, stored
    assert [len(r.samples) for r in split] == [2, 1], text  # the first set, 2 jobs a round
    _assert_refused(refused, text)


def _assert_refused(rounds: list[SweepRound], text: str) -> None:
    """A round the collector refuses (no agent matches) ends the sweep with its status."""
    assert len(rounds) == 1 and rounds[0].exit_code != 0 and rounds[0].campaign_id is None
    assert "sweep round sweep-refused-r1 was not run" in text and "sweep stopped" in text, text


def test_sweep_run_says_what_to_pass_for_a_missing_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sweep", "run", "--agents", "a", "--family", "binary", "--count", "1",
                 "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "no database at" in err and "--db" in err
    assert not (tmp_path / "o").exists()
