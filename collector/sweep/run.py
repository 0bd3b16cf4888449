"""`flopgap sweep run`: measure a sweep, then keep adding kernels where the predictor is worst,
until the time budget is spent.

Why a loop here and not in the scheduler: each round is an ordinary campaign (same live view,
same store, same validity rules), so a sweep's results train and report like any others; only
the choice of the next round's kernels is new. A round is sized from the seconds per job the
rounds so far took, so the loop never plans past its budget by more than one job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from collector.campaign_view import EXIT_INVALID
from collector.sweep.neighbours import refine
from collector.sweep.record import KernelSample, SweepSpec
from shared.errors import FlopgapError
from shared.keys import PeerKeys

Scorer = Callable[[Sequence[KernelSample]], Mapping[str, float]]

MIN_ROUND_JOBS = 10  # a round smaller than this teaches the predictor too little to be worth it
PRIOR_JOB_SECONDS = 1.5  # before any round: warm-up, 0.3 s timed, the profile pass, loading
# Quick: a kernel is one node, its timing settles fast. 44 runs at least, because a result's
# verdict needs that many for its p90 at 99 % confidence (a slow kernel got only 20 in 0.3 s).
MEASURE = {"warmup_runs": 5, "warmup_seconds": 0.1, "min_iterations": 44, "min_seconds": 0.3,
           "max_seconds": 5}  # fmt: skip


@dataclass(frozen=True)
class SweepRound:
    """One measured round: its folder (models, manifest.json, campaign.toml), the samples it
    measured, the campaign that measured them (None if the collector could not say), wall
    seconds, and the campaign's exit status (collector.campaign_view.EXIT_CODES_HELP)."""

    index: int
    folder: Path
    samples: list[KernelSample]
    campaign_id: str | None
    seconds: float
    exit_code: int


# Jobs per round: a campaign travels as one JSON message (at most 256 KiB, about 440 bytes a
# job), so a larger first set is measured as several rounds, and refine never asks for more.
MAX_ROUND_JOBS = 400


def campaign_toml(name: str, agents: Sequence[str], threads: int) -> str:
    """The round's campaign: every model in its folder, the per-op pass on, quick settings."""
    measure = "".join(f"{key} = {value}\n" for key, value in MEASURE.items())
    listed = ", ".join(f'"{a}"' for a in agents)
    return (f'name = "{name}"\nmodels = ["*.onnx"]\nretry_invalid = 1\n'
            f"[targets]\nagents = [{listed}]\n[matrix]\nthreads = [{threads}]\n"
            f"[measure]\nprofile_ops = true\n{measure}")  # fmt: skip


def write_round(
    out_dir: Path, index: int, name: str, samples: Sequence[KernelSample], agents: Sequence[str],
    threads: int, seed: int,
) -> Path:  # fmt: skip
    """``out_dir/round-N/``: the models and manifest (collector.sweep.build), campaign.toml."""
    from collector.sweep.build import write_sweep  # imports onnx

    folder = out_dir / f"round-{index}"
    families = tuple(dict.fromkeys(s.family for s in samples))
    count = max(sum(1 for s in samples if s.family == f) for f in families)
    write_sweep(folder, SweepSpec(name, families, count, seed), samples)
    (folder / "campaign.toml").write_text(campaign_toml(name, agents, threads), encoding="utf-8")
    return folder


def _outcome(endpoint: str, name: str, insecure: bool, keys: PeerKeys | None) -> dict[str, Any]:
    """The collector's status entry of campaign ``name`` ({} when it cannot be read)."""
    from collector.client import Client
    from shared import protocol

    try:
        with Client(endpoint, insecure=insecure, keys=keys) as client:
            reply = client.request(protocol.StatusRequest(name), protocol.Status)
    except FlopgapError:
        return {}
    assert isinstance(reply, protocol.Status)
    named = [c for c in reply.status["campaigns"] if c["name"] == name]
    return dict(named[-1]) if named else {}


def _valid_share(camp: Mapping[str, Any]) -> float | None:
    results = camp.get("results")
    if not isinstance(results, dict):
        return None
    total = results["valid"] + results["invalid"] + results["failed"]
    return results["valid"] / total if total else None


def _line(index: int, samples: int, jobs: int, seconds: float, valid: float | None,
          left: float) -> str:  # fmt: skip
    share = "?" if valid is None else f"{valid:.0%}"
    rate = jobs / seconds if seconds > 0 else float("inf")
    spare = max(left, 0.0) / 60
    return (f"sweep round {index}: {samples} samples, {jobs} jobs in {seconds:.1f} s "
            f"({rate:.2f} jobs/s), {share} valid, {spare:.1f} min of budget left")  # fmt: skip


