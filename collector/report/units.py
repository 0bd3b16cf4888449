"""How the report prints a number, one rule per kind of quantity, shared by text and HTML.

Why: a reader scanning a fleet report should never decode "1.796e+09" (a time), "115.0" (a
count), "0.05656" (a share) or "3.2e+09" (FLOPs). Times are ISO 8601 UTC, counts integers,
shares percentages, costs SI-prefixed with their unit (GFLOP, MB), latencies ms. A missing
value is "n/a", never 0. `cell(column, value)` picks the rule from the column's name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from collector.report.roofline import number

NA = "n/a"
_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))

# Column names (of any report table) by the kind of quantity they hold.
INTEGER_COLUMNS = frozenset(
    {"nodes", "results", "threads", "rounds", "n", "rank", "fused_nodes", "models", "repeats"}
)
TIME_COLUMNS = frozenset({"measured_at"})
SHARE_COLUMNS = frozenset(
    {"time_share", "flop_share", "excess_share", "efficiency", "peak_spread", "bandwidth_spread"}
    | {"kernel_error"}
)
SI_COLUMNS = {"flops": "FLOP", "macs": "MAC", "params": "", "bytes": "B"}
SI_COLUMNS.update({f"{level}_bytes": "B" for level in ("l1", "l2", "l3")})
RATIO_COLUMNS = frozenset(
    {"slowdown", "residual", "latency_ratio", "peak_ratio", "roofline_ratio", "gap"}
)


def iso_utc(seconds: Any) -> str:
    """Unix seconds as ISO 8601 UTC ("2026-12-03T17:19:01Z"); n/a when missing."""
    v = number(seconds)
    if v is None:
        return NA
    stamp = dt.datetime.fromtimestamp(v, dt.timezone.utc).replace(tzinfo=None)
    return stamp.isoformat(timespec="seconds") + "Z"


def integer(value: Any) -> str:
    """A count as an integer ("115", never "115.0")."""
    v = number(value)
    return NA if v is None else f"{round(v):d}"


def percent(value: Any, digits: int = 1) -> str:
    """A share 0..1 as a percentage ("5.7 %")."""
    v = number(value)
    return NA if v is None else f"{v * 100:.{digits}f} %"


def si(value: Any, unit: str = "") -> str:
    """A quantity with an SI prefix and 3 significant digits, no exponent ("3.21 GFLOP")."""
    v = number(value)
    if v is None:
        return NA
    for scale, prefix in _PREFIXES:
        if abs(v) >= scale:
            return f"{_sig3(v / scale)} {prefix}{unit}".rstrip()
    return f"{_sig3(v)} {unit}".rstrip()


def _sig3(v: float) -> str:
    """3 significant digits without exponent notation (123, 12.3, 1.23, 0.0123)."""
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    text = f"{v:.3g}"
    return f"{v:f}".rstrip("0").rstrip(".") if "e" in text else text


def ms(value: Any) -> str:
    """A latency in ms with 3 significant digits ("12.3", "0.482")."""
    v = number(value)
    return NA if v is None else _sig3(v)


def ratio(value: Any) -> str:
    """A ratio such as "3.10×"."""
    v = number(value)
    return NA if v is None else f"{v:.2f}×"


def plain(value: Any) -> str:
    """A measured number with 3 significant digits, no exponent."""
    v = number(value)
    return NA if v is None else _sig3(v)


def tick(value: float, _position: Any = None) -> str:
    """A log-axis tick as a plain number ("0.5", "2", "1000"), or SI above 10^4 ("10k")."""
    if value >= 1e4:
        return si(value).replace(" ", "")
    return _sig3(value)


def column_formatter(column: str) -> Callable[[Any], str]:
    """The rule for a report column, chosen by its name."""
    if column in TIME_COLUMNS:
        return iso_utc
    if column in INTEGER_COLUMNS:
        return integer
    if column in SHARE_COLUMNS:
        return percent
    if column in SI_COLUMNS:
        unit = SI_COLUMNS[column]
        return lambda v: si(v, unit)
    if column in RATIO_COLUMNS:
        return ratio
    if column.endswith("_ms"):
        return ms
    return plain


def cell(column: str, value: Any) -> str:
    """A value of `column` as the report prints it; text stays text, bools are yes/no."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if value is None or (isinstance(value, float) and value != value):
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return column_formatter(column)(value)
