"""What a sweep is made of: one sampled kernel (``KernelSample``) and a sweep (``SweepSpec``).

Why: predictors, campaigns and manifests must all name the same kernel the same way. A sample's
``id`` is a hash of its family and parameters, so the same kernel has the same id (and, since its
weights are seeded from that hash, the same bytes) in every run, on every host, in every sweep.
Light: no onnx here, so `flopgap sweep list` and campaign loading stay fast.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Param = int | str
Params = Mapping[str, Param]
Dims = tuple[int, ...]


def as_int(params: Params, key: str) -> int:
    """``params[key]``, which the space drew as an int (a str there is a bug in the space)."""
    value = params[key]
    if not isinstance(value, int):
        raise TypeError(f"parameter {key} is {value!r}, not an int")
    return value


def canonical(family: str, params: Params) -> str:
    """The JSON text the id hashes: sorted keys, no spaces, so dict order never changes an id."""
    return json.dumps(
        {"family": family, "params": dict(params)}, sort_keys=True, separators=(",", ":")
    )


@dataclass(frozen=True)
class KernelSample:
    """One kernel of one family at one point of its parameter space.

    ``macs`` is the closed-form multiply-accumulate count (0 for families without MACs), ``work``
    what the family's bound is on (MACs, or tensor elements for memory-bound families), and
    ``weights`` the parameter elements its initializers hold.
    """

    family: str
    params: Mapping[str, Param]
    inputs: Mapping[str, Dims] = field(default_factory=dict)
    macs: int = 0
    work: int = 0
    weights: int = 0

    @property
    def digest(self) -> str:
        """sha256 hex of the canonical family + params."""
        return hashlib.sha256(canonical(self.family, self.params).encode()).hexdigest()

    @property
    def id(self) -> str:
        """``<family>-<10 hex>``: stable across runs, a valid file stem and campaign model name."""
        return f"{self.family}-{self.digest[:10]}"

    @property
    def weight_seed(self) -> int:
        """The seed the builder draws this kernel's weights from (same id, same bytes)."""
        return int(self.digest[:16], 16)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for the manifest."""
        return {
            "id": self.id,
            "family": self.family,
            "params": dict(self.params),
            "inputs": {name: list(dims) for name, dims in self.inputs.items()},
            "macs": self.macs,
            "work": self.work,
            "weights": self.weights,
        }


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``count`` samples of each family in ``families``, drawn from ``seed``.

    ``name`` is what a campaign writes after ``sweep:``; ad-hoc sweeps from the CLI are named
    after their families.
    """

    name: str
    families: tuple[str, ...]
    count: int
    seed: int = 0
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for the manifest."""
        return {
            "name": self.name,
            "families": list(self.families),
            "count": self.count,
            "seed": self.seed,
        }
