"""``[matrix]``: the lists whose cartesian product gives each job's settings.

Why a product and not a list of runs: the questions a fleet answers ("does a second thread help
on this board?") need every combination measured the same way, and a product says that in one
line per axis. Values are type-checked here; provider names are not, because only an agent
knows which providers its onnxruntime build has.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.campaign.tables import Table
from shared import session_specs
from shared.errors import UsageError
from shared.settings import BY_NAME

MATRIX_KEYS = ("threads", "inter_threads", "providers", "opt_levels", "batch_sizes",
               "concurrency", "sessions", "session_config")  # fmt: skip

# matrix key -> the job setting it varies (batch_sizes become input shapes instead)
MATRIX_SETTINGS = {
    "providers": "provider",
    "opt_levels": "opt_level",
    "threads": "threads",
    "inter_threads": "inter_threads",
    "session_config": "session_config",
    "concurrency": "concurrency",
    "sessions": "sessions",
}


@dataclass(frozen=True)
class Matrix:
    """The values of each axis; an empty tuple means not varied (the agent's default applies)."""

    providers: tuple[str, ...] = ()
    opt_levels: tuple[str, ...] = ()
    threads: tuple[int, ...] = ()
    inter_threads: tuple[int, ...] = ()
    batch_sizes: tuple[int, ...] = ()
    concurrency: tuple[int, ...] = ()
    sessions: tuple[int, ...] = ()
    session_config: tuple[dict[str, str], ...] = ()

    def combos(self) -> list[dict[str, Any]]:
        """Every combination as setting -> value, axes in MATRIX_SETTINGS order, the last
        varying fastest, values in the order written. No axis at all gives one empty combo.
        A ``providers`` item that is not a plain name is a provider list (``providers``)."""
        axes = {MATRIX_SETTINGS[key]: getattr(self, key) for key in MATRIX_SETTINGS}
        varied = {setting: values for setting, values in axes.items() if values}
        combos = [
            dict(zip(varied, values, strict=True)) for values in itertools.product(*varied.values())
        ]
        for combo in combos:
            if not isinstance(combo.get("provider", ""), str):
                combo["providers"] = _provider_list(combo.pop("provider"))
        return combos


def _provider_list(item: Any) -> list[dict[str, Any]]:
    """A ``[matrix] providers`` item as a provider list: one table or a list of them."""
    listed = session_specs.providers_from_wire(item if isinstance(item, list) else [item])
    return listed or []


def _provider_item(value: Any) -> str | None:
    """What is wrong with a ``[matrix] providers`` item: a name, ``{name, options}`` or a list
    of those (an ordered provider list, tried first to last)."""
    if isinstance(value, str):
        return _named(value)
    try:
        _provider_list(value)
    except UsageError as exc:
        return exc.message
    return None


def _config_item(value: Any) -> str | None:
    try:
        session_specs.config_from_wire(value)
    except UsageError as exc:
        return exc.message
    return None


def _at_least(low: int) -> Callable[[int], str | None]:
    return lambda value: None if value >= low else f"must be >= {low}, got {value}"


def _rule_of(setting: str) -> Callable[[Any], str | None]:
    """The range rule shared.settings gives ``setting`` (the one the agent applies)."""
    rule = BY_NAME[setting].rule
    return rule.problem if rule is not None else lambda _value: None


def _named(value: str) -> str | None:
    return None if value.strip() else "must not be blank"


def read_matrix(top: Table) -> Matrix:
    """The ``[matrix]`` table; each list non-empty, without repeats, of the right type."""
    table = top.table("matrix", MATRIX_KEYS)
    return Matrix(
        providers=tuple(table.items("providers", "a provider", _provider_item) or ()),
        opt_levels=tuple(table.items("opt_levels", "a string", _rule_of("opt_level")) or ()),
        threads=tuple(table.items("threads", "an integer", _rule_of("threads")) or ()),
        inter_threads=tuple(
            table.items("inter_threads", "an integer", _rule_of("inter_threads")) or ()
        ),
        batch_sizes=tuple(table.items("batch_sizes", "an integer", _at_least(1)) or ()),
        concurrency=tuple(table.items("concurrency", "an integer", _rule_of("concurrency")) or ()),
        sessions=tuple(table.items("sessions", "an integer", _rule_of("sessions")) or ()),
        session_config=tuple(
            session_specs.config_from_wire(item)
            for item in table.items("session_config", "a table", _config_item) or ()
        ),
    )
