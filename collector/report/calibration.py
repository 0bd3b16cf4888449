"""The calibrations a report uses: the latest per agent and thread count, with its verdict,
the spread over its rounds and when it was taken, so a reader can tell which peak and
bandwidth each roofline stands on (issue 14: a contaminated calibration moved a ridge point
from 9.8 to 13.5 FLOP/B and nothing in the report said which calibration it was).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from collector.report.frames import frame
from collector.report.roofline import number
from collector.report.roofs import UNKNOWN, calibration_roofs, size_text
from collector.report.units import iso_utc

# Per data cache level: its GB/s (None where not measured) and its size in bytes (None where
# sysfs gave none); from detail_json, so older calibrations without them load with None.
CACHE_COLUMNS: tuple[str, ...] = tuple(
    f"l{n}_{what}" for what in ("bandwidth_gbs", "bytes") for n in (1, 2, 3)
)
# One row per calibration run: peak GFLOP/s (1e9 FLOP/s) and bandwidth GB/s (1e9 byte/s);
# measured_at in Unix seconds (when stored), taken_at UTC ISO 8601 (when the agent took it),
# its verdict and the spread over its rounds ((best - worst) / best). The last five come from
# the store's detail_json when a record carries it.
CALIBRATION_COLUMNS: tuple[str, ...] = (
    "agent_id",
    "threads",
    "peak_gflops",
    "bandwidth_gbs",
    "measured_at",
    "taken_at",
    "verdict",
    "rounds",
    "peak_spread",
    "bandwidth_spread",
    *CACHE_COLUMNS,
)
NO_VERDICT = "valid (no verdict recorded: an older agent)"


def calibration_frame(records: Iterable[Mapping[str, Any]] | pd.DataFrame | None) -> pd.DataFrame:
    """The latest calibration per (agent_id, threads); older runs are dropped. Verdict, spread
    and when it was taken are read from `detail_json` where a record has it."""
    df = frame(records, CALIBRATION_COLUMNS, ("detail_json",))
    if df.empty:
        return df.loc[:, list(CALIBRATION_COLUMNS)]
    details = [_detail(v) for v in df.get("detail_json", pd.Series([None] * len(df)))]
    for column, read in (
        ("taken_at", lambda d, row: _zulu(d.get("measured_at")) or _utc(row["measured_at"])),
        ("verdict", lambda d, row: verdict_text(d)),
        ("rounds", lambda d, row: d.get("rounds")),
        ("peak_spread", lambda d, row: d.get("peak_spread")),
        ("bandwidth_spread", lambda d, row: d.get("bandwidth_spread")),
        *((c, lambda d, row, c=c: number(d.get(c))) for c in CACHE_COLUMNS),
    ):
        values = [
            row[column] if _present(row[column]) else read(d, row)
            for d, (_, row) in zip(details, df.iterrows(), strict=True)
        ]
        df[column] = pd.Series(values, index=df.index, dtype=object)
    df = df.loc[:, list(CALIBRATION_COLUMNS)]
    df = df.sort_values("measured_at", na_position="first", kind="stable")
    return df.drop_duplicates(["agent_id", "threads"], keep="last").reset_index(drop=True)


def verdict_text(detail: Mapping[str, Any]) -> str:
    """The verdict in words: valid, "invalid: REASONS", or NO_VERDICT when there is none."""
    if "valid" not in detail:
        return NO_VERDICT
    if detail["valid"] is not False:
        return "valid"
    return "invalid: " + "; ".join(detail.get("invalid_reasons") or ["no reason recorded"])


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _present(value: Any) -> bool:
    return value is not None and value == value


def _zulu(stamp: Any) -> str | None:
    """The agent's ISO 8601 UTC time written as every report time is ("…Z", not "+00:00")."""
    if not isinstance(stamp, str) or not stamp:
        return None
    return stamp[: -len("+00:00")] + "Z" if stamp.endswith("+00:00") else stamp


def _utc(seconds: Any) -> str | None:
    """Unix seconds as UTC ISO 8601 with "Z", as every time in the report, or None."""
    if not isinstance(seconds, (int, float)) or seconds != seconds:
        return None
    return iso_utc(seconds)


def usable(calibration: pd.DataFrame, include_invalid: bool) -> tuple[pd.DataFrame, list[str]]:
    """The calibrations a roofline may stand on: valid ones (the collector stores no other,
    but a frame from elsewhere may hold one), or all with `include_invalid`."""
    if include_invalid or calibration.empty:
        return calibration, []
    bad = calibration["verdict"].astype(str).str.startswith("invalid")
    lacking = [
        f"calibration of {r.agent_id} at {r.threads} threads left out: {r.verdict}"
        for r in calibration[bad].itertuples()
    ]
    return calibration[~bad].reset_index(drop=True), lacking


def used_lines(models: pd.DataFrame, calibration: pd.DataFrame) -> list[str]:
    """One line per device naming the calibration its roofline used: figures, ridge point,
    when it was taken, its verdict and the spread over its rounds."""
    by_key = {(str(r.agent_id), _int(r.threads)): r for r in calibration.itertuples()}
    lines = []
    for device, group in models.groupby("device", sort=True):
        head = group.iloc[0]
        cal = by_key.get((str(head["agent_id"]), _int(head["threads"])))
        if cal is None:
            continue
        peak, bw = number(cal.peak_gflops), number(cal.bandwidth_gbs)
        ridge = f"{peak / bw:.1f} FLOP/B" if peak and bw else "n/a"
        lines.append(
            f"{device}: calibration of {cal.agent_id} at {cal.threads} threads taken "
            f"{cal.taken_at or 'at an unknown time'}: peak {_fixed(peak)} GFLOP/s, bandwidth "
            f"{_fixed(bw)} GB/s, ridge {ridge}; {cal.verdict}; {_spread(cal)}; "
            f"{_cache_roofs(cal)}"
        )
    return lines


def _cache_roofs(cal: Any) -> str:
    """The cache roofs in words, or the stated fallback when there are none."""
    found = calibration_roofs(cal)
    if not found:
        return UNKNOWN
    return "cache roofs " + ", ".join(
        f"{r.level} {r.bandwidth_gbs:.1f} GB/s ({size_text(r.size_bytes or 0)})" for r in found
    )


def _spread(cal: Any) -> str:
    rounds = number(cal.rounds)
    if rounds is None:
        return "spread not recorded (one run)"
    peak, bw = number(cal.peak_spread), number(cal.bandwidth_spread)
    shown = ", ".join(
        f"{what} {value:.1%}" for what, value in (("peak", peak), ("bandwidth", bw))
        if value is not None
    )  # fmt: skip
    return f"best of {int(rounds)} rounds" + (f", spread {shown}" if shown else "")


def _int(value: Any) -> int | None:
    n = number(value)
    return None if n is None else int(n)


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
