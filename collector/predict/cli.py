"""``flopgap predict``: an unmeasured model's latency on a device, or how well that works.

``flopgap predict MODEL.onnx --device NAME --db DB`` prints the predicted p50 with its 90 %
interval, the FLOPs-only prediction beside it, the kernels that cost most and any kernel
family predicted without training data of its own. ``flopgap predict --evaluate --device NAME
--db DB`` scores the predictor leave-one-model-family-out against the FLOPs-only fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from collector.cli_flags import add_input_flags
from shared.cli_parsers import Subparsers, command
from shared.errors import UsageError

TOP_KERNELS = 8


def add_parser(sub: Subparsers) -> argparse.ArgumentParser:
    """Register ``predict``."""
    p = command(
        sub,
        "predict",
        run,
        help="predict a model's latency on a device from the kernels the fleet measured",
        description="Optimise MODEL as the device's onnxruntime would (on this machine, at the "
        "device's opt level), predict each fused node with the device's kernel regressors "
        "(trained on its valid per-op profiles, stored in --db and retrained when new results "
        "arrive), sum and correct to an unprofiled p50. --evaluate scores this "
        "leave-one-model-family-out over the device's measured models. See docs/PREDICT.md.",
    )
    p.add_argument("model", nargs="?", type=Path, help="the .onnx file (not with --evaluate)")
    p.add_argument("--db", type=Path, required=True, help="the collector's database")
    p.add_argument(
        "--device", required=True, metavar="NAME", help="agent name, hostname or device id"
    )
    p.add_argument(
        "--threads", type=int, help="the device's intra-op threads setting to predict for "
        "(needed when it was measured at several)",
    )  # fmt: skip
    add_input_flags(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--evaluate", action="store_true",
        help="score the predictor leave-one-model-family-out on the device's measured models",
    )  # fmt: skip
    p.add_argument(
        "--train-on", choices=("all", "sweeps"), default="all",
        help="with --evaluate: train each fold on every other family (all, default) or on "
        "sweep kernels only (sweeps: no whole model ever trains)",
    )  # fmt: skip
    p.add_argument(
        "--include-sweeps", action="store_true",
        help="with --evaluate: score sweep kernels too (by sweep family)",
    )  # fmt: skip
    return p


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Predict or evaluate; returns 0."""
    stream = out if out is not None else sys.stdout

    def progress(text: str) -> None:
        if not args.json:
            print(f"... {text}", file=sys.stderr, flush=True)

    if args.evaluate:
        if args.model is not None:
            raise UsageError("--evaluate scores the stored models; it takes no MODEL",
                             "drop MODEL, or drop --evaluate to predict it")  # fmt: skip
        from collector.predict.api import evaluate

        ev = evaluate(args.db, args.device, threads=args.threads, train_on=args.train_on,
                      include_sweeps=args.include_sweeps, progress=progress)  # fmt: skip
        _emit(stream, args.json, ev.to_json(), format_evaluation(ev))
        return 0
    if args.model is None:
        raise UsageError("no model to predict", "pass MODEL.onnx, or --evaluate")
    from collector.flops.cli import parse_input_specs
    from collector.predict.api import predict
    from shared.input_values import parse_values

    prediction = predict(
        args.model, args.device, store=args.db, threads=args.threads,
        input_shapes=parse_input_specs(args.input) or None,
        input_values=parse_values(args.input_value, args.input_file) or None, progress=progress,
    )  # fmt: skip
    _emit(stream, args.json, prediction.to_json(), format_prediction(prediction))
    return 0


def _emit(stream: TextIO, as_json: bool, document: dict[str, object], text: str) -> None:
    """JSON for scripts, or the table for people."""
    stream.write(json.dumps(document, indent=2) + "\n" if as_json else text)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


