"""Give every input of a loaded model a concrete shape, from the model itself or from --input.

Why: a benchmark needs a size for every dynamic dimension before it can allocate feeds, and a
user who forgot one (or described another model) should learn which input, which position and
which flag fixes it, not read an onnxruntime shape error after the model has loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from shared.errors import UsageError
from shared.input_specs import Shape


class NodeArgLike(Protocol):
    """What flopgap reads from an ``onnxruntime.NodeArg`` (``session.get_inputs()``)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def shape(self) -> Sequence[int | str | None]: ...


def resolve_shapes(
    inputs: Sequence[NodeArgLike], overrides: Mapping[str, Shape]
) -> dict[str, Shape]:
    """Give every model input a concrete shape (elements per axis), from the model or --input.

    An override replaces the whole declared shape. It must keep the rank and agree on every fixed
    dimension, because a disagreement means the user is describing another model. onnxruntime
    reports an input of unknown rank as ``[]``, like a scalar, so such an input takes any rank.
    """
    unknown = sorted(set(overrides) - {arg.name for arg in inputs})
    if unknown:
        listing = "; ".join(f"{arg.name} {_show(arg.shape)}" for arg in inputs)
        raise UsageError(
            f"--input names {', '.join(map(repr, unknown))}, not an input of this model "
            f"(its inputs: {listing})",
            "use one of the listed input names",
        )
    return {
        arg.name: _checked_override(arg, overrides[arg.name])
        if arg.name in overrides
        else _declared_shape(arg)
        for arg in inputs
    }


def _show(shape: Sequence[int | str | None]) -> str:
    """Render a declared shape as ``[batch, 3, ?]`` for messages."""
    return "[" + ", ".join("?" if dim is None else str(dim) for dim in shape) + "]"


def _is_fixed(dim: int | str | None) -> bool:
    """A dimension is fixed when the model gives it as a non-negative integer."""
    return isinstance(dim, int) and dim >= 0


def _suggest(name: str, shape: Sequence[int | str | None]) -> str:
    """The --input flag to pass, with fixed dimensions filled in and each dynamic one as ``?``."""
    return f"--input {name}=" + "x".join(str(dim) if _is_fixed(dim) else "?" for dim in shape)


def _declared_shape(arg: NodeArgLike) -> Shape:
    """The model's own shape for ``arg``, or a UsageError saying which --input would fix it."""
    dynamic = [(pos, dim) for pos, dim in enumerate(arg.shape) if not _is_fixed(dim)]
    if not dynamic:
        return tuple(dim for dim in arg.shape if isinstance(dim, int))
    where = ", ".join(
        f"position {pos} ({dim!r})" if isinstance(dim, str) else f"position {pos} (unnamed)"
        for pos, dim in dynamic
    )
    raise UsageError(
        f"input {arg.name!r} {_show(arg.shape)} has a dynamic dimension at {where} "
        "and no --input gives its size",
        f"pass {_suggest(arg.name, arg.shape)} with each ? replaced by a size",
    )


def _checked_override(arg: NodeArgLike, shape: Shape) -> Shape:
    """Return ``shape`` once it keeps the declared rank and every fixed dimension of ``arg``."""
    declared = list(arg.shape)
    if not declared:
        return shape
    if len(declared) != len(shape):
        raise UsageError(
            f"--input {arg.name}: {len(shape)} dimensions given, but the model declares "
            f"{len(declared)}: {_show(declared)}",
            f"give {len(declared)} dimensions: {_suggest(arg.name, declared)}",
        )
    clashes = [
        f"position {pos}: model {want}, given {got}"
        for pos, (want, got) in enumerate(zip(declared, shape, strict=True))
        if _is_fixed(want) and want != got
    ]
    if clashes:
        raise UsageError(
            f"--input {arg.name}: disagrees with the model's fixed dimensions "
            f"{_show(declared)} ({'; '.join(clashes)})",
            "change only the dynamic dimensions (those not given as integers)",
        )
    return shape
