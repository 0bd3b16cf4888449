"""``flopgap sweep build``, ``list`` and ``run``: write a sweep's models, show the space, or
measure a sweep on agents, adaptively, within a time budget.

Registered by ``collector/cli.py``. onnx is imported only when ``build`` or ``run`` runs, so
``list`` and ``--help`` stay light.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from collector.store.location import may_exist
from collector.sweep.named import NAMED, named_sweep
from collector.sweep.record import KernelSample, SweepSpec
from collector.sweep.space import FAMILIES, parse_families, sample_sweep
from shared.cli_parsers import Subparsers, actions, command
from shared.errors import UsageError

if TYPE_CHECKING:
    from collector.sweep.run import Scorer


def add_parser(sub: Subparsers) -> None:
    """Register ``sweep build`` and ``sweep list``."""
    sweep = sub.add_parser(
        "sweep",
        help="build single-kernel models over a sampled space of shapes",
        description="A sweep is a set of single-kernel and small-block ONNX models (one per "
        "sample of a kernel family's parameter space), measured like any model to learn what "
        "each kernel costs on a board. A campaign runs a named one with "
        'models = ["sweep:NAME"].',
    )
    steps = actions(sweep)
    build = command(
        steps,
        "build",
        cmd_build,
        help="write a sweep's models and manifest.json to a folder",
        description="Sample COUNT kernels of each family from SEED (log-uniform sizes within "
        "each family's work bound; the same seed gives the same kernels and bytes) and write "
        "<id>.onnx for each, plus manifest.json with family, params, MACs and sha256 per file.",
    )
    chosen = build.add_mutually_exclusive_group(required=True)
    chosen.add_argument(
        "--family", metavar="F[,F...]", help="kernel families, comma-separated, or all"
    )
    chosen.add_argument(
        "--name", metavar="SWEEP", help="a named sweep, with its own count and seed"
    )
    build.add_argument("--count", type=int, default=8, help="samples per family (default 8)")
    build.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    _add_run(steps)
    command(
        steps,
        "list",
        cmd_list,
        help="print the kernel families, their parameter ranges and the named sweeps",
    )


def _add_run(steps: Subparsers) -> None:
    from collector.cli_flags import add_collector_flags

    run = command(
        steps,
        "run",
        cmd_run,
        help="measure a sweep on agents, then add kernels where the predictor is worst",
        description="Round 1 measures the named sweep (or --family/--count) as a campaign with "
        "the per-op pass. With --db, each later round scores the predictor on everything "
        "measured and measures neighbours of the worst-predicted kernels, sized to fit what is "
        "left of --budget-minutes. Each round is kept in OUT/round-N/ (models, manifest.json, "
        "campaign.toml).",
    )
    run.add_argument("--agents", required=True, metavar="NAME[,NAME]", help="agents to measure on")
    chosen = run.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--name", metavar="SWEEP", help="a named sweep as round 1")
    chosen.add_argument("--family", metavar="F[,F...]", help="kernel families, or all")
    chosen.add_argument(
        "--resume", type=Path, metavar="DIR",
        help="go on with the sweep in DIR (an earlier run's --out): its rounds' kernels are "
        "scored with the new ones, never measured again; new rounds are added to DIR",
    )  # fmt: skip
    run.add_argument("--count", type=int, default=8, help="samples per family (default 8)")
    run.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    run.add_argument("--budget-minutes", type=float, default=20.0, metavar="M",
                     help="time the whole sweep may take (default 20)")  # fmt: skip
    run.add_argument("--out", type=Path, metavar="DIR", help="default sweeps/run-<time>")
    run.add_argument("--db", type=Path, help="the collector's database (read), for adaptive rounds")
    run.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    add_collector_flags(run)


def _spec(args: argparse.Namespace) -> SweepSpec:
    if args.name is not None:
        return named_sweep(args.name)
    families = parse_families(args.family)
    name = "all" if families == tuple(FAMILIES) else "+".join(families)
    return SweepSpec(name, families, args.count, args.seed)


def cmd_build(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Sample, build and write; prints one line per family (count, MACs or elements, time)."""
    out = out or sys.stdout
    from collector.sweep.build import write_sweep  # imports onnx

    spec = _spec(args)
    started = time.perf_counter()
    samples = sample_sweep(spec)
    write_sweep(args.out, spec, samples)
    elapsed = time.perf_counter() - started
    print(f"sweep {spec.name}: seed {spec.seed}, {spec.count} per family", file=out)
    print(f"{'family':<16} {'count':>5}  {'work range':<28}", file=out)
    for name in spec.families:
        print(_family_line(name, [s for s in samples if s.family == name]), file=out)
    print(
        f"wrote {len(samples)} models and manifest.json to {args.out} in {elapsed:.1f} s", file=out
    )
    return 0


