"""Parse ``--input NAME=DIMS`` flags into concrete shapes.

Why: the agent CLI, ``flopgap flops`` and the campaign loader all take shapes from the user in the
same spelling, so they share one parser and one set of error messages. Parsing needs no model;
checking a shape against a model's declared inputs is ``agent.inputs.shapes``. It lives in
shared/ so the collector parses shapes without importing the agent.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import UsageError

Shape = tuple[int, ...]

_SPEC_HINT = "write --input NAME=DxDx..., e.g. --input images=1x3x224x224"


def parse_input_spec(text: str) -> tuple[str, Shape]:
    """Parse one ``--input NAME=1x3x224x224`` flag into (name, elements per axis).

    The name is everything before the last ``=``, so names such as ``input:0`` survive. ``NAME=``
    is refused rather than read as rank 0: a scalar input has nothing to resolve, and an empty
    shape is far more often a shell variable that expanded to nothing.
    """
    name, sep, dims = text.rpartition("=")
    name, dims = name.strip(), dims.strip()
    if not sep or not name:
        raise UsageError(f"--input {text!r} names no input", _SPEC_HINT)
    if not dims:
        raise UsageError(
            f"--input {text!r} gives no shape",
            f"a scalar (rank-0) input needs no --input; if its value matters, give it with "
            f"--input-value {name}=VALUE; otherwise " + _SPEC_HINT,
        )
    parts = dims.lower().replace(",", "x").split("x")  # 1x3x224x224 or 1,3,224,224
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise UsageError(f"--input {text!r}: dimensions must be positive integers", _SPEC_HINT)
    shape = tuple(int(part) for part in parts)
    if 0 in shape:
        raise UsageError(
            f"--input {text!r}: a zero dimension makes an empty tensor, with nothing to time",
            _SPEC_HINT,
        )
    return name, shape


def parse_input_specs(texts: Sequence[str]) -> dict[str, Shape]:
    """Every ``--input`` flag of one command; naming an input twice is a mistake, not an
    override (`bench`, `flopgap flops` and campaigns all read shapes this way)."""
    shapes: dict[str, Shape] = {}
    for text in texts:
        name, shape = parse_input_spec(text)
        if name in shapes:
            raise UsageError(f"input '{name}' given twice", hint="pass each --input once")
        shapes[name] = shape
    return shapes
