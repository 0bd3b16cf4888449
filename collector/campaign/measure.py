"""``[measure]``: how each job measures, passed to the agent as job settings.

Why here and not in the matrix: these values describe the measurement method, which must stay
the same across a campaign so that its results compare. Each key has the name of the job
setting it becomes (``agent.engine.options.SETTING_KEYS``), except ``repeats``, ``target_ci`` and
``profile_ops``, which the collector keeps on the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.campaign.tables import Table

# setting -> smallest allowed value; integers
_COUNTS = {"min_iterations": 1, "warmup_runs": 0}
# setting -> (bound, strict); numbers: seconds, milliseconds, ratios, CPU cores
_AMOUNTS = {
    "min_seconds": (0.0, False),
    "max_seconds": (0.0, True),
    "warmup_seconds": (0.0, False),
    "max_cv": (0.0, True),
    "max_foreign_cpu_cores": (0.0, False),
    "sample_interval_ms": (0.0, True),
}
MEASURE_KEYS = (*_COUNTS, *_AMOUNTS, "repeats", "target_ci", "profile_ops")


@dataclass(frozen=True)
class Measure:
    """The ``[measure]`` table: the job settings written there, and the collector's own keys."""

    settings: dict[str, int | float]
    repeats: int = 1
    target_ci: float | None = None
    profile_ops: bool = False


def read_measure(top: Table) -> Measure:
    """The ``[measure]`` table (optional: the agent's defaults apply to what is not written)."""
    table = top.table("measure", MEASURE_KEYS)
    settings: dict[str, int | float] = {}
    for key, low in _COUNTS.items():
        count = table.count(key, None, low)
        if count is not None:
            settings[key] = count
    for key, (bound, strict) in _AMOUNTS.items():
        amount = table.amount(key, None, bound, strict)
        if amount is not None:
            settings[key] = amount
    if settings.get("min_seconds", 0.0) > settings.get("max_seconds", float("inf")):
        raise table.error(
            "min_seconds", "is above measure.max_seconds", "raise max_seconds or lower min_seconds"
        )
    target_ci = table.amount("target_ci", None, 0.0, strict=True)
    if target_ci is not None and target_ci >= 1.0:
        raise table.error(
            "target_ci", f"must be below 1, got {target_ci}", "use a fraction such as 0.02"
        )
    return Measure(
        settings=settings,
        repeats=table.count("repeats", 1, 1) or 1,
        target_ci=target_ci,
        profile_ops=bool(table.get("profile_ops", "true or false", False)),
    )
