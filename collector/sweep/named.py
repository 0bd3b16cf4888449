"""The named sweeps a campaign can run as ``sweep:NAME``, each a fixed seed and count.

Why fixed: a campaign file that says ``sweep:conv-small`` must mean the same kernels (same ids,
same bytes) on every host and in every year, so that results stored months apart train one
predictor. A new size is a new name, never a change to an old one.
"""

from __future__ import annotations

from functools import cache

from collector.sweep.record import KernelSample, SweepSpec
from collector.sweep.space import sample_sweep
from shared.errors import UsageError

_CNN = ("conv", "conv_bn_act", "conv_transpose", "pool", "binary", "activation", "movement")
# Family names are written out, never ``tuple(FAMILIES)``: a family added to the space later must
# not join a named sweep. ``all`` and ``smoke`` are the eleven of the first sweep; ``_ADDED`` the
# six that predicting whole models from it showed missing (docs/PREDICT.md).
_FIRST = (
    "conv",
    "conv_bn_act",
    "conv_transpose",
    "pool",
    "gemm",
    "matmul",
    "attention",
    "layernorm",
    "binary",
    "activation",
    "movement",
)
_ADDED = ("lrn", "skip_layernorm", "fc_large", "softmax_axis", "depthwise", "grouped")
# what predicting whole models from ``predict`` showed it lacked: large convs, kernels back to back,
# data movement, the elementwise ops exporters write (collector.sweep.space_context)
_CONTEXT = ("conv_large", "chain", "shuffle", "elementwise")

NAMED: dict[str, SweepSpec] = {
    spec.name: spec
    for spec in (
        SweepSpec("smoke", _FIRST, 2, 0, "2 kernels of each first family, to try a fleet"),
        SweepSpec("conv-small", ("conv", "conv_bn_act"), 16, 0, "16 Conv and 16 Conv blocks"),
        SweepSpec("cnn", _CNN, 24, 0, "24 of each family CNNs are made of"),
        SweepSpec("all", _FIRST, 32, 0, "32 of each of the eleven first families"),
        SweepSpec(
            "predict",
            (*_FIRST, *_ADDED),
            40,
            0,
            "the first round of a predictor (see docs/PREDICT.md)",
        ),
        SweepSpec(
            "predict-context",
            (*_FIRST, *_ADDED, *_CONTEXT),
            40,
            0,
            "predict's, and kernels in the context whole models give them (docs/PREDICT.md)",
        ),
    )
}


def named_sweep(name: str) -> SweepSpec:
    """The sweep called ``name``, or a UsageError listing the names."""
    spec = NAMED.get(name)
    if spec is None:
        raise UsageError(
            f"no sweep named {name!r}",
            f"the named sweeps are: {', '.join(NAMED)} (see `flopgap sweep list`)",
        )
    return spec


@cache
def named_samples(name: str) -> tuple[KernelSample, ...]:
    """The samples of sweep ``name``, drawn once per process (a campaign asks per model)."""
    return tuple(sample_sweep(named_sweep(name)))
