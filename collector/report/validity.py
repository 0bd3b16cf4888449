"""Which results the analysis may use: valid ones by default, and a count of the rest by reason.

Why: a report that fits and ranks 24 results all spoiled by another process (issue 14) reads
as a finding. Findings, fits, rankings and the roofline use valid results only unless
`--include-invalid` is given, and the report always says how many results were left out and
the most common reasons, grouped into short kinds ("other processes 3, frequency changed 1").
A result without a verdict (an older document) counts as valid.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from shared.verdicts import kinds_in


def reason_kinds(reasons: Any) -> list[str]:
    """The short kinds (shared.verdicts) of one result's invalid reasons, given as a list or
    as export's "; "-joined text."""
    if isinstance(reasons, (list, tuple)):
        text = "; ".join(str(r) for r in reasons)
    else:
        text = reasons if isinstance(reasons, str) else ""
    return kinds_in(text) or ["no reason recorded"]


def is_valid(value: Any) -> bool:
    """A result's `valid` cell as a bool: False only when it says so (None/NaN count valid)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no")
    if value is None or value != value:
        return True
    return bool(value)


@dataclass(frozen=True)
class Validity:
    """How many results were valid, how many invalid and why, and whether the invalid ones
    were used."""

    results: int
    valid: int
    invalid: int
    reasons: dict[str, int] = field(default_factory=dict)
    included: bool = False

    def counts(self) -> str:
        """E.g. "24 results: 20 valid, 4 invalid (other processes 3, frequency changed 1)"."""
        text = f"{self.results} results: {self.valid} valid, {self.invalid} invalid"
        if self.reasons:
            text += " (" + ", ".join(f"{k} {n}" for k, n in self.reasons.items()) + ")"
        return text

    def describe(self) -> str:
        """The counts and what the report did with the invalid ones."""
        if not self.invalid:
            return self.counts()
        if self.included:
            return (
                f"{self.counts()}; the invalid ones are included (--include-invalid): read "
                "findings, fits, rankings and roofline with care"
            )
        return (
            f"{self.counts()}; the {self.invalid} invalid ones are left out of findings, fits, "
            "rankings and roofline (--include-invalid uses them)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "valid": self.valid,
            "invalid": self.invalid,
            "invalid_reasons": dict(self.reasons),
            "invalid_included": self.included,
            "summary": self.describe(),
        }


def split(results: pd.DataFrame, include_invalid: bool) -> tuple[pd.DataFrame, Validity]:
    """The results the analysis uses (valid ones, or all with `include_invalid`) and the
    counts. `results` holds ok results with `valid` and, optionally, `invalid_reasons`."""
    if results.empty:
        return results, Validity(0, 0, 0, included=include_invalid)
    valid = results["valid"].map(is_valid).astype(bool)
    reasons: Counter[str] = Counter()
    column = results["invalid_reasons"] if "invalid_reasons" in results else None
    for index in results.index[~valid]:
        reasons.update(reason_kinds(None if column is None else column[index]))
    counts = Validity(
        results=len(results),
        valid=int(valid.sum()),
        invalid=int((~valid).sum()),
        reasons=dict(reasons.most_common()),
        included=include_invalid,
    )
    kept = results if include_invalid else results[valid]
    return kept.reset_index(drop=True), counts
