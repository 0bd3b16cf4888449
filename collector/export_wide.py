"""The wide CSV (`flopgap export --csv out.csv --wide`): model (x settings) by device matrices
a spreadsheet opens as they are, each with a `.meta.json` sidecar naming its unit.

Three files share one shape (same rows, same columns, same order), so cell [i, j] of one is
cell [i, j] of the others:

- ``out.csv``: median p50 latency, ms;
- ``out_gflops.csv``: median achieved GFLOP/s (flops / p50);
- ``out_valid.csv``: each cell's validity, ``valid`` or ``invalid: <reasons>``.

Why a parallel matrix rather than a marker inside the number's cell: a cell such as ``12.3*``
turns the whole column into text for pandas (``read_csv`` gives ``object``) and for a
spreadsheet (no sums, no charts), and the number matrices keep the layout earlier exports had.
A cell's number comes from its valid results when it has any (as the report's findings do),
and from its invalid ones otherwise, which the validity matrix then says. A cell without a
successful result is empty in all three files, never 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.flops import CONVENTION

# a matrix row: the input shapes too, or a campaign's batch sizes would share one median
KEYS = ("model_name", "input_shapes", "provider", "threads", "opt_level")
DEVICE = "agent_id"  # a matrix column
VALID = "valid"
INVALID = "invalid"
# value column -> (file name suffix, unit)
MATRICES = {
    "p50_ms": ("", "median over the cell's results of p50 latency, ms"),
    "achieved_gflops": ("_gflops", "flops / the cell's p50 (the p50 matrix), 1e9 FLOP/s"),
}
VALIDITY_SUFFIX = "_valid"


def _cell(group: Any) -> dict[str, Any]:
    """One (model, settings, device) cell: medians of its valid results, or of its invalid
    ones when none is valid, and the validity word with the invalid results' reasons."""
    valid = group[group["valid"].eq(True)]
    used = valid if len(valid) else group
    reasons: list[str] = []
    for text in used["invalid_reasons"].dropna():
        reasons += [r for r in str(text).split("; ") if r and r not in reasons]
    marker = VALID if len(valid) else (f"{INVALID}: " + "; ".join(reasons) if reasons else INVALID)
    import pandas as pd

    p50 = pd.to_numeric(used["p50_ms"], errors="coerce").median(skipna=True)
    # one count per (model, input shapes), so one per cell
    flops = pd.to_numeric(used["flops"], errors="coerce").median(skipna=True)
    return {
        "p50_ms": p50,
        "achieved_gflops": flops / (p50 * 1e6) if p50 > 0 else float("nan"),
        "validity": marker,
    }


def cells(frame: Any) -> Any:
    """Every cell with a successful job result, indexed by KEYS + device (superseded invalid
    attempts, which a retry measured again, and error results are not cells)."""
    import pandas as pd

    final = frame[(frame["status"] == "ok") & (frame["job_result"] == 1)]
    index = [*KEYS, DEVICE]
    if final.empty:
        empty = pd.MultiIndex.from_tuples([], names=index)
        return pd.DataFrame(columns=["p50_ms", "achieved_gflops", "validity"], index=empty)
    rows = {key: _cell(group) for key, group in final.groupby(index, dropna=False, sort=True)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(list(rows), names=index)
    return table


def _matrix(table: Any, value: str) -> Any:
    matrix = table[value].unstack(DEVICE)
    matrix.columns.name = None  # one header row: the key names, then one column per device
    return matrix


def _meta(path: Path, value: str, unit: str, matrix: Any, files: dict[str, str]) -> Path:
    meta = {
        "layout": "matrix: one row per (" + ", ".join(KEYS) + "), one column per device "
        f"({DEVICE}); the other files listed share its rows and columns cell for cell",
        "index_columns": list(KEYS),
        "device_columns": [str(c) for c in matrix.columns],
        "value": value,
        "unit": unit,
        "cell": "a cell's number comes from its valid results when it has any, else from its "
        f"invalid ones; {files['validity']} says which ('{VALID}', or '{INVALID}: <reasons>')",
        "missing": "an empty cell: no successful result for that model and settings on that "
        "device (not measured, or failed: see the long CSV's status and error columns); never 0",
        "validity_values": {
            VALID: "at least one valid result; invalid ones of the cell are left out",
            f"{INVALID}: <reasons>": "no valid result; the number is the invalid results' median",
        },
        "why_a_parallel_validity_file": "a marker inside a number's cell would make the column "
        "text for pandas and for a spreadsheet; a matrix of the same shape keeps numbers numbers",
        "files": files,
        "flops_convention": CONVENTION,
        "rows": len(matrix),
    }
    target = path.with_name(path.name + ".meta.json")
    target.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return target


def write_matrices(frame: Any, path: Path) -> list[Path]:
    """Write the p50, GFLOP/s and validity matrices of `frame` (rows as collector.export.rows
    yields them) next to `path`, each with its `.meta.json`; returns every path written."""
    table = cells(frame)
    targets = {v: path.with_name(path.stem + suffix + path.suffix) for v, (suffix, _) in
               MATRICES.items()}  # fmt: skip
    targets["validity"] = path.with_name(path.stem + VALIDITY_SUFFIX + path.suffix)
    files = {value: target.name for value, target in targets.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    units = {v: unit for v, (_, unit) in MATRICES.items()}
    units["validity"] = f"'{VALID}' or '{INVALID}: <reasons>' per cell; empty: no result"
    written = []
    for value, target in targets.items():
        matrix = _matrix(table, value)
        matrix.to_csv(target)
        written += [target, _meta(target, value, units[value], matrix, files)]
    return written
