"""Short names for the reasons a measurement is judged invalid, so a fleet's counts read
"other processes 3, frequency changed 1" instead of twenty distinct sentences.

The agent's verdict (agent.engine.verdict) words each reason for a person, with its numbers;
the collector, the report and the client group them by the kind here. A kind is found by
words the verdict keeps stable; a reason no kind knows is counted under its own first clause,
never dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

# (kind, words that start or appear in its reasons) in agent.engine.verdict's wording; the
# first kind that matches a reason is its kind.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("other processes", ("other processes used",)),
    ("frequency changed", ("cpu frequency changed",)),
    ("throttled", ("cpu throttled", "reported throttling")),
    ("noisy timings", ("timings too noisy",)),
    ("too few runs", ("runs at 99", "too few for a 95")),
    ("stopped by --max-seconds", ("--max-seconds cap",)),
)


def kinds_in(text: str) -> list[str]:
    """Every kind named in `text` (one reason, or several joined, as the CSV writes them), in
    KINDS order; text no kind knows is named by its first clause, so it is never lost."""
    lowered = text.lower()
    kinds = [kind for kind, needles in KINDS if any(needle in lowered for needle in needles)]
    if not kinds and text.strip():
        kinds.append(text.split(";")[0].split(":")[0].strip()[:60])
    return kinds


def reason_kind(reason: str) -> str:
    """The kind of one invalid reason ("other processes", "noisy timings", ...)."""
    return (kinds_in(reason) or ["no reason recorded"])[0]


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


REASONS_SHOWN = 3  # the commonest invalid kinds named in a line; the rest are counted


def kinds_text(kinds: dict[str, int], most: int = REASONS_SHOWN) -> str:
    """`other processes 3, frequency changed 1`: the commonest first, the rest as `N more
    reasons`."""
    ranked = sorted(kinds.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(f"{kind} {count}" for kind, count in ranked[:most])
    if len(ranked) > most:
        text += f", {len(ranked) - most} more reasons"
    return text


def summary(valid: int, invalid: int, failed: int, kinds: dict[str, int]) -> str:
    """The one line every command prints about a set of results, e.g. "24 results: 20 valid,
    4 invalid (other processes 3, frequency changed 1), 0 failed"."""
    why = kinds_text(kinds)
    invalid_text = f"{invalid} invalid" + (f" ({why})" if invalid and why else "")
    total = valid + invalid + failed
    results = f"{total} result{'s' if total != 1 else ''}"
    return f"{results}: {valid} valid, {invalid_text}, {failed} failed"
