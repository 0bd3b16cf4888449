"""The built-in model zoo: four small float32 models that span FLOP efficiency.

Why: the demo must show FLOPs mispredicting latency without downloading anything. ``mlp`` (dense
GEMM) and ``dwsep`` (depthwise-separable) differ by an order of magnitude in achieved GFLOP/s;
``convnet`` and ``transformer`` sit between. Each is built with onnx.helper from a seed, runs in a
few milliseconds on one CPU core, has fixed input shapes (no ``--input`` needed) and carries
``flopgap.zoo = <name>`` in its metadata. The same seed gives byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from collector.zoo import convnet, dwsep, mlp, transformer
from shared.errors import UsageError


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: its name, what it stresses, and a builder taking a seeded generator."""

    name: str
    description: str
    builder: Callable[[np.random.Generator], onnx.ModelProto]


ZOO: dict[str, ZooModel] = {
    module.NAME: ZooModel(module.NAME, module.DESCRIPTION, module.build)
    for module in (mlp, convnet, dwsep, transformer)
}


def build(name: str, seed: int = 0) -> onnx.ModelProto:
    """Build zoo model ``name`` with weights drawn from ``seed`` (same seed, same bytes)."""
    entry = ZOO.get(name)
    if entry is None:
        raise UsageError(
            f"no zoo model named {name!r}; the zoo has: {', '.join(ZOO)}",
            "pick one of the listed names",
        )
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}", "pass a non-negative seed")
    model = entry.builder(np.random.default_rng(seed))
    onnx.helper.set_model_props(model, {"flopgap.zoo": name, "flopgap.zoo.seed": str(seed)})
    return model


def write_zoo(out_dir: Path, seed: int = 0, names: Sequence[str] | None = None) -> dict[str, Path]:
    """Write ``<name>.onnx`` for each requested model (all by default) into ``out_dir``.

    Each file is written to a temporary name and renamed, so a reader never sees half a model.
    """
    chosen = list(ZOO) if names is None else list(names)
    models = {name: build(name, seed) for name in chosen}  # validate every name before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, model in models.items():
        path = out_dir / f"{name}.onnx"
        partial = path.with_suffix(".onnx.partial")
        partial.write_bytes(model.SerializeToString())
        os.replace(partial, path)
        paths[name] = path
    return paths