def _family_line(name: str, samples: Sequence[KernelSample]) -> str:
    works = [s.work for s in samples]
    unit = FAMILIES[name].unit
    return f"{name:<16} {len(samples):>5}  {min(works):.3g}..{max(works):.3g} {unit}"


def cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Every family with its description, work bound and parameter ranges, then the names."""
    out = out or sys.stdout
    for fam in FAMILIES.values():
        lo, hi = fam.bounds
        print(f"{fam.name}: {fam.description} ({lo:g}..{hi:g} {fam.unit})", file=out)
        for key, text in fam.ranges.items():
            print(f"    {key:<10} {text}", file=out)
    print('\nnamed sweeps (campaign models = ["sweep:NAME"]):', file=out)
    for spec in NAMED.values():
        print(f"    {spec.name:<11} {spec.description} (seed {spec.seed})", file=out)
    return 0


def _scorer(args: argparse.Namespace, agents: Sequence[str]) -> Scorer | None:
    """The predictor's validation error per sample, read from --db; None without --db."""
    if args.db is None:
        return None
    if not may_exist(args.db):
        raise UsageError(f"no database at {args.db}", "pass the --db the collector serves")
    try:
        from collector.predict import sweep_errors
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            f"this flopgap has no predictor to score a sweep with ({exc})",
            "run without --db to measure round 1 only, or update flopgap",
        ) from exc
    db, threads = args.db, args.threads
    return lambda samples: sweep_errors(db, agents, threads, samples)


def cmd_run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the rounds; the exit status is the last round's campaign's."""
    from collector.keys_cli import client_keys
    from collector.sweep.run import run_sweep

    out = out or sys.stdout
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    if not agents or args.threads < 0 or args.budget_minutes <= 0:
        raise UsageError(
            f"--agents {args.agents!r}, --threads {args.threads}, "
            f"--budget-minutes {args.budget_minutes:g}",
            "name at least one agent, threads >= 0 and a budget above 0 minutes",
        )
    score = _scorer(args, agents)
    if score is None:
        print("no --db: no adaptive rounds, round 1 only", file=out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    before: list[KernelSample] = []
    if args.resume is not None:
        if score is None:
            raise UsageError("--resume adds adaptive rounds, which need --db",
                             "pass the collector's database with --db")  # fmt: skip
        before, rounds_before = resumed(args.resume)
        print(f"resuming {args.resume}: {len(before)} kernels in {rounds_before} round(s)",
              file=out)  # fmt: skip
    rounds = run_sweep(
        endpoint=args.collector, agents=agents, threads=args.threads,
        out_dir=args.resume or args.out or Path("sweeps") / f"run-{stamp}",
        first=[] if args.resume else sample_sweep(_spec(args)),
        budget_minutes=args.budget_minutes, score=score, seed=args.seed,
        insecure=args.insecure, keys=client_keys(args), out=out, stamp=stamp,
        measured_before=before, first_index=len(list(_round_dirs(args.resume))) + 1,
    )  # fmt: skip
    return rounds[-1].exit_code if rounds else 0


def _round_dirs(folder: Path | None) -> list[Path]:
    if folder is None:
        return []
    return sorted(p for p in folder.glob("round-*") if (p / "manifest.json").is_file())


def resumed(folder: Path) -> tuple[list[KernelSample], int]:
    """The kernels an earlier `sweep run` measured into `folder` (from each round's
    manifest.json), and how many rounds it had."""
    import json

    from collector.sweep.space import make_sample

    rounds = _round_dirs(folder)
    if not rounds:
        raise UsageError(f"{folder} holds no sweep rounds (round-N/manifest.json)",
                         "pass the --out folder of an earlier `flopgap sweep run`")  # fmt: skip
    samples: dict[str, KernelSample] = {}
    for round_dir in rounds:
        manifest = json.loads((round_dir / "manifest.json").read_text(encoding="utf-8"))
        for entry in manifest["models"]:
            sample = make_sample(entry["family"], entry["params"])
            samples.setdefault(sample.id, sample)
    return list(samples.values()), len(rounds)
