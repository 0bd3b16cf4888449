"""Input values per model, from ``[inputs]`` tables, checked at load: ``sr = { value = 16000 }``,
``state = { value = "zeros[2,1,128]" }``, ``audio = { file = "clip.npy" }``.

Why: a model whose control flow depends on an input's value (a sample rate picking an ``If``
branch) must run with that value on every board, and a value that does not fit the input must
fail once at load, not on each board. The values travel with each job as its ``input_values``
setting (``shared.input_values.values_to_wire``), bounded by ``MAX_FILE_BYTES`` per file and
by the protocol's cap on a job's settings. A value sets its input's shape, so an input given a
value takes no shape and no batch size. An integer or boolean scalar input with no value is
refused, as ``flopgap-agent bench`` refuses it: synthesized data never decides control flow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from collector.campaign.models import ModelInput, ModelRef
from collector.campaign.tables import Table, show, toml_key
from shared.errors import UsageError
from shared.input_values import (
    MAX_FILE_BYTES,
    InputValue,
    load_file,
    missing_scalar_values,
    parse_value,
)

Values = dict[str, InputValue]
_EXAMPLE = 'write { value = 16000 }, { value = "zeros[2,1,128]" } or { file = "clip.npy" }'


def is_value_entry(raw: Any) -> bool:
    """An ``[inputs]`` entry that gives a value or a file (a table), not a shape."""
    return isinstance(raw, dict)


def read_input_values(top: Table, models: Sequence[ModelRef], base: Path) -> dict[str, Values]:
    """The values ``[inputs]`` gives each model (``"*"`` entries, then the model's own table),
    each checked against the model's declared dtype and dims; files are read from ``base``."""
    table = top.table("inputs", None)
    wildcard = _entries(table.table("*", None), base) if "*" in table.raw else {}
    for name in wildcard:
        if not any(name in _names(model) for model in models):
            known = sorted({arg for model in models for arg in _names(model)})
            raise table.table("*", None).error(
                name,
                "no model of this campaign has an input of that name",
                f"the models' inputs: {', '.join(known) or 'none'}",
            )
    out: dict[str, Values] = {}
    for model in models:
        own = table.table(model.name, None) if model.name in table.raw else None
        values = {n: v for n, v in wildcard.items() if n in _names(model)}
        values |= _entries(own, base) if own is not None else {}
        for name, value in values.items():
            sub = own if own is not None and name in own.raw else table.table("*", None)
            _check(sub, name, value, model)
        _refuse_missing(top, model, values)
        if values:
            out[model.name] = values
    return out


def _names(model: ModelRef) -> list[str]:
    return [arg.name for arg in model.inputs]


def _entries(sub: Table, base: Path) -> Values:
    """The value entries of one ``[inputs.<model>]`` table, parsed (shapes are left out)."""
    return {
        name: _entry(sub, name, raw, base) for name, raw in sub.raw.items() if is_value_entry(raw)
    }


def _entry(sub: Table, name: str, raw: dict[str, Any], base: Path) -> InputValue:
    """One ``{ value = ... }`` or ``{ file = ... }`` table as an InputValue."""
    if set(raw) not in ({"value"}, {"file"}):
        raise sub.error(name, f"must hold exactly one of value or file, got {show(raw)}", _EXAMPLE)
    try:
        if "file" in raw:
            if not isinstance(raw["file"], str):
                raise sub.error(name, f"file must be a path, got {show(raw['file'])}", _EXAMPLE)
            path = Path(raw["file"]).expanduser()
            return load_file(name, path if path.is_absolute() else base / path, MAX_FILE_BYTES)
        return parse_value(name, _text(sub, name, raw["value"]))
    except UsageError as exc:
        if exc.message.startswith(str(sub.source)):
            raise
        raise sub.error(name, exc.message, exc.hint or _EXAMPLE) from None


def _text(sub: Table, name: str, value: Any) -> str:
    """A TOML value in the ``--input-value`` grammar: numbers, booleans, strings and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list):
        return json.dumps(value)
    raise sub.error(
        name, f"value must be a number, a string or a list, got {show(value)}", _EXAMPLE
    )


def _declared(model: ModelRef, name: str) -> ModelInput:
    return next(arg for arg in model.inputs if arg.name == name)


def _check(sub: Table, name: str, value: InputValue, model: ModelRef) -> None:
    """Refuse a value for no input of ``model``, or one its dtype or dims cannot take."""
    if name not in _names(model):
        raise sub.error(
            name,
            f"model {model.name!r} has no input of that name",
            f"its inputs: {', '.join(_names(model)) or 'none'}",
        )
    arg = _declared(model, name)
    if arg.dtype is None:
        raise sub.error(
            name,
            f"model {model.name!r}: input {name!r} is not a tensor of a numeric type",
            f"drop the value for {name!r} and let the agent synthesize it",
        )
    try:
        value.to_array(name, arg.dtype, arg.dims)
    except UsageError as exc:
        raise sub.error(
            name, f"model {model.name!r}: {exc.message}", exc.hint or _EXAMPLE
        ) from None


def _refuse_missing(top: Table, model: ModelRef, values: Mapping[str, InputValue]) -> None:
    """An integer or boolean scalar input of ``model`` with no value is refused, naming it."""
    kinds = [(a.name, _kind(a.dtype), a.dims) for a in model.inputs]
    missing = missing_scalar_values(kinds, values)
    if missing:
        lines = ", ".join(f"{toml_key(n)} = {{ value = ... }}" for n in missing)
        raise top.error(
            "inputs",
            f"model {model.name!r}: input {', '.join(repr(n) for n in missing)} is an integer or "
            "boolean scalar with no value: its value can decide the model's control flow, so "
            "flopgap does not make one up",
            f"add [inputs.{toml_key(model.name)}] {lines} (a sample rate, a flag or a count the "
            "model expects)",
        )


def _kind(dtype: str | None) -> str:
    return "" if dtype is None else np.dtype(dtype).kind


def without_valued(model: ModelRef, values: Mapping[str, InputValue]) -> ModelRef:
    """``model`` without the inputs given a value: their value sets their shape, so shape
    coverage and batch sizes leave them alone."""
    return replace(model, inputs=tuple(a for a in model.inputs if a.name not in values))
