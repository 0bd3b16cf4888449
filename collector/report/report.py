"""The Report: every table of the analysis, what was missing, and the FLOPs convention.

Tables stay pandas frames for rendering; ``to_json`` and ``write_csv_dir`` turn them into plain
values where a missing number is null or an empty cell, never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from collector.report.culprits import with_culprits
from collector.report.fits import describe_residual
from collector.report.validity import Validity

REPORT_FORMAT = "flopgap-report/1"
UNITS = {
    "flops": "floating-point operations per inference (see flops_convention)",
    "bytes": "bytes read + written per inference, summed over nodes",
    "intensity": "FLOP/byte",
    "p50_ms": "median latency, ms",
    "achieved_gflops": "flops / p50, 1e9 FLOP/s",
    "peak_gflops": "calibrated peak, 1e9 FLOP/s",
    "bandwidth_gbs": "calibrated memory bandwidth, 1e9 byte/s",
    "efficiency": "achieved / peak FLOP/s",
    "attainable_ms": "flops / min(peak, intensity x bandwidth)",
    "slowdown": "p50 / attainable_ms",
    "residual": "p50 / latency predicted by the device's log-log FLOPs fit",
    "time_share": "op type's share of summed kernel time",
    "flop_share": "op type's share of counted FLOPs",
    "excess_share": "time_share - flop_share",
    "gap": "latency_ratio / peak_ratio",
    "p90_ms": "90th percentile latency, ms (median over repeats)",
    "n": "repeats the latency medians are over",
    "model_ops": "per (device, model, op type): shares of that model's kernel time and FLOPs",
    "culprits": "op types of a flagged model whose time share most exceeds their FLOP share",
}
# Units of the columns only a report built from a Store has (frames-only JSON stays as it was).
KERNEL_UNITS = {
    "kernel_predicted_ms": "p50 predicted by the kernel predictor of a fold that never saw the "
    "model's family (leave-one-family-out), ms",
    "kernel_lo_ms": "lower end of that prediction's 90 % interval, ms",
    "kernel_hi_ms": "upper end of that prediction's 90 % interval, ms",
    "kernel_error": "kernel_predicted_ms / p50_ms - 1",
    "predicted": "unmeasured models (--predict) per device: predicted p50, 90 % interval lo_ms "
    "and hi_ms, FLOPs-only fit, rank on the device (1 = fastest), op types guessed",
}


@dataclass
class Report:
    """The analysis of one campaign (or all results) over a set of devices."""

    campaign: str | None
    convention: str
    threshold: float
    models: pd.DataFrame
    fits: pd.DataFrame
    op_types: pd.DataFrame
    cross_device: pd.DataFrame
    calibration: pd.DataFrame
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    validity: Validity = field(default_factory=lambda: Validity(0, 0, 0))
    calibration_used: list[str] = field(default_factory=list)  # one line per device
    # The latency view (latency.py): every ok result, invalid ones marked; fastest valid model.
    latency: pd.DataFrame = field(default_factory=pd.DataFrame)
    fastest: dict[str, str | None] = field(default_factory=dict)
    # Part O: per (device, model) op types ranked by excess share, and each flagged model's
    # top culprits ((device, model) -> phrases), named in its finding.
    model_ops: pd.DataFrame = field(default_factory=pd.DataFrame)
    culprits: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Issue 18, from a Store only (frames have no model files, so these stay None there): the
    # leave-one-family-out folds behind the models table's kernel_* columns, and the
    # unmeasured models `--predict` ranked per device.
    kernel_folds: list[dict[str, Any]] | None = None
    predicted: pd.DataFrame | None = None

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by the file stem it is written under."""
        return {
            "latency": self.latency,
            "models": self.models,
            "fits": self.fits,
            "op_types": self.op_types,
            "cross_device": self.cross_device,
            "calibration": self.calibration,
            "model_ops": self.model_ops,
        } | ({} if self.predicted is None else {"predicted": self.predicted})

    def findings(self) -> list[str]:
        """One sentence per flagged model, worst first."""
        if "flag" not in self.models or self.models.empty:
            return []
        flagged = self.models[self.models["flag"] != ""]
        worst = flagged.assign(size=flagged["residual"].map(lambda f: abs(math.log(f))))
        worst = worst.sort_values("size", ascending=False, kind="stable")
        return [
            with_culprits(
                describe_residual(r.model, r.device, r.residual),
                self.culprits.get((str(r.device), str(r.model))),
            )
            for r in worst.itertuples()
        ]

    def culprits_json(self) -> list[dict[str, Any]]:
        """Each flagged model's culprits as {device, model, culprits}, for JSON readers."""
        return [
            {"device": device, "model": model, "culprits": list(named)}
            for (device, model), named in self.culprits.items()
        ]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (dicts, lists, str, float, int, bool, None) with the convention."""
        folds = {} if self.kernel_folds is None else {"kernel_folds": self.kernel_folds}
        return folds | {
            "format": REPORT_FORMAT,
            "campaign": self.campaign,
            "flops_convention": self.convention,
            "threshold": self.threshold,
            "units": UNITS if self.kernel_folds is None else UNITS | KERNEL_UNITS,
            "validity": self.validity.to_json(),
            "calibration_used": list(self.calibration_used),
            "fastest": dict(self.fastest),
            "findings": self.findings(),
            "missing": list(self.missing),
            "notes": list(self.notes),
            "culprits": self.culprits_json(),
            "tables": self._json_tables(),
        }

    def _json_tables(self) -> dict[str, list[dict[str, Any]]]:
        """Every table as records; a flagged model row also carries its ``culprits``."""
        tables = {name: records(table) for name, table in self.tables.items()}
        if self.culprits:
            for row in tables.get("models", []):
                named = self.culprits.get((str(row.get("device")), str(row.get("model"))))
                row["culprits"] = list(named) if named is not None else None
        return tables


def plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers unwrapped, NaN/NaT/inf as None."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or (not isinstance(value, (str, bool, int, float)) and pd.isna(value)):
        return None
    return value


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as a list of plain dicts."""
    return [{k: plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def write_csv_dir(report: Report, directory: Path | str) -> list[Path]:
    """One CSV per table (missing numbers are empty cells), plus missing.txt and a README
    naming the FLOPs convention and units; returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in report.tables.items():
        path = out / f"{name}.csv"
        table.to_csv(path, index=False)
        written.append(path)
    lines = [f"flops_convention: {report.convention}", f"validity: {report.validity.describe()}"]
    lines += ["", "calibration used:"] + ([f"- {c}" for c in report.calibration_used] or ["- none"])
    lines += [""]
    lines += [f"{k}: {v}" for k, v in UNITS.items()]
    lines += ["", "missing:"] + ([f"- {m}" for m in report.missing] or ["- nothing"])
    readme = out / "README.txt"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(readme)
    return written
