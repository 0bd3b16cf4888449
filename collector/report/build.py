"""Building a report: read the frames (from a Store or from anywhere), run every analysis and
collect what each lacked, so the renderers only format."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pandas as pd

from collector.flops import CONVENTION
from collector.report import calibration as calib
from collector.report import culprits as culprit
from collector.report import frames
from collector.report.analysis import attach_roofline, model_table, result_index, roof_warnings
from collector.report.compare import cross_device_table
from collector.report.defaults import DEFAULT_THRESHOLD
from collector.report.fits import fit_devices
from collector.report.latency import fastest, latency_table
from collector.report.ops import op_type_table, prepare
from collector.report.predicted import attach_kernel_predictions, key_contexts
from collector.report.ranked import PredictRequest, rank_models
from collector.report.report import Report
from collector.report.validity import Validity, split


def build_report(
    store: Any,
    campaign: str | None = None,
    devices: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    include_invalid: bool = False,
    predict: Sequence[PredictRequest] = (),
    kernel_predictions: bool = True,
) -> Report:
    """The report of `campaign` (name, id or unique id prefix; None = every result) on
    `devices` (agent ids or hostnames; None = all) from a collector Store; valid results only
    unless `include_invalid`. Each measured whole model gets its leave-one-family-out kernel
    prediction (unless not `kernel_predictions`), and the unmeasured models of `predict` are
    ranked on every device that has a predictor (``tables["predicted"]``)."""
    campaign_id = None
    if campaign is not None:
        campaign_id = store.resolve_campaign(campaign).campaign_id  # name, id or id prefix
    results, op_times, calibration, missing = frames.from_store(store, campaign_id)
    report = build_report_from_frames(
        results, op_times, calibration, campaign, devices, threshold, missing, include_invalid
    )
    if not kernel_predictions and not predict:
        return report
    contexts, lacking = key_contexts(store, report.models)
    models, folds = report.models, None
    if kernel_predictions:
        models, more, folds = attach_kernel_predictions(report.models, contexts)
        lacking += more
    predicted = None
    if predict:
        predicted, more = rank_models(predict, contexts)
        lacking += more
    return dataclasses.replace(
        report, models=models, kernel_folds=folds, predicted=predicted,
        missing=[*report.missing, *lacking],
    )  # fmt: skip


def build_report_from_frames(
    results: pd.DataFrame | None,
    op_times: pd.DataFrame | None = None,
    calibration: pd.DataFrame | None = None,
    campaign: str | None = None,
    devices: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    missing: Sequence[str] = (),
    include_invalid: bool = False,
) -> Report:
    """Run every analysis; each step adds what it lacked to the report's missing list.

    `devices` keeps the results of those agent ids or hostnames, and the first of them present
    is the reference of the cross-device table. Results (and calibrations) judged invalid are
    left out unless `include_invalid`; the report counts them by reason either way."""
    res, ops, cal, lacking = _select(results, op_times, calibration, devices, campaign)
    every_ok = set(res["result_id"])
    latency = latency_table(res)  # before the split: the latency view marks invalid ones
    res, validity = split(res, include_invalid)
    left_out = every_ok - set(res["result_id"])
    ops = ops[~ops["result_id"].isin(left_out)].reset_index(drop=True)
    cal, more = calib.usable(cal, include_invalid)
    lacking = [*missing, *lacking, *more, *_none_left(res, validity, campaign)]
    models, more = model_table(res.reset_index(drop=True))
    lacking += more
    models, more = attach_roofline(models, cal)
    lacking += more if not models.empty else []
    models, fits, more = fit_devices(models, threshold)
    lacking += more
    op_table, more, notes = op_type_table(ops, models, result_index(res))
    said = any(m.startswith("no per-op times") for m in lacking)
    lacking += [m for m in more if not (said and m.startswith("no per-op times"))]
    preferred = [d for name in devices or () for d in _devices_of(models, name)]
    cross, more = cross_device_table(models, preferred)
    lacking += more
    notes += roof_warnings(models)
    model_ops = culprit.model_op_table(prepare(ops, result_index(res))[0], models, cal)
    return Report(
        campaign=campaign,
        convention=CONVENTION,
        threshold=threshold,
        models=models,
        fits=fits,
        op_types=op_table,
        cross_device=cross,
        calibration=cal.reset_index(drop=True),
        missing=lacking,
        notes=notes,
        validity=validity,
        calibration_used=calib.used_lines(models, cal),
        latency=latency,
        fastest=fastest(latency),
        model_ops=model_ops,
        culprits=culprit.culprits(models, model_ops),
    )


def _none_left(res: pd.DataFrame, validity: Validity, campaign: str | None) -> list[str]:
    """Why nothing is left to analyse when every ok result was invalid."""
    if not res.empty or not validity.invalid:
        return []
    scope = f"campaign {campaign!r}" if campaign else "the database"
    return [
        f"{scope} has no valid results ({validity.counts()}); rerun on a quiet device, or "
        "pass --include-invalid to analyse them anyway"
    ]


def _select(
    results: pd.DataFrame | None,
    op_times: pd.DataFrame | None,
    calibration: pd.DataFrame | None,
    devices: Sequence[str] | None,
    campaign: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """The input frames normalised and cut to `devices`, and what they lack."""
    everything = frames.frame(results, frames.RESULT_COLUMNS)
    if devices:
        wanted = set(devices)
        everything = everything[
            everything["agent_id"].isin(wanted) | everything["hostname"].isin(wanted)
        ]
    res = frames.results_frame(everything)
    ops = frames.op_times_frame(op_times)
    cal = calib.calibration_frame(calibration)
    lacking = []
    if len(res) < len(everything):
        lacking.append(f"{len(everything) - len(res)} result(s) ended in error: no latency")
    if devices:
        ops = ops[ops["result_id"].isin(set(res["result_id"]))].reset_index(drop=True)
        cal = cal[cal["agent_id"].isin(set(res["agent_id"]))].reset_index(drop=True)
    if res.empty:
        scope = f"campaign {campaign!r}" if campaign else "the database"
        lacking.append(f"{scope} has no ok results" + (" on those devices" if devices else ""))
    return res, ops, cal, lacking


def _devices_of(models: pd.DataFrame, name: str) -> list[str]:
    """Device keys of an agent id or hostname (several when it ran several settings)."""
    hit = (models["agent_id"] == name) | (models["device"] == name)
    hit |= models["host"].astype(str).str.split(" ").str[0] == name
    return sorted(set(models.loc[hit, "device"]))
