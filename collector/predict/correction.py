"""From summed kernel times to a model's unprofiled p50, learned per device.

Why: the profiler's kernel times are not the latency a user sees. It adds a timestamp pair and
a fence per node (ORT's own profiler has been seen to inflate run time up to ~2.9x), rounds
each kernel to whole microseconds, and leaves out the session's fixed cost per run. On the
device's own measured models, each with a profile and an unprofiled p50 from its timed runs,
``p50 = a + b·Σkernel + c·kernels`` is fitted for relative error (a >= 0, b in [0.5, 1.5],
|c| <= 20 µs): a per-run fixed cost, a scale, and a per-node term that carries the
profiler's per-node overhead to models with hundreds of nodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

_BOUNDS = ([0.0, 0.5, -20.0], [math.inf, 1.5, 20.0])


@dataclass(frozen=True)
class Correction:
    """``p50_us = intercept_us + scale·Σkernel_us + per_kernel_us·kernels``; ``sigma`` is the
    spread of ln(measured / corrected) over the models it was fitted on."""

    intercept_us: float
    scale: float
    per_kernel_us: float
    sigma: float
    models: int

    def apply(self, kernel_sum_us: float, kernels: int) -> float:
        """The p50 (µs) a model with these summed kernel times and node count is expected at;
        never below a tenth of the summed kernels (the per-node term cannot eat the model)."""
        value = self.intercept_us + self.scale * kernel_sum_us + self.per_kernel_us * kernels
        return max(value, 0.1 * self.scale * kernel_sum_us, 1e-3)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Correction:
        floats = ("intercept_us", "scale", "per_kernel_us", "sigma")
        return cls(**{k: float(data[k]) for k in floats}, models=int(data["models"]))


IDENTITY = Correction(0.0, 1.0, 0.0, math.log(1.25), 0)
"""What a device with no profiled whole model gets: the kernel sum as it is, stated wide."""


def fit_correction(
    kernel_sums_us: Sequence[float], kernels: Sequence[int], p50_us: Sequence[float]
) -> Correction:
    """Fit on measured models (their profiled kernel sums and node counts, and their p50)."""
    from scipy.optimize import lsq_linear

    s = np.asarray(kernel_sums_us, dtype=float)
    n = np.asarray(kernels, dtype=float)
    y = np.asarray(p50_us, dtype=float)
    keep = (s > 0) & (y > 0)
    s, n, y = s[keep], n[keep], y[keep]
    if len(y) < 3:
        return IDENTITY
    x = np.column_stack([np.ones(len(y)), s, n]) / y[:, None]
    fit = lsq_linear(x, np.ones(len(y)), bounds=_BOUNDS)
    a, b, c = (float(v) for v in fit.x)
    draft = Correction(a, b, c, 0.0, len(y))
    fitted = np.array([draft.apply(si, int(ni)) for si, ni in zip(s, n, strict=True)])
    sigma = float(np.sqrt(np.mean(np.log(y / fitted) ** 2)))
    return Correction(a, b, c, sigma, len(y))
