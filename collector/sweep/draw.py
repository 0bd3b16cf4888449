"""Seeded draws the parameter spaces share: log-uniform integers and plain choices.

Why log-uniform: kernel cost spans four orders of magnitude, and a predictor needs as many
samples at 16 channels as at 512; a uniform draw would put nearly all of them near the top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def log_int(rng: np.random.Generator, lo: int, hi: int, multiple: int = 1) -> int:
    """An integer in [lo, hi], log-uniform, rounded to a multiple of ``multiple`` (channels: 8)."""
    value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    rounded = max(multiple, round(value / multiple) * multiple)
    return min(max(rounded, lo), hi)


def pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One of ``options``, each equally likely (repeat an option to weight it)."""
    return options[int(rng.integers(len(options)))]
