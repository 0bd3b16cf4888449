"""Sweeps: single-kernel and small-block ONNX models over a sampled space of shapes.

Why: to predict a board's latency for a model it never ran, flopgap learns what each kernel
costs there, from kernels measured over a wide range of shapes. A sweep is such a set: each
family (``space.FAMILIES``) draws its parameters seeded and log-uniform within a work bound
(``space``), each sample has a stable id (``record``), ``families`` builds its model, ``build``
writes a folder with a manifest, ``named`` holds the sweeps a campaign names as ``sweep:NAME``.
Importing this package (or ``space``, ``named``) loads no onnx; ``families`` and ``build`` do.
"""

from __future__ import annotations

from collector.sweep.named import NAMED, named_samples, named_sweep
from collector.sweep.record import KernelSample, SweepSpec
from collector.sweep.space import FAMILIES, make_sample, parse_families, sample_family, sample_sweep

__all__ = [
    "FAMILIES",
    "NAMED",
    "KernelSample",
    "SweepSpec",
    "make_sample",
    "named_samples",
    "named_sweep",
    "parse_families",
    "sample_family",
    "sample_sweep",
]
