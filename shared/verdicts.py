"""Short names for the reasons a measurement is judged invalid, so a fleet's counts read
"other processes 3, frequency changed 1" instead of twenty distinct sentences.

The agent's verdict (agent.engine.verdict) words each reason for a person, with its numbers;
the collector and the client group them by the kind here. A kind is found by the reason's
opening words, which the verdict keeps stable; a reason no rule knows is counted as "other",
never dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

# (opening words of a reason, its kind), first match wins.
KINDS: tuple[tuple[str, str], ...] = (
    ("other processes used", "other processes"),
    ("cpu frequency changed", "frequency changed"),
    ("cpu throttled", "throttled"),
    ("the board reported throttling", "throttled"),
    ("timings too noisy", "noisy"),
    ("stopped by the --max-seconds cap", "capped"),
    ("p50 needs", "too few runs"),
    ("p90 needs", "too few runs"),
)
TOO_FEW_CI = "too few for a 95 % confidence interval"


def reason_kind(reason: str) -> str:
    """The kind of one invalid reason ("other processes", "noisy", ...; "other" if unknown)."""
    text = reason.strip().lower()
    for opening, kind in KINDS:
        if text.startswith(opening):
            return kind
    if TOO_FEW_CI in text:
        return "too few runs"
    return "other"


def count_kinds(reasons: Iterable[Iterable[str]]) -> dict[str, int]:
    """How many results had each kind of reason (a result counts once per kind), most
    common first."""
    counts: Counter[str] = Counter()
    for one in reasons:
        counts.update({reason_kind(r) for r in one})
    return dict(counts.most_common())


def tally(verdicts: Iterable[tuple[str, int | None, str | None]]) -> dict[str, Any]:
    """Count job results given as (status, valid, invalid_reasons JSON) rows (the store's
    ``verdicts``): {"valid", "invalid", "failed", "invalid_reasons": {kind: count}}."""
    counts: dict[str, Any] = {"valid": 0, "invalid": 0, "failed": 0}
    reasons: list[list[str]] = []
    for status, valid, invalid_reasons in verdicts:
        if status != "ok":
            counts["failed"] += 1
        elif valid:
            counts["valid"] += 1
        else:
            counts["invalid"] += 1
            reasons.append(list(json.loads(invalid_reasons or "[]")))
    counts["invalid_reasons"] = count_kinds(reasons)
    return counts


def summary(valid: int, invalid: int, failed: int, kinds: dict[str, int]) -> str:
    """The one line every command prints about a set of results, e.g. "24 results: 20 valid,
    4 invalid (other processes 3, frequency changed 1), 0 failed"."""
    why = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
    invalid_text = f"{invalid} invalid" + (f" ({why})" if invalid and why else "")
    total = valid + invalid + failed
    return (
        f"{total} result{'s' if total != 1 else ''}: {valid} valid, {invalid_text}, {failed} failed"
    )
