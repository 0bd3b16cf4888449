"""The user's input dims: validated against the model, and spread to every shared symbol.

A model input declared ``[batch, 3, H, W]`` accepts ``--input x=1x3x224x224``; any other
input that uses ``batch``, ``H`` or ``W`` gets the same sizes. A fixed dim can't be changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral

import onnx

from collector.flops.tensors import Dims, dims_of
from shared.errors import UsageError


def real_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are fed at run time (IR < 4 also lists initializers as inputs)."""
    inits = {t.name for t in graph.initializer}
    return [vi for vi in graph.input if vi.name not in inits]


def _user_dims(name: str, dims: Sequence[int]) -> list[int]:
    """Validate one user-given shape: positive integers (numpy integers welcome)."""
    ok = all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in dims)
    if isinstance(dims, (str, bytes)) or not ok:
        raise UsageError(
            f"input '{name}': dims must be positive integers, got {dims!r}",
            hint="write them as NAME=1x3x224x224",
        )
    return [int(d) for d in dims]


def _bind(name: str, declared: Dims, want: list[int], symbols: dict[str, int]) -> None:
    """Check ``want`` against the declared dims and record what each symbolic dim means."""
    if not declared and want:
        raise UsageError(
            f"input '{name}' is a scalar (rank 0), you gave it dims {want}",
            hint=f"a scalar input needs no --input; if its value matters, give it with "
            f"--input-value {name}=VALUE",
        )
    if len(declared) != len(want):
        raise UsageError(
            f"input '{name}' has rank {len(declared)} {list(declared)}, you gave {want}",
            hint=f"give {len(declared)} dims for '{name}'",
        )
    for i, (d, w) in enumerate(zip(declared, want, strict=True)):
        if isinstance(d, int) and d != w:
            raise UsageError(
                f"input '{name}' dim {i} is fixed at {d} in the model, you gave {w}",
                hint=f"use {d} for dim {i} of '{name}'",
            )
        if isinstance(d, str) and d != "?":
            if symbols.setdefault(d, w) != w:
                raise UsageError(
                    f"dim '{d}' was given as both {symbols[d]} and {w}",
                    hint=f"inputs sharing dim '{d}' must get the same size for it",
                )


def resolve_inputs(
    graph: onnx.GraphProto, input_shapes: Mapping[str, Sequence[int]] | None
) -> dict[str, list[int | str] | None]:
    """Dims of each real input after applying ``input_shapes`` and the symbols they define."""
    declared = {vi.name: dims_of(vi.type)[1] for vi in real_inputs(graph)}
    given = dict(input_shapes or {})
    for name in given:
        if name not in declared:
            raise UsageError(
                f"the model has no input named '{name}'",
                hint=f"its inputs are: {', '.join(declared) or '(none)'}",
            )
    symbols: dict[str, int] = {}
    resolved: dict[str, list[int | str] | None] = {}
    for name, dims in declared.items():
        if name in given:
            want = _user_dims(name, given[name])
            if dims is not None:
                _bind(name, dims, want, symbols)
            resolved[name] = list(want)
    for name, dims in declared.items():
        if name not in resolved and dims is not None:
            resolved[name] = [symbols.get(d, d) if isinstance(d, str) else d for d in dims]
        elif name not in resolved:
            resolved[name] = None  # unknown rank and not given: inference cannot help
    return resolved
