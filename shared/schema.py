"""A small declared schema for JSON values that peers send: types, ranges, lengths and
required keys, checked in one pass that names the offending field.

Why not msgspec or pydantic: `shared/` is imported by the agent, which installs alone on a
board with only the standard library, onnxruntime, psutil, pyzmq and numpy
(tests/test_agent_is_light.py). The documents checked here are small JSON objects already
parsed by `shared.protocol`, so a few dozen lines of declared specs do the job without a
second dependency, and the same spec runs on both sides.

A spec is a value: `Num`, `Text`, `Flag`, `ListOf`, `Obj` or `ANY`. `check(spec, value, path)`
raises `ProtocolError("PATH: what is wrong")` or returns None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ProtocolError

__all__ = ["ANY", "Flag", "ListOf", "Num", "Obj", "Scalar", "Spec", "Text", "check", "short"]


@dataclass(frozen=True)
class Num:
    """A finite number (an int when `integer`) in [low, high] (low excluded when `strict`)."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    strict: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Text:
    """A string of at most `max_len` characters (and at least `min_len`)."""

    max_len: int = 256
    min_len: int = 0
    nullable: bool = False


@dataclass(frozen=True)
class Flag:
    """true or false."""

    nullable: bool = False


@dataclass(frozen=True)
class ListOf:
    """A list of at most `max_len` items, each matching `item`."""

    item: Spec
    max_len: int = 1024
    min_len: int = 0
    nullable: bool = False


@dataclass(frozen=True)
class Obj:
    """An object: `fields` are checked when present, `required` must be; other keys are
    allowed (a newer peer may add optional fields) unless `closed`, and when `values` is
    set every other key's value must match it, up to `max_keys` keys."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    values: Spec | None = None
    max_keys: int = 256
    closed: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Scalar:
    """A string of at most `max_len` characters, a finite number, true/false or null; with
    `list_len`, also a list or object of at most that many such values (three levels deep
    at most): any JSON, but every string in it bounded."""

    max_len: int = 256
    list_len: int = 0
    nullable: bool = True


@dataclass(frozen=True)
class _Any:
    """Anything JSON (already bounded by the protocol's field size limit)."""

    nullable: bool = True


ANY = _Any()
Spec = Num | Text | Flag | ListOf | Obj | Scalar | _Any


def short(value: object, limit: int = 60) -> str:
    """A repr short enough for an error message, whatever the peer sent."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(path: str, problem: str) -> ProtocolError:
    return ProtocolError(f"{path}: {problem}", hint="fix the sender; nothing was stored")


def check(spec: Spec, value: Any, path: str) -> None:
    """Raise ProtocolError naming `path` (e.g. ``latency_ms.p50``) unless `value` fits."""
    if value is None:
        if not spec.nullable:
            raise _fail(path, "is missing (null)")
        return
    if isinstance(spec, Num):
        _check_num(spec, value, path)
    elif isinstance(spec, Text):
        _check_text(spec, value, path)
    elif isinstance(spec, Flag):
        if not isinstance(value, bool):
            raise _fail(path, f"must be true or false, got {short(value)}")
    elif isinstance(spec, ListOf):
        _check_list(spec, value, path)
    elif isinstance(spec, Obj):
        _check_obj(spec, value, path)
    elif isinstance(spec, Scalar):
        _check_scalar(spec, value, path)


def _check_text(spec: Text, value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, got {type(value).__name__}")
    if not spec.min_len <= len(value) <= spec.max_len:
        raise _fail(path, f"must be {spec.min_len}-{spec.max_len} characters, got {len(value)}")


def _check_list(spec: ListOf, value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _fail(path, f"must be a list, got {type(value).__name__}")
    if not spec.min_len <= len(value) <= spec.max_len:
        raise _fail(path, f"must hold {spec.min_len}-{spec.max_len} items, got {len(value)}")
    for index, item in enumerate(value):
        check(spec.item, item, f"{path}[{index}]")


def _check_scalar(spec: Scalar, value: Any, path: str, depth: int = 0) -> None:
    if isinstance(value, (list, dict)) and spec.list_len and depth < 3:
        if len(value) > spec.list_len:
            raise _fail(path, f"must hold at most {spec.list_len} items, got {len(value)}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                check(Text(spec.max_len), key, f"{path} key")
            _check_scalar(spec, item, f"{path}[{short(key, 20)}]", depth + 1)
    elif isinstance(value, str):
        check(Text(spec.max_len), value, path)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_num(Num(), value, path)
    elif value is not None and not isinstance(value, bool):
        raise _fail(path, f"must be a string, number, true/false or null, got "
                          f"{type(value).__name__}")  # fmt: skip


def _check_num(spec: Num, value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, f"must be a number, got {short(value)}")
    if spec.integer and not isinstance(value, int):
        raise _fail(path, f"must be a whole number, got {short(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, f"must be finite, got {value}")
    if spec.low is not None and (value < spec.low or (spec.strict and value == spec.low)):
        raise _fail(path, f"must be {'>' if spec.strict else '>='} {spec.low:g}, got {value}")
    if spec.high is not None and value > spec.high:
        raise _fail(path, f"must be <= {spec.high:g}, got {value}")


def _check_obj(spec: Obj, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, f"must be an object, got {type(value).__name__}")
    if len(value) > spec.max_keys:
        raise _fail(path, f"has {len(value)} keys, over {spec.max_keys}")
    missing = sorted(spec.required - value.keys())
    if missing:
        raise _fail(path, f"lacks {', '.join(missing)}")
    for key, item in value.items():
        sub = spec.fields.get(key)
        if sub is None:
            if spec.closed:
                raise _fail(path, f"has an unknown key {short(key)}")
            sub = spec.values
        if sub is not None:
            check(sub, item, f"{path}.{key}")