def run_sweep(
    *,
    endpoint: str,
    agents: Sequence[str],
    threads: int,
    out_dir: Path,
    first: Sequence[KernelSample],
    budget_minutes: float,
    score: Scorer | None,
    seed: int = 0,
    insecure: bool = False,
    keys: PeerKeys | None = None,
    out: TextIO,
    stamp: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    min_round_jobs: int = MIN_ROUND_JOBS,
    measured_before: Sequence[KernelSample] = (),
    first_index: int = 1,
) -> list[SweepRound]:
    """Measure ``first``, then, while ``score`` is given and at least ``min_round_jobs`` fit in
    what is left of the budget, score everything measured and measure ``refine``'s pick.

    Rounds are campaigns ``sweep-<stamp>-rN`` run with collector.campaign_run.run_campaign (its
    live view goes to ``out``). A round whose campaign fails (any exit status but 0 and
    EXIT_INVALID), or that cannot be submitted, ends the loop; the rounds measured are kept and
    returned. ``clock`` (seconds) is what the budget is spent on; tests step it.

    ``measured_before`` (a resumed sweep's earlier rounds, numbered from ``first_index``) are
    scored with this run's samples and never measured again; with no ``first``, the run starts
    with an adaptive round sized at PRIOR_JOB_SECONDS a job."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    budget_s, jobs_per_sample = budget_minutes * 60.0, max(len(agents), 1)
    if len(first) * jobs_per_sample * PRIOR_JOB_SECONDS > budget_s:
        print(f"warning: {len(first)} samples may take about "
              f"{len(first) * jobs_per_sample * PRIOR_JOB_SECONDS / 60:.1f} min, over the "
              f"{budget_minutes:g} min budget; round 1 is measured whole", file=out)  # fmt: skip
    rounds: list[SweepRound] = []
    per_round = max(MAX_ROUND_JOBS // jobs_per_sample, 1)
    pending, started = list(first), None
    samples, pending = pending[:per_round], pending[per_round:]
    before = list(measured_before)
    if not samples and before:
        samples = _next_round(rounds, jobs_per_sample, budget_s, score, seed, min_round_jobs,
                              out, before)[:per_round]  # fmt: skip
    while samples:
        index = len(rounds) + first_index
        name = f"sweep-{stamp}-r{index}"
        folder = write_round(out_dir, index, name, samples, agents, threads, seed)
        begin = clock()
        started = begin if started is None else started
        code, camp = _measure(folder, name, endpoint, insecure, keys, out)
        end = clock()
        rounds.append(SweepRound(index, folder, samples, camp.get("campaign_id"), end - begin,
                                 code))  # fmt: skip
        left = budget_s - (end - started)
        if camp:
            jobs = sum(camp["jobs"].values())
            print(_line(index, len(samples), jobs, end - begin, _valid_share(camp), left),
                  file=out)  # fmt: skip
        if code not in (0, EXIT_INVALID):
            kept = sum(len(r.samples) for r in rounds[:-1])
            print(f"sweep stopped: round {index} ended with exit status {code}; the {kept} "
                  "samples of earlier rounds are stored, and so is what this round measured",
                  file=out)  # fmt: skip
            break
        if pending:  # the first set, a campaign's worth at a time
            samples, pending = pending[:per_round], pending[per_round:]
            continue
        samples = _next_round(rounds, jobs_per_sample, left, score, seed, min_round_jobs, out,
                              before)[:per_round]  # fmt: skip
    return rounds


def _measure(
    folder: Path, name: str, endpoint: str, insecure: bool, keys: PeerKeys | None, out: TextIO
) -> tuple[int, dict[str, Any]]:
    """Run the round's campaign to the end: its exit status, and its status entry ({} when it
    was refused: then a campaign of the same name in the store is not this one)."""
    from collector.campaign_run import run_campaign

    try:
        code = run_campaign(folder / "campaign.toml", endpoint, detach=False,
                            insecure=insecure, out=out, keys=keys)  # fmt: skip
    except FlopgapError as exc:
        print(f"sweep round {name} was not run: {exc}", file=out)
        return exc.exit_code, {}
    return code, _outcome(endpoint, name, insecure, keys)


def _next_round(
    rounds: Sequence[SweepRound], jobs_per_sample: int, left: float, score: Scorer | None,
    seed: int, min_round_jobs: int, out: TextIO, before: Sequence[KernelSample] = (),
) -> list[KernelSample]:  # fmt: skip
    """The next round's samples, sized to what is left at the slowest round's seconds per job;
    [] when the sweep is done (no scorer, or fewer than ``min_round_jobs`` fit)."""
    if score is None:
        return []
    timed = [s for r in rounds for s in r.samples]
    measured = [*before, *timed]
    # The slowest round's rate, not the mean: adaptive rounds gather around hard kernels, which
    # are often slow ones (seen: 0.6 s a job in round 4, 1.7 s in round 5).
    rates = [r.seconds / (len(r.samples) * jobs_per_sample) for r in rounds if r.samples]
    per_job = max(rates) if timed and rates else PRIOR_JOB_SECONDS
    fit = int(left / per_job) if per_job > 0 else 0
    if fit < min_round_jobs:
        print(
            f"sweep done: {max(fit, 0)} jobs fit in what is left of the budget "
            f"(a round needs {min_round_jobs}); {len(measured)} samples measured",
            file=out,
        )
        return []
    try:
        errors = score(measured)
    except FlopgapError as exc:
        print(f"sweep stopped: the predictor could not score the samples: {exc}", file=out)
        return []
    return refine(measured, errors, fit // jobs_per_sample, seed + len(rounds) + len(before))
