"""``flopgap flops MODEL.onnx``: print a model's theoretical cost as a table or JSON.

The lead's ``collector/cli.py`` registers ``add_parser`` and calls ``run``; errors are raised
as ``FlopgapError`` subclasses, which that CLI turns into a message and an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TextIO

from collector.cli_flags import add_input_flags
from collector.flops import count_model
from collector.flops.report import CostReport
from shared import input_specs
from shared.cli_parsers import Subparsers, command
from shared.input_values import parse_values


def parse_input_specs(specs: Iterable[str]) -> dict[str, list[int]]:
    """The ``--input`` flags, read by the agent's parser (shared.input_specs): one syntax."""
    return {name: list(dims) for name, dims in input_specs.parse_input_specs(list(specs)).items()}


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Register the ``flops`` subcommand on an argparse subparsers object."""
    parser = command(
        subparsers,
        "flops",
        run,
        help="count MACs, FLOPs, params and bytes of an ONNX model",
        description="Theoretical cost of an ONNX model under flopgap's FLOP convention.",
    )
    parser.add_argument("model", help="path of the .onnx file")
    add_input_flags(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--per-node", action="store_true", help="include one row per node")
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Count the model named in ``args`` and print the result; returns the exit code 0."""
    stream = out if out is not None else sys.stdout
    values = parse_values(args.input_value, args.input_file)
    report = count_model(args.model, parse_input_specs(args.input) or None, values or None)
    if args.json:
        json.dump(report.to_json(per_node=args.per_node), stream, indent=2)
        stream.write("\n")
    else:
        stream.write(format_report(report, per_node=args.per_node))
    return 0


def si(value: float | None, unit: str = "") -> str:
    """A number with an SI prefix (k, M, G, T), e.g. 3.63 G."""
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip() if float(value).is_integer() else f"{value:.2f} {unit}"


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-align the first column, right-align the others."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = [(str.ljust if i == 0 else str.rjust) for i in range(len(header))]
    return [
        "  ".join(f(c, w) for f, c, w in zip(fmt, r, widths, strict=True)) for r in [header, *rows]
    ]


def _value_text(described: dict[str, object]) -> str:
    """A value as ``InputValue.describe`` gave it: the text, or the file and its shape."""
    if "value" in described:
        return str(described["value"])
    dims = "x".join(map(str, described.get("shape", []) or [])) or "scalar"  # type: ignore[call-overload]
    return f"{described.get('file', '?')} ({described.get('dtype', '?')} {dims})"


def format_report(report: CostReport, per_node: bool = False) -> str:
    """The readable table: totals, op types by FLOPs, uncounted ops, assumptions, convention."""
    t = report.total
    shapes = ", ".join(f"{k}={'x'.join(map(str, v)) or 'scalar'}" for k, v in report.inputs.items())
    values = ", ".join(f"{k}={_value_text(v)}" for k, v in report.input_values.items())
    lines = [
        f"model:      {report.model}",
        f"inputs:     {shapes or '-'}" + (f"   values: {values}" if values else ""),
        *(
            ["count:      holds at these inputs (shapes or an If branch came from their values)"]
            if report.at_these_inputs
            else []
        ),
        f"MACs:       {si(t.macs)}   FLOPs: {si(t.flops)}   2xMACs: {si(t.flops_2mac)}"
        + (f"   int MACs: {si(t.int_macs)}" if t.int_macs else ""),
        f"params:     {si(t.params)}   bytes: {si(t.bytes, 'B')} (unique {si(t.unique_bytes, 'B')})"
        f"   intensity: {t.intensity or 0:.2f} FLOP/B",
        "",
    ]
    rows = [
        [op, str(c.count), si(c.macs), si(c.flops), si(c.bytes, "B")]
        for op, c in report.by_op_type.items()
    ]
    lines += _rows(["op type", "count", "MACs", "FLOPs", "bytes"], rows)
    if per_node:
        node_rows = [
            [n.name, n.op_type, si(n.macs), si(n.flops), si(n.bytes_read + n.bytes_written, "B"),
             f"{n.intensity:.2f}" if n.intensity is not None else "-", n.note]
            for n in report.nodes
        ]  # fmt: skip
        lines += ["", *_rows(["node", "op", "MACs", "FLOPs", "bytes", "FLOP/B", "note"], node_rows)]
    uncounted = ", ".join(f"{op} x{n}" for op, n in report.uncounted.items())
    lines += ["", f"uncounted (0 FLOPs, bytes counted): {uncounted or 'none'}"]
    lines += ["assumptions:" if report.assumptions else "assumptions: none"]
    lines += [f"  - {a}" for a in report.assumptions]
    lines += [f"convention: {report.convention}", ""]
    return "\n".join(lines)
