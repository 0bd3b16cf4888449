"""A whole model's family: the unit leave-one-family-out evaluation holds out.

Why families and not models: resnet18 and resnet50 share every kernel shape class, so scoring
resnet50 with resnet18 in the training set flatters the predictor. A sweep kernel's family is
its sweep family (``sweep:conv``); any other model's is the leading word of its name, with the
exporters' prefixes dropped: ``light_resnet50`` and ``resnet18`` are both ``resnet``,
``inception_v1`` and ``inception_v2`` both ``inception``.
"""

from __future__ import annotations

import re

from collector.sweep.space import FAMILIES

SWEEP_PREFIX = "sweep:"
_PREFIXES = ("light_", "bvlc_", "tiny_", "torchvision_", "timm_")
_SWEEP_ID = re.compile(r"([a-z_]+)-[0-9a-f]{10}")
_WORD = re.compile(r"[a-z]+")


def model_family(name: str) -> str:
    """``sweep:<family>`` for a sweep kernel id, else the model name's leading word."""
    match = _SWEEP_ID.fullmatch(name)
    if match and match.group(1) in FAMILIES:
        return SWEEP_PREFIX + match.group(1)
    text = name.lower()
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix) :], True
    word = _WORD.match(text)
    return word.group(0) if word else text


def is_sweep(family: str) -> bool:
    """Whether a family is a sweep's kernels (what `--train-on sweeps` keeps)."""
    return family.startswith(SWEEP_PREFIX)
