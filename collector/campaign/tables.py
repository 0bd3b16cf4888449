"""Typed reads from one TOML table, each error naming the file and the key's full path.

Why: a campaign is validated in full before anything is queued, and someone fixing a typo in a
fifty-line file needs ``campaign.toml: matrix.threads[1]: must be an integer >= 0, got -1``,
not a KeyError from the scheduler an hour later. One reader per table keeps the key path, the
known keys and the type rules in one place.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

# What each kind accepts. TOML booleans are not integers here, and inf/nan are not numbers.
KINDS: dict[str, Callable[[Any], bool]] = {
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: (
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ),
    "a string": lambda v: isinstance(v, str),
    "true or false": lambda v: isinstance(v, bool),
    "a table": lambda v: isinstance(v, dict),
    "a provider": lambda v: isinstance(v, str | dict | list),  # a name, a table or a list
}

_PLURALS = {"an integer": "integers", "a number": "numbers", "a string": "strings"}


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a UsageError naming the file (and the line, for malformed TOML)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read campaign file {path}: {exc.strerror}", "check the path"
        ) from exc
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line L, column C)"
        raise UsageError(
            f"{path}: malformed TOML: {exc}", "fix the TOML syntax at that line"
        ) from exc


def usage(source: Path, key: str, problem: str, hint: str) -> UsageError:
    """The one message form of every campaign error: ``<file>: <key path>: <problem>``."""
    return UsageError(f"{source}: {key}: {problem}", hint)


def toml_key(name: str) -> str:
    """``name`` as it is written in a TOML key path: bare when it can be, quoted otherwise."""
    return name if _BARE_KEY.fullmatch(name) else '"' + name.replace('"', '\\"') + '"'


def show(value: Any) -> str:
    """A value as the user wrote it, with its TOML type, for messages."""
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return f"{value!r} ({kind.get(type(value), 'table')})"


class Table:
    """One TOML table being read: its mapping, its key path and the file it came from.

    ``known`` lists the keys the table may hold; any other key is refused at once, with the
    known ones and the closest match in the hint. ``known=None`` accepts any key (tag and input
    tables, whose keys are the user's names).
    """

    def __init__(
        self, raw: Mapping[str, Any], path: str, source: Path, known: Sequence[str] | None
    ) -> None:
        self.raw, self.path, self.source = raw, path, source
        unknown = [key for key in raw if known is not None and key not in known]
        if known is not None and unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            where = f"[{self.path}]" if self.path else "the top level"
            raise self.error(
                unknown[0],
                "unknown key",
                (f"did you mean {close[0]!r}? " if close else "")
                + f"known keys in {where}: {', '.join(known)}",
            )

    def key(self, name: str) -> str:
        """The full key path of ``name`` in this table, e.g. ``matrix.threads``."""
        if not name:
            return self.path
        return f"{self.path}.{toml_key(name)}" if self.path else toml_key(name)

    def error(self, name: str, problem: str, hint: str, index: int | None = None) -> UsageError:
        """A UsageError saying which file and which key (and list item) is wrong, and what to do."""
        where = self.key(name) + ("" if index is None else f"[{index}]")
        return usage(self.source, where, problem, hint)

    def get(self, name: str, kind: str, default: Any = None) -> Any:
        """The value of ``name`` checked against ``kind`` (a KINDS key), or ``default``."""
        if name not in self.raw:
            return default
        value = self.raw[name]
        if not KINDS[kind](value):
            raise self.error(name, f"must be {kind}, got {show(value)}", f"write {kind} here")
        return value

    def require(self, name: str, kind: str, example: str) -> Any:
        """The value of a key the table must have; ``example`` shows a valid line."""
        if name not in self.raw:
            where = f"under [{self.path}]" if self.path else "at the top of the file"
            raise self.error(name, "missing required key", f"add {example} {where}")
        return self.get(name, kind)

    def count(self, name: str, default: int | None, low: int = 0) -> int | None:
        """An integer >= ``low``, or ``default`` when absent."""
        value = self.get(name, "an integer", default)
        if value is not None and value < low:
            raise self.error(name, f"must be >= {low}, got {value}", f"use a value >= {low}")
        return value

    def amount(
        self, name: str, default: float | None, low: float = 0.0, strict: bool = False
    ) -> float | None:
        """A finite number >= ``low`` (> ``low`` when ``strict``), as float, or ``default``."""
        value = self.get(name, "a number", None)
        if value is None:
            return default
        if value < low or (strict and value == low):
            bound = f"{'>' if strict else '>='} {low:g}"
            raise self.error(name, f"must be {bound}, got {value}", f"use a value {bound}")
        return float(value)

    def table(self, name: str, known: Sequence[str] | None) -> Table:
        """The sub-table ``name`` (empty when absent), itself checked for unknown keys."""
        raw = self.get(name, "a table", {})
        return Table(raw, self.key(name), self.source, known)

    def items(
        self, name: str, kind: str, check: Callable[[Any], str | None] | None = None
    ) -> list[Any] | None:
        """A non-empty list of ``kind`` values without repeats, or None when absent.

        ``check`` returns a problem for a bad element (a negative thread count, say) or None.
        """
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            plural = _PLURALS.get(kind, kind)
            raise self.error(
                name,
                f"must be a list of {plural}, got {show(value)}",
                f"write {toml_key(name)} = [...] with {plural} in the brackets",
            )
        if not value:
            raise self.error(name, "is an empty list", f"list at least one value, or drop {name}")
        for index, item in enumerate(value):
            problem = None if KINDS[kind](item) else f"must be {kind}, got {show(item)}"
            problem = problem or (check(item) if check else None)
            if problem:
                raise self.error(name, problem, f"fix item {index} of {name}", index)
            if item in value[:index]:
                raise self.error(name, f"lists {item!r} twice", "list each value once")
        return value
