"""The kernel predictor's number beside each measured model's p50, from a Store.

Why leave-one-family-out and not the device's current predictor: that predictor learned every
measured model, so its number for one of them would be in-sample and flatter it. Each whole
model's number here comes from ``collector.predict`` evaluation, whose fold for the model's
family trained on every other family only; the folds go into the report (``kernel_folds``) so
a reader can check. Sweep kernels are not whole models and get no number.

Columns added to the models table: ``kernel_predicted_ms``, ``kernel_lo_ms`` and
``kernel_hi_ms`` (the 90 % interval as two numbers, so a CSV reader sorts and plots them
without parsing text), ``kernel_error`` (predicted / the row's p50_ms - 1) and ``kernel_note``
(why a number is missing, or which op types were guessed by the pooled model).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from collector.predict.families import is_sweep, model_family
from shared.errors import FlopgapError

KERNEL_COLUMNS = ("kernel_predicted_ms", "kernel_lo_ms", "kernel_hi_ms", "kernel_error",
                  "kernel_note")  # fmt: skip
Match = tuple[str, int | None, str, str]  # agent, threads, provider, opt level


def match_of(agent: Any, threads: Any, provider: Any, opt_level: Any) -> Match:
    """What a models-table row and a predictor's device key agree on (not the ORT version)."""
    count = None if threads is None or threads != threads else int(threads)
    return str(agent), count, str(provider or "CPUExecutionProvider"), str(opt_level or "all")


def table_matches(models: pd.DataFrame) -> dict[Match, str]:
    """Each settings combination of the models table, to its report device label."""
    return {
        match_of(r.agent_id, r.threads, r.provider, r.opt_level): str(r.device)
        for r in models.itertuples()
    }


def sweep_hint(agents: Iterable[str], db: Path | str) -> str:
    names = ",".join(sorted(set(agents))) or "NAME"
    return f"run a sweep: `flopgap sweep run --agents {names} --name predict --db {db}`"


def key_contexts(store: Any, models: pd.DataFrame) -> tuple[list[tuple[str, Any]], list[str]]:
    """(report device, read context) per profiled device key of the models table, and the
    one missing line naming the devices that have no per-op profile to learn from. Decided
    from the stored rows alone, so a store without profiles costs no model load or training."""
    from collector.predict.context import Context
    from collector.predict.report_view import profiled_keys

    if models.empty:
        return [], []
    wanted = table_matches(models)
    rows = store.result_rows()
    profiled, bare = profiled_keys(rows)
    chosen = [(wanted[_match(k)], k) for k in profiled if _match(k) in wanted]
    have = {device for device, _ in chosen}
    unprofiled = sorted({wanted[_match(k)] for k in bare if _match(k) in wanted} - have)
    lacking = []
    if unprofiled:
        agents = {k.agent for k in bare if wanted.get(_match(k)) in unprofiled}
        lacking.append(
            f"no per-op profiles on {', '.join(unprofiled)}: no kernel predictor, so "
            f"kernel_predicted_ms is empty there; {sweep_hint(agents, store.path)}"
        )
    db = Path(store.path)
    return [(device, Context(store, db, key, rows=rows)) for device, key in chosen], lacking


def attach_kernel_predictions(
    models: pd.DataFrame, contexts: Iterable[tuple[str, Any]]
) -> tuple[pd.DataFrame, list[str], list[dict[str, Any]]]:
    """The models table with the kernel columns, what failed, and the folds used."""
    from collector.predict.evaluate import run_evaluation

    table = models.copy()
    for column in KERNEL_COLUMNS:
        table[column] = None
    lacking: list[str] = []
    folds: list[dict[str, Any]] = []
    for device, ctx in contexts:
        try:
            ev = run_evaluation(ctx, "all", False)
        except FlopgapError as exc:
            lacking.append(f"kernel predictions on {device} failed: {exc}")
            continue
        folds += [{"device": device, **asdict(f)} for f in ev.folds]
        _fill(table, device, ev.scored)
    return table, lacking, folds


def _match(key: Any) -> Match:
    return match_of(key.agent, key.threads, key.provider, key.opt_level)


def _fill(table: pd.DataFrame, device: str, scored: Iterable[Any]) -> None:
    """Write each scored model's numbers into its row on `device` (models of one name at
    several input shapes are named with their shapes in the table and stay empty). The error
    is against the row's own p50, the measured number printed beside it."""
    on_device = table["device"] == device
    for s in scored:
        hits = table.index[on_device & (table["model"] == s.model)]
        if len(hits) != 1 or is_sweep(model_family(s.model)):
            continue
        row = hits[0]
        lo, hi = s.interval_ms if s.interval_ms is not None else (None, None)
        note = s.note
        if s.missing:
            note = (note + "; " if note else "") + "pooled guess for " + ", ".join(s.missing)
        measured = table.at[row, "p50_ms"]
        error = None
        if s.predicted_ms is not None and measured is not None and measured > 0:
            error = s.predicted_ms / measured - 1
        for column, value in zip(KERNEL_COLUMNS, (s.predicted_ms, lo, hi, error, note),
                                 strict=True):  # fmt: skip
            table.at[row, column] = value
