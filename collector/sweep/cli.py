"""``flopgap sweep build`` and ``flopgap sweep list``: write a sweep's models, or show the space.

Registered by ``collector/cli.py``. onnx is imported only when ``build`` runs, so ``list`` and
``--help`` stay light.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from collector.sweep.named import NAMED, named_sweep
from collector.sweep.record import KernelSample, SweepSpec
from collector.sweep.space import FAMILIES, parse_families, sample_sweep
from shared.cli_parsers import Subparsers, actions, command


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
    command(
        steps,
        "list",
        cmd_list,
        help="print the kernel families, their parameter ranges and the named sweeps",
    )


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
