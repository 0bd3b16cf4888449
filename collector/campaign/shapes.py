"""Input shapes per model, from ``[inputs]`` and ``matrix.batch_sizes``, checked at load.

Why: onnxruntime needs a size for every dynamic dimension, and an agent that finds one missing
fails the job on every board. Checking each model's declared inputs here turns that into one
error at load that says which ``[inputs]`` line to add.

Batch sizes (``matrix.batch_sizes``) set dim 0 of a model's *batched* inputs: every input whose
declared dim 0 is dynamic, and every input given a shape in ``[inputs]``. Other inputs keep the
shape the model declares. Load fails, naming the model, when a batched input fixes dim 0 to
another value, or when a model has no batched input and its inputs' fixed dim 0 differs from a
batch size (the model's batch is baked in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collector.campaign.models import Dims, ModelInput, ModelRef
from collector.campaign.tables import Table, show, toml_key, usage
from shared.errors import UsageError
from shared.input_specs import parse_input_spec

Shapes = dict[str, list[int]]
_EXAMPLE = 'write a shape as "1x3x224x224" or [1, 3, 224, 224]'


def read_input_shapes(top: Table, models: Sequence[ModelRef], batching: bool) -> dict[str, Shapes]:
    """The shapes ``[inputs]`` gives each model: ``"*"`` entries, then the model's own table.

    A ``"*"`` entry applies to every model with an input of that name; a model's own entry wins.
    Every shape must keep the declared rank and fixed dims (dim 0 is the batch's when batching).
    """
    table = top.table("inputs", None)
    names = [model.name for model in models]
    for key in table.raw:
        if key != "*" and key not in names:
            raise table.error(
                key,
                "names no model of this campaign",
                f'model keys are file stems or zoo names ({", ".join(names)}), or "*"',
            )
    wildcard = _read_wildcard(table.table("*", None), models, batching)
    out: dict[str, Shapes] = {}
    for model in models:
        shapes = {name: shape for name, shape in wildcard.items() if name in _names(model)}
        if model.name in table.raw:
            shapes |= _read_own(table.table(model.name, None), model, batching)
        if shapes:
            out[model.name] = shapes
    return out


def _names(model: ModelRef) -> list[str]:
    return [arg.name for arg in model.inputs]


def _read_wildcard(sub: Table, models: Sequence[ModelRef], batching: bool) -> Shapes:
    """``[inputs."*"]``, each entry checked against every model that has that input."""
    shapes = {}
    for name in sub.raw:
        if isinstance(sub.raw[name], dict):
            continue  # a value or a file: collector.campaign.values reads it
        shape = _shape(sub, name)
        owners = [model for model in models if name in _names(model)]
        if not owners:
            known = sorted({arg for model in models for arg in _names(model)})
            raise sub.error(
                name,
                "no model of this campaign has an input of that name",
                f"the models' inputs: {', '.join(known) or 'none'}",
            )
        for model in owners:
            _agree(sub, name, shape, model, batching)
        shapes[name] = shape
    return shapes


def _read_own(sub: Table, model: ModelRef, batching: bool) -> Shapes:
    """The shapes in ``[inputs."<model>"]``, each naming an input of that model."""
    shapes = {}
    for name in sub.raw:
        if isinstance(sub.raw[name], dict):
            continue  # a value or a file: collector.campaign.values reads it
        shape = _shape(sub, name)
        if name not in _names(model):
            raise sub.error(
                name,
                f"model {model.name!r} has no input of that name",
                f"its inputs: {', '.join(_names(model)) or 'none'}",
            )
        _agree(sub, name, shape, model, batching)
        shapes[name] = shape
    return shapes


def _shape(sub: Table, name: str) -> list[int]:
    """One shape, written ``"1x3x224x224"`` (like ``--input``) or as a list of integers."""
    value = sub.raw[name]
    if isinstance(value, str):  # the same syntax as --input, read by the same parser
        try:
            parts = list(parse_input_spec(f"{name}={value}")[1])
        except UsageError:
            parts = [0]
    elif isinstance(value, list):
        parts = [p if isinstance(p, int) and not isinstance(p, bool) else 0 for p in value]
    else:
        value_hint = f"; an input's value is written {toml_key(name)} = {{ value = {value} }}"
        plain = isinstance(value, int | float) and not isinstance(value, bool)
        raise sub.error(name, f"is not a shape: {show(value)}", _EXAMPLE + value_hint * plain)
    if not parts or min(parts) < 1:
        raise sub.error(name, f"dims must be positive integers, got {show(value)}", _EXAMPLE)
    return parts


def _agree(sub: Table, name: str, shape: list[int], model: ModelRef, batching: bool) -> None:
    """Refuse a shape that changes the declared rank or a fixed dim of ``model``'s input."""
    dims = _declared(model, name).dims
    if dims is None:
        return
    if len(dims) != len(shape):
        raise sub.error(
            name,
            f"model {model.name!r} declares {len(dims)} dims {_show(dims)}, got {len(shape)}",
            f"give {len(dims)} dims",
        )
    clashes = [
        f"dim {pos}: model {want}, given {got}"
        for pos, (want, got) in enumerate(zip(dims, shape, strict=True))
        if want is not None and want != got and not (batching and pos == 0)
    ]
    if clashes:
        raise sub.error(
            name,
            f"disagrees with model {model.name!r} {_show(dims)}: {'; '.join(clashes)}",
            "change only the dims the model leaves dynamic (shown as ?)",
        )


def _declared(model: ModelRef, name: str) -> ModelInput:
    return next(arg for arg in model.inputs if arg.name == name)


def _show(dims: Dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def check_coverage(
    top: Table, model: ModelRef, given: Mapping[str, list[int]], batches: Sequence[int]
) -> None:
    """Refuse a model with a dynamic dim nothing sizes, or batch sizes it cannot take."""
    for arg in model.inputs:
        dims = arg.dims or ()
        open_dims = [
            pos
            for pos, dim in enumerate(dims)
            if dim is None and arg.name not in given and not (batches and pos == 0)
        ]
        if open_dims:
            spec = "x".join("?" if d is None else str(d) for d in dims)
            raise top.error(
                "inputs",
                f"model {model.name!r}: input {arg.name!r} {_show(dims)} has dynamic dims at "
                f"positions {open_dims} and no shape is given",
                f'add [inputs.{toml_key(model.name)}] {toml_key(arg.name)} = "{spec}" with '
                "each ? replaced by a size",
            )
    if batches:
        _check_batches(top, model, given, batches)


def batched_inputs(model: ModelRef, given: Mapping[str, list[int]]) -> list[str]:
    """The inputs whose dim 0 a batch size sets: dynamic dim 0, or a shape in ``[inputs]``."""
    return [
        arg.name for arg in model.inputs if arg.name in given or (arg.dims and arg.dims[0] is None)
    ]


def _check_batches(
    top: Table, model: ModelRef, given: Mapping[str, list[int]], batches: Sequence[int]
) -> None:
    """Refuse a batch size that a fixed dim 0 of ``model`` contradicts."""
    batched = batched_inputs(model, given)
    fixed = [
        (arg.name, arg.dims[0])
        for arg in model.inputs
        if arg.dims and arg.dims[0] is not None and (arg.name in batched or not batched)
    ]
    if not batched and not fixed:
        raise usage(
            top.source,
            "matrix.batch_sizes",
            f"model {model.name!r} has no input whose dim 0 a batch size could set",
            f"give its input shapes under [inputs.{toml_key(model.name)}]",
        )
    for name, dim in fixed:
        for batch in batches:
            if batch != dim:
                raise usage(
                    top.source,
                    "matrix.batch_sizes",
                    f"model {model.name!r} fixes dim 0 of input {name!r} to {dim}, so batch "
                    f"size {batch} cannot run",
                    f"drop {batch} from matrix.batch_sizes, or export {model.name!r} with a "
                    "dynamic batch dim",
                )


def job_shapes(model: ModelRef, given: Mapping[str, list[int]], batch: int | None) -> Shapes:
    """The ``input_shapes`` setting of one job: ``[inputs]``, then dim 0 set to ``batch``."""
    shapes = {name: list(shape) for name, shape in given.items()}
    if batch is None:
        return shapes
    for name in batched_inputs(model, given):
        base = shapes.get(name) or _concrete(_declared(model, name).dims or ())
        shapes[name] = [batch, *base[1:]]
    return shapes


def _concrete(dims: Dims) -> list[int]:
    """Declared dims with dim 0 left to the batch; load made sure the others are fixed."""
    return [0 if dim is None else dim for dim in dims]
