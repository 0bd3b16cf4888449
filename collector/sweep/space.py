"""Each kernel family's parameter space, and the seeded sampler that draws a sweep from them.

Why: a predictor is only as good as the shapes it was trained on. Every family draws its sizes
log-uniformly, rejects impossible combinations (groups that do not divide the channels, an output
smaller than one pixel) before anything is built, and keeps only kernels whose work lies in the
family's bound: 1e5..5e8 MACs for compute families, 1e4..1.6e7 tensor elements for the
memory-bound ones, about 0.01 to 50 ms on a laptop core. Weights are capped at 4 M elements
(16 MB) so a sweep travels to boards; a family may set its own bound and cap (``fc_large`` makes
its weight in the graph, so its file stays small while its kernel streams up to 128 MB). The same
seed gives the same samples, and each family draws from its own stream, so adding a family to a
sweep leaves the others' samples unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from collector.sweep import (
    space_context,
    space_dense,
    space_elementwise,
    space_extra,
    space_spatial,
)
from collector.sweep.record import Dims, KernelSample, Params, SweepSpec
from shared.errors import UsageError

MAC_BOUNDS = (1e5, 5e8)
ELEMENT_BOUNDS = (1e4, 1.6e7)
MAX_WEIGHTS = 4_000_000
ATTEMPTS_PER_SAMPLE = 200  # rejection sampling gives up after count x this many draws


@dataclass(frozen=True)
class Family:
    """One kernel family: how to draw its parameters and what a drawn point costs.

    ``check`` returns why a point is impossible (``None`` when it can be built); ``work`` is what
    ``bounds`` apply to, in ``unit`` ("MACs" or "elements"). ``weights`` counts the weight
    elements the kernel reads (initializers, or what the graph materializes), capped at
    ``max_weights``; ``work_bounds`` replaces the unit's bound for a family that needs another.
    """

    name: str
    description: str
    ranges: Mapping[str, str]
    draw: Callable[[np.random.Generator], dict[str, int | str]]
    check: Callable[[Params], str | None]
    inputs: Callable[[Params], dict[str, Dims]]
    macs: Callable[[Params], int]
    weights: Callable[[Params], int]
    work: Callable[[Params], int]
    unit: str
    max_weights: int = MAX_WEIGHTS
    work_bounds: tuple[float, float] | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """The work bound every sample of this family lies in."""
        if self.work_bounds is not None:
            return self.work_bounds
        return MAC_BOUNDS if self.unit == "MACs" else ELEMENT_BOUNDS


FAMILIES: dict[str, Family] = {
    spec["name"]: Family(**spec)
    for module in (space_spatial, space_dense, space_elementwise, space_extra, space_context)
    for spec in module.SPACES
}


def family(name: str) -> Family:
    """The family called ``name``, or a UsageError listing them."""
    found = FAMILIES.get(name)
    if found is None:
        raise UsageError(
            f"no kernel family named {name!r}",
            f"the families are: {', '.join(FAMILIES)} (see `flopgap sweep list`)",
        )
    return found


def rejection(fam: Family, params: Params) -> str | None:
    """Why ``params`` is not a sample of ``fam`` (impossible, out of bound), or ``None``."""
    reason = fam.check(params)
    if reason is not None:
        return reason
    if fam.weights(params) > fam.max_weights:
        return f"{fam.weights(params)} weight elements, over {fam.max_weights}"
    lo, hi = fam.bounds
    work = fam.work(params)
    if not lo <= work <= hi:
        return f"{work} {fam.unit} outside [{lo:g}, {hi:g}]"
    return None


def make_sample(name: str, params: Params) -> KernelSample:
    """The sample of family ``name`` at ``params``, or a UsageError saying why it cannot be."""
    fam = family(name)
    reason = rejection(fam, params)
    if reason is not None:
        raise UsageError(
            f"{name} {dict(params)} cannot be built: {reason}",
            "draw parameters with collector.sweep.sample_family, which rejects such points",
        )
    return _record(fam, params)


def _record(fam: Family, params: Params) -> KernelSample:
    return KernelSample(
        family=fam.name,
        params=dict(params),
        inputs=fam.inputs(params),
        macs=fam.macs(params),
        work=fam.work(params),
        weights=fam.weights(params),
    )


def sample_family(name: str, count: int, seed: int) -> list[KernelSample]:
    """``count`` distinct samples of family ``name`` drawn from ``seed``, in draw order."""
    fam = family(name)
    if count < 1 or seed < 0:
        raise UsageError(f"count {count}, seed {seed}", "count must be >= 1 and seed >= 0")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    found: dict[str, KernelSample] = {}
    for _ in range(count * ATTEMPTS_PER_SAMPLE):
        params = fam.draw(rng)
        if rejection(fam, params) is None:
            sample = _record(fam, params)
            found.setdefault(sample.id, sample)
            if len(found) == count:
                return list(found.values())
    raise UsageError(
        f"found only {len(found)} distinct {name} samples of {count} asked for",
        "ask for fewer samples of this family",
    )


def sample_sweep(spec: SweepSpec) -> list[KernelSample]:
    """Every sample of ``spec``: its families in order, ``count`` each."""
    return [s for name in spec.families for s in sample_family(name, spec.count, spec.seed)]


def parse_families(text: str | Sequence[str]) -> tuple[str, ...]:
    """``conv,gemm`` (or a list) as family names, each checked; ``all`` is every family."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if names == ["all"]:
        return tuple(FAMILIES)
    if not names:
        raise UsageError("no family given", f"name one or more of: {', '.join(FAMILIES)}")
    for name in names:
        family(name)
    return tuple(dict.fromkeys(names))
