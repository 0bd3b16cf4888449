"""Samples near a badly predicted one, and the next adaptive round built from them.

Why: a predictor's error is not spread evenly over a family's space; it is worst where the
cost changes regime (a cache size crossed, a kernel switched). nn-Meter's adaptive sampling
measures more points right there. A neighbour keeps the family and every structural choice
(depthwise or dense, op, pool kind) and moves one or two shape parameters one small step:
sizes by a factor of 1.25..2 in log space (channels stay on their multiple of 8), small
enumerations (kernel size, stride, heads) to an adjacent allowed value. Only points the
family's rejection rules accept are kept, so every neighbour builds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from collector.sweep.record import KernelSample, Param
from collector.sweep.space import family, make_sample, rejection, sample_family
from collector.sweep.space_spatial import KERNELS

STEP = (1.25, 2.0)  # multiplicative step range of a size parameter
TRIES_PER_NEIGHBOUR = 40  # draws before neighbours() settles for fewer than asked
MEAN_PER_WORST = 4  # refine(): about this many neighbours per chosen sample ...
MAX_PER_WORST = 8  # ... and never more than this many around one sample
FRESH_SEED = 1_000_003  # fallback draws use seed + this: a stream no first round used


@dataclass(frozen=True)
class Axis:
    """How one parameter moves: log-steps within [lo, hi] on ``multiple``, or along ``options``."""

    lo: int = 0
    hi: int = 0
    multiple: int = 1
    options: tuple[int, ...] = ()


def _size(lo: int, hi: int, multiple: int = 1) -> Axis:
    return Axis(lo, hi, multiple)


def _enum(*options: int) -> Axis:
    return Axis(options=options)


_CHANNELS = _size(8, 512, 8)
_CONV = {"k": _enum(*KERNELS), "cin": _CHANNELS, "cout": _CHANNELS, "groups": _enum(2, 4, 8, 16),
         "size": _size(7, 224), "stride": _enum(1, 2), "dilation": _enum(1, 2)}  # fmt: skip

AXES: dict[str, dict[str, Axis]] = {
    "conv": _CONV,
    "conv_bn_act": _CONV,
    "conv_transpose": {
        "k": _enum(2, 3, 4),
        "stride": _enum(1, 2),
        "cin": _size(8, 256, 8),
        "cout": _size(8, 256, 8),
        "size": _size(4, 112),
    },
    "pool": {"c": _CHANNELS, "size": _size(7, 112), "k": _enum(2, 3), "stride": _enum(1, 2)},
    "gemm": {
        "m": _size(1, 512),
        "k": _size(16, 2048),
        "n": _size(16, 2048),
        "trans_b": _enum(0, 1),
    },
    "matmul": {
        "batch": _size(2, 64),
        "m": _size(1, 1024),
        "k": _size(8, 2048),
        "n": _size(8, 2048),
    },
    "attention": {
        "heads": _enum(1, 2, 4, 8, 12, 16),
        "seq": _size(8, 1024),
        "head_dim": _enum(16, 32, 64, 128),
    },
    "layernorm": {"rows": _size(1, 4096), "dim": _size(16, 4096)},
    "binary": {"c": _CHANNELS, "size": _size(7, 224)},
    "activation": {"rows": _size(1, 4096), "dim": _size(8, 4096)},
    "movement": {"c": _CHANNELS, "size": _size(7, 112)},
    "lrn": {"window": _enum(3, 5), "bias": _enum(1, 2), "c": _size(16, 512, 8),
            "size": _size(7, 112)},
    "skip_layernorm": {"batch": _enum(1, 2, 4, 8, 16), "seq": _size(1, 4096),
                       "dim": _size(64, 4096)},
    "fc_large": {"m": _size(1, 64), "k": _size(512, 25088), "n": _size(256, 4096)},
    # a softmax's rank and axis are its structure; d0 of a rank-4 input is its batch of 1
    "softmax_axis": {"d1": _size(1, 8400), "d2": _size(1, 8400), "d3": _size(1, 8400)},
    "depthwise": {"k": _enum(3, 5, 7), "c": _size(16, 1024, 8), "size": _size(7, 224),
                  "stride": _enum(1, 2)},
    "grouped": {"k": _enum(1, 3), "cin": _size(24, 960, 8), "cout": _size(24, 960, 8),
                "size": _size(7, 112), "stride": _enum(1, 2)},
    "conv_large": {"k": _enum(1, 3, 5), "cin": _size(32, 512, 8), "cout": _size(32, 512, 8),
                   "size": _size(14, 224)},
    # a chain's kind is its structure; a shuffle's kind, groups and n too
    "chain": {"c": _size(8, 256, 8), "size": _size(7, 56), "length": _size(4, 48)},
    "shuffle": {"c": _size(16, 1024, 8), "size": _size(1, 112), "seq": _size(8, 1024),
                "heads": _enum(2, 4, 8, 12, 16), "head_dim": _enum(16, 32, 64, 128)},
    "elementwise": {"c": _CHANNELS, "size": _size(7, 224)},
}  # fmt: skip


def _movable(sample: KernelSample) -> list[str]:
    """The parameters a neighbour may move: structure (a 2-D MatMul's batch 0, a depthwise
    conv's groups, a 1x1 kernel's dilation, a dense conv's groups 1) stays as drawn."""
    params, axes = sample.params, AXES[sample.family]
    keys = [k for k in axes if k in params]
    if "groups" in keys and params["groups"] in (1, params["cin"]):
        keys.remove("groups")
    if params.get("batch") == 0:
        keys.remove("batch")
    if params.get("k") == 1 and "dilation" in keys:
        keys.remove("dilation")
    return keys


def _step(value: int, axis: Axis, rng: np.random.Generator) -> int:
    """One step of ``value`` along ``axis`` in a random direction (the value itself at a wall)."""
    up = bool(rng.integers(2))
    if axis.options:
        at = min(range(len(axis.options)), key=lambda i: abs(axis.options[i] - value))
        to = at + (1 if up else -1)
        if not 0 <= to < len(axis.options):
            to = at - (1 if up else -1)
        return axis.options[min(max(to, 0), len(axis.options) - 1)]
    factor = math.exp(rng.uniform(math.log(STEP[0]), math.log(STEP[1])))
    moved = round(value * factor / axis.multiple) if up else round(value / factor / axis.multiple)
    moved *= axis.multiple
    if moved == value:  # a small value (m = 1) rounds back: one multiple further
        moved = value + axis.multiple if up else value - axis.multiple
    return min(max(moved, axis.lo, axis.multiple), axis.hi)


def _moved(sample: KernelSample, keys: Sequence[str], rng: np.random.Generator) -> dict[str, Param]:
    """``sample``'s parameters with one or two of ``keys`` stepped; a depthwise conv keeps
    groups = cin = cout, and a kernel moved to 1 x 1 drops its dilation to 1."""
    params: dict[str, Param] = dict(sample.params)
    axes = AXES[sample.family]
    chosen = rng.choice(len(keys), size=min(len(keys), 1 + int(rng.integers(2))), replace=False)
    for index in sorted(int(i) for i in chosen):
        key = keys[index]
        value = params[key]
        assert isinstance(value, int)
        params[key] = _step(value, axes[key], rng)
    original = sample.params
    if "cin" in original and original.get("groups") == original["cin"] == original["cout"]:
        side = params["cin"] if params["cin"] != original["cin"] else params["cout"]
        params.update(cin=side, cout=side, groups=side)
    if params.get("k") == 1 and "dilation" in params:
        params["dilation"] = 1
    return params


def neighbours(sample: KernelSample, count: int, rng: np.random.Generator) -> list[KernelSample]:
    """Up to ``count`` distinct valid samples of ``sample``'s family one step from it, never
    ``sample`` itself, in draw order; fewer only when its neighbourhood holds fewer."""
    fam = family(sample.family)
    keys = _movable(sample)
    found: dict[str, KernelSample] = {}
    for _ in range(max(count, 0) * TRIES_PER_NEIGHBOUR):
        if len(found) >= count or not keys:
            break
        params = _moved(sample, keys, rng)
        if rejection(fam, params) is None:
            near = make_sample(sample.family, params)
            if near.id != sample.id:
                found.setdefault(near.id, near)
    return list(found.values())


def shares(weights: Sequence[float], total: int) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder, earlier first on ties),
    so a larger weight never gets fewer."""
    whole = sum(weights)
    if total <= 0 or not weights:
        return [0] * len(weights)
    exact = [total * w / whole if whole > 0 else total / len(weights) for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def refine(
    samples: Sequence[KernelSample], errors: Mapping[str, float], budget: int, seed: int
) -> list[KernelSample]:
    """``budget`` new samples (fewer only if the spaces run out): neighbours of the
    worst-predicted of ``samples`` (``errors``: validation error by id), worst first and more
    around worse ones; fresh draws of the worst families when those do not fill the budget."""
    seen = {s.id for s in samples}
    known = sorted((s for s in samples if s.id in errors), key=lambda s: (-errors[s.id], s.id))
    worst = known[: math.ceil(budget / MEAN_PER_WORST)]
    quotas = shares([max(errors[s.id], 1e-12) for s in worst], budget)
    rng = np.random.default_rng([seed, 18])
    chosen: list[KernelSample] = []
    for sample, quota in zip(worst, quotas, strict=True):
        quota = min(quota, MAX_PER_WORST)
        for near in neighbours(sample, 2 * quota + 4, rng):  # spares for ids already seen
            if len(chosen) < budget and quota > 0 and near.id not in seen:
                chosen.append(near)
                seen.add(near.id)
                quota -= 1
    return chosen + _fresh(samples, errors, budget - len(chosen), seed, seen)


def _fresh(
    samples: Sequence[KernelSample],
    errors: Mapping[str, float],
    need: int,
    seed: int,
    seen: set[str],
) -> list[KernelSample]:
    """``need`` unseen draws of the families with the highest mean error (those with no error
    known after them, in order of appearance), split in proportion to that mean."""
    names = list(dict.fromkeys(s.family for s in samples))
    scored: dict[str, list[float]] = {n: [] for n in names}
    for s in samples:
        if s.id in errors:
            scored[s.family].append(errors[s.id])
    mean = {n: float(np.mean(v)) if v else 0.0 for n, v in scored.items()}
    names.sort(key=lambda n: -mean[n])
    drawn: list[KernelSample] = []
    for name, share in zip(names, shares([mean[n] for n in names], max(need, 0)), strict=True):
        if share == 0:
            continue
        taken = sum(1 for i in seen if i.startswith(f"{name}-"))
        pool = sample_family(name, share + taken, seed + FRESH_SEED)
        fresh = [s for s in pool if s.id not in seen][:share]
        seen.update(s.id for s in fresh)
        drawn += fresh
    return drawn