def format_prediction(p: object) -> str:
    """The readable prediction: headline, FLOPs-only beside it, top kernels, what was guessed."""
    from collector.predict.whole import Prediction

    assert isinstance(p, Prediction)
    lo, hi = p.interval_ms
    lines = [
        f"{p.model} on {p.device}",
        f"  predicted p50   {_ms(p.predicted_ms)}   (90% interval {_ms(lo)} .. {_ms(hi)})",
        f"  FLOPs-only fit  {_ms(p.flops_only_ms)}"
        + ("" if p.flops_only_ms is not None else "   (the device has fewer than 3 models "
           "with FLOPs to fit)"),
        f"  kernels         {len(p.kernels)} fused nodes, {_ms(p.kernel_sum_ms)} summed before "
        "the device's correction",
        f"  predictor       v{p.predictor['version']}: {p.predictor['samples']} kernel samples "
        f"from {p.predictor['models']} results, trained {p.predictor['trained_at']}",
        "",
        f"  {'node':<36} {'op':<28} {'ms':>9} {'share':>6}",
    ]  # fmt: skip
    for k in sorted(p.kernels, key=lambda k: -k.predicted_ms)[:TOP_KERNELS]:
        mark = "  (pooled)" if k.basis == "pooled" else ""
        lines.append(f"  {k.node[:36]:<36} {k.op_type[:28]:<28} {k.predicted_ms:>9.3f} "
                     f"{k.share:>6.1%}{mark}")  # fmt: skip
    if p.missing:
        lines.append("")
        lines.append("  no training data of their own (predicted by the pooled model; add a "
                     "sweep family or measure a model that has them):")  # fmt: skip
        for m in p.missing:
            lines.append(f"    {m['op_type']}: {m['kernels']} kernel(s), {m['share']:.1%} of the "
                         "prediction")  # fmt: skip
    lines.extend(f"  note: {n}" for n in p.notes)
    return "\n".join(lines) + "\n"


def _pct(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def format_evaluation(ev: object) -> str:
    """Both methods side by side, then every model, then the misses."""
    from collector.predict.evaluate import Evaluation

    assert isinstance(ev, Evaluation)
    k, f = ev.summary["kernel"], ev.summary["flops_only"]
    lines = [
        f"leave-one-model-family-out on {ev.device} (training: {ev.train_on}), "
        f"{k['models']} models in {len(ev.folds)} families",
        f"  {'':<14} {'within 10%':>11} {'within 5%':>10} {'MAPE':>8} {'RMSPE':>8} {'Spearman':>9}",
    ]
    for label, figures in (("kernels", k), ("FLOPs only", f)):
        rho = "-" if figures["spearman"] is None else f"{figures['spearman']:.3f}"
        lines.append(f"  {label:<14} {_pct(figures['within_10']):>11} "
                     f"{_pct(figures['within_5']):>10} {_pct(figures['mape']):>8} "
                     f"{_pct(figures['rmspe']):>8} {rho:>9}")  # fmt: skip
    lines += ["", f"  {'model':<24} {'family':<16} {'measured':>10} {'predicted':>10} {'err':>7} "
              f"{'FLOPs-only':>10} {'err':>7}"]  # fmt: skip
    for s in sorted(ev.scored, key=lambda s: s.model):
        lines.append(
            f"  {s.model[:24]:<24} {s.family[:16]:<16} {_ms(s.measured_ms):>10} "
            f"{_ms(s.predicted_ms):>10} {_signed(s.error):>7} {_ms(s.flops_only_ms):>10} "
            f"{_signed(s.flops_error):>7}" + (f"  {s.note}" if s.note else "")
        )
    coverage = k.get("interval_coverage")
    if coverage is not None:
        lines += ["", f"  the 90% interval held the measured p50 for {coverage:.0%} of the models"]
    misses = ev.misses()
    if misses:
        lines += ["", "  missed by more than 10%:"]
        for s in misses:
            guessed = f"; no training data for {', '.join(s.missing)}" if s.missing else ""
            lines.append(f"    {s.model}: {_signed(s.error)}{guessed}")
    return "\n".join(lines) + "\n"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"
