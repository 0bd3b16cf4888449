"""Join per-node profile times to theoretical cost, on the graph ORT actually ran.

ORT fuses Conv+BN+Relu, MatMul+Add and more, and on x86 rewrites convolutions into NCHWc
blocks, so a profiled node name is a node of the OPTIMIZED graph (saved by
agent.engine.profile_ops).
That graph is counted with collector.flops and joined by node name. The ORIGINAL graph is read
too, to say which of its nodes vanished and, best effort, into which optimized node:

1. anchors by ORT's naming: the same name; ``fused <name>`` (FusedGemm); ``<name>/<Fusion>``
   (MatMulAddFusion); ``<tensor>_nchwc`` (the producer of that tensor); ``_token_N`` stripped;
2. anchors by data: an optimized node that produces a tensor an original node produced;
3. every other vanished node walks up to its producers (only along edges with one consumer,
   as ORT's fusions require; never for a Conv, Gemm or MatMul, which ORT does not fuse into
   its producer), then down to its consumers, to the nearest anchored nodes: one
   distinct target is an attribution, several leave it unattributed. A vanished node computed
   from initializers, Constant, Shape or Size alone, or whose walk down meets a tensor now held
   as an initializer, is constant-folded.

An unnamed node, which ORT's profiler calls ``<OpType>_<node index>``, is found by that index.
A row's cost comes from the optimized graph when collector/flops has a formula for its op;
else from the original nodes it holds (a BatchNormalization folded into a Conv, Gemm or MatMul
costs nothing at run time and is left out); else None. Numbers are never invented.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx

from collector.flops import DATA_MOVEMENT, CostReport, NodeCost, count_model, op_key
from collector.op_shapes import annotate
from shared.errors import FlopgapError
from shared.input_values import InputValue

LAYOUT_OPS = frozenset({"com.microsoft.nchwc.ReorderInput", "com.microsoft.nchwc.ReorderOutput"})
# Blocked convolutions pad channels to ORT's block: a row keeps the MODEL's FLOPs (from its
# original nodes), so padding shows as time without FLOPs; the padded work is padded_flops.
PADDED_OPS = frozenset({"com.microsoft.nchwc.Conv"})
_FOLDABLE = frozenset({"Constant", "Shape", "Size"})
_CARRIERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum"})
_TOKEN = re.compile(r"_token_\d+$")
_UNNAMED = re.compile(r"(\w+)_(\d+)")
_MAX_WALK = 32
NOTE = (
    "rows are nodes of the optimized graph ORT ran; fused_from lists the original nodes a row "
    "holds, found by ORT's naming or data flow (best effort); unmatched profile nodes get no "
    "cost; bytes of NCHWc nodes include channel padding to the block size"
)

_SIZED_NOTE = (
    "tensor sizes of the optimized graph come from the profile's own per-node shapes (as the "
    "kernels ran them), where ONNX shape inference does not know the op"
)


@dataclass
class OpJoin:
    """Profiled nodes joined to cost, and everything that did not join.

    Row units: kernel_time_us in microseconds (median per run); flops and macs as in
    collector.flops.CONVENTION; bytes = bytes read + written by the node in the optimized graph.
    ``depthwise`` is True/False for a convolution whose weight is known, else None.
    """

    rows: list[dict[str, Any]]
    fused_away: list[str]
    constant_folded: list[str]
    unattributed: list[str]
    unmatched: list[dict[str, Any]]
    not_profiled: list[str]
    uncounted: list[str]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class _Graph:
    """One graph's node labels (as collector.flops names them), op keys and tensor links."""

    def __init__(self, path: Path) -> None:
        graph = onnx.load(str(path), load_external_data=False).graph
        self.keys = [op_key(n.domain, n.op_type) for n in graph.node]
        self.labels = [n.name or f"{self.keys[i]}#{i}" for i, n in enumerate(graph.node)]
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.inputs = [[t for t in n.input if t] for n in graph.node]
        self.outputs = [[t for t in n.output if t] for n in graph.node]
        self.initializers = {t.name for t in graph.initializer}
        dims = {t.name: list(t.dims) for t in graph.initializer}
        self.depthwise: dict[int, bool] = {}  # conv nodes with a known weight: group == C_in
        for i, n in enumerate(graph.node):
            weight = dims.get(n.input[1]) if len(n.input) > 1 else None
            if n.op_type.endswith("Conv") and weight and len(weight) > 1:
                group = next((a.i for a in n.attribute if a.name == "group"), 1)
                self.depthwise[i] = group > 1 and weight[1] == 1
        self.producer = {t: i for i, ts in enumerate(self.outputs) for t in ts}
        self.consumers: dict[str, list[int]] = {}
        for i, ts in enumerate(self.inputs):
            for t in ts:
                self.consumers.setdefault(t, []).append(i)
        known = set(self.initializers)  # nodes whose value needs no input data (topological)
        self.constant: set[int] = set()
        for i, key in enumerate(self.keys):
            ins = self.inputs[i]
            if key in _FOLDABLE or (ins and all(t in known for t in ins)):
                self.constant.add(i)
                known.update(self.outputs[i])


def join_ops(
    profile: Mapping[str, Any],
    optimized_model: Path,
    original_model: Path,
    input_shapes: Mapping[str, Sequence[int]],
    input_values: Mapping[str, InputValue] | None = None,
) -> OpJoin:
    """Join `profile` (an agent.engine.profile_ops document) to both graphs' cost at `input_shapes`
    and the given `input_values` (which pick the If branches the profile ran).

    If collector/flops cannot count the optimized graph (a contrib op it mis-reads), every row
    falls back to its original nodes, bytes are None, and the error is in the notes.
    """
    opt, orig = _Graph(optimized_model), _Graph(original_model)
    orig_cost = count_model(original_model, input_shapes, input_values=input_values)
    notes = [NOTE]
    with tempfile.TemporaryDirectory(prefix="flopgap-join-") as work:
        sized = Path(work) / optimized_model.name
        if annotate(optimized_model, profile.get("nodes", []), sized):
            notes.append(_SIZED_NOTE)
        else:
            sized = optimized_model
        opt_cost = _count_or_note(sized, input_shapes, notes, input_values)
    anchors = _anchors(opt, orig)
    absent, members, folded, lost = _fusion(anchors, opt, orig)
    costs = {n.name: n for n in opt_cost.nodes} if opt_cost else {}
    orig_costs = {n.name: n for n in orig_cost.nodes}
    rows, unmatched, seen = [], [], set()
    for entry in profile.get("nodes", []):
        name = str(entry.get("name"))
        label = _locate(name, costs or opt.index) or _unnamed(name, anchors, opt, orig)
        if label is None:
            unmatched.append(dict(entry))
            continue
        seen.add(label)
        held = sorted(members.get(opt.index.get(label, -1), []))
        parts = [orig_costs[orig.labels[i]] for i in held]
        node = costs.get(label)
        key = node.op_type if node else opt.keys[opt.index[label]]
        rows.append(
            {
                "node_name": label,
                "op_type": key,
                "provider": entry.get("provider"),
                "kernel_time_us": entry.get("kernel_time_us"),
                "calls": entry.get("calls"),
                **_row_cost(key, node, parts, orig_cost, opt_cost),
                "folded_flops": _folded_flops(parts),
                "depthwise": opt.depthwise.get(opt.index.get(label, -1)),
                "fused_from": [orig.labels[i] for i in held if i in absent],
            }
        )
    padded = [r for r in rows if (r.get("padded_flops") or 0) > 0]
    if padded:
        notes.append(
            f"{len(padded)} NCHWc convolution(s) ran {sum(r['padded_flops'] for r in padded)} "
            "FLOPs more than the model counts (channels padded to ORT's block size); their rows "
            "keep the model's FLOPs, so the padding shows as time without FLOPs"
        )
    return OpJoin(
        rows=rows,
        fused_away=[orig.labels[i] for i in sorted(absent)],
        constant_folded=[orig.labels[i] for i in folded],
        unattributed=[orig.labels[i] for i in lost],
        unmatched=unmatched,
        not_profiled=[label for label in (costs or opt.index) if label not in seen],
        uncounted=sorted(opt_cost.uncounted) if opt_cost else [],
        notes=notes,
    )


def _count_or_note(
    model: Path,
    input_shapes: Mapping[str, Sequence[int]],
    notes: list[str],
    input_values: Mapping[str, InputValue] | None = None,
) -> CostReport | None:
    """The optimized graph's cost, or None with a note when collector/flops cannot count it."""
    try:
        report = count_model(model, input_shapes, input_values=input_values)
    except FlopgapError as exc:
        notes.append(f"optimized graph not counted ({exc}); costs come from original nodes")
        return None
    notes.extend(report.assumptions)
    return report


def _locate(name: str, labels: Mapping[str, object]) -> str | None:
    """The cost label of a profiled node: its name, or the one control-flow body label ending
    in ``/name``; None for an unnamed node or no single match."""
    if not name or name in labels:
        return name or None
    found = [label for label in labels if label.endswith("/" + name)]
    return found[0] if len(found) == 1 else None


def _unnamed(name: str, anchors: Mapping[int, int], opt: _Graph, orig: _Graph) -> str | None:
    """ORT's profiler calls an unnamed node ``<OpType>_<node index>``; an unnamed original node
    that survived keeps its index, so it is found through its anchor in the optimized graph."""
    match = _UNNAMED.fullmatch(name)
    i = int(match.group(2)) if match else -1
    if not match or i >= len(orig.labels) or orig.labels[i] != f"{orig.keys[i]}#{i}":
        return None
    j = anchors.get(i, -1)
    same = j >= 0 and orig.keys[i].rsplit(".", 1)[-1] == match.group(1)
    return opt.labels[j] if same and opt.labels[j] == f"{orig.keys[i]}#{j}" else None


def _fusion(
    anchors: Mapping[int, int], opt: _Graph, orig: _Graph
) -> tuple[set[int], dict[int, list[int]], list[int], list[int]]:
    """(vanished original nodes, {optimized node: original nodes it holds}, constant-folded,
    unattributed), all as node indices."""
    absent = {
        i
        for i, label in enumerate(orig.labels)
        if label not in opt.index
        and not (  # an unnamed node survives as an unnamed node of the same op
            i in anchors
            and label == f"{orig.keys[i]}#{i}"
            and opt.labels[anchors[i]] == f"{orig.keys[i]}#{anchors[i]}"
        )
    }
    members: dict[int, list[int]] = {}
    for i, j in anchors.items():
        members.setdefault(j, []).append(i)
    folded, lost = [], []
    for i in sorted(absent - anchors.keys()):
        found: set[int] | str = set()
        if i in orig.constant:  # computed from initializers and static shapes alone
            found = "folded"
        elif orig.keys[i] not in _CARRIERS:  # ORT never fuses a Conv or MatMul into its producer
            found = _walk(i, anchors, opt, orig, forward=False)
        if not (found == "folded" or (isinstance(found, set) and len(found) == 1)):
            found = _walk(i, anchors, opt, orig, forward=True)
        if found == "folded":
            folded.append(i)
        elif isinstance(found, set) and len(found) == 1:
            members.setdefault(found.pop(), []).append(i)
        else:
            lost.append(i)
    return absent, members, folded, lost


def _name_targets(name: str, orig: _Graph) -> list[int]:
    """Original nodes an optimized node's name points at, by ORT's naming conventions."""
    by_name = orig.index
    base = _TOKEN.sub("", name).removeprefix("fused ")
    names = [name, base]
    parts = base.split("/")
    names += ["/".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    hits = [by_name[n] for n in names if n in by_name]
    if base.endswith("_nchwc") and base[:-6] in orig.producer:
        hits.append(orig.producer[base[:-6]])
    return list(dict.fromkeys(hits))


def _anchors(opt: _Graph, orig: _Graph) -> dict[int, int]:
    """{original node: optimized node that holds it}, by name first, then by output tensor."""
    anchors = {orig.index[label]: j for j, label in enumerate(opt.labels) if label in orig.index}
    for j, label in enumerate(opt.labels):
        for i in _name_targets(label, orig):
            anchors.setdefault(i, j)
    for j, tensors in enumerate(opt.outputs):
        for t in tensors:
            if t in orig.producer:
                anchors.setdefault(orig.producer[t], j)
    return anchors


def _walk(
    start: int, anchors: Mapping[int, int], opt: _Graph, orig: _Graph, forward: bool
) -> set[int] | str:
    """Optimized nodes nearest to `start` through vanished original nodes, or "folded" when a
    forward walk meets a tensor that the optimized graph holds as an initializer.

    Backward, only producers whose output feeds nothing else are followed: ORT fuses a node
    into its producer only then, which tells a residual Add's conv from its skip input.
    """
    frontier, seen = [start], {start}
    for _ in range(_MAX_WALK):
        found: set[int] = set()
        step: list[int] = []
        for k in frontier:
            if forward and any(t in opt.initializers for t in orig.outputs[k]):
                return "folded"
            if forward:
                near = [c for t in orig.outputs[k] for c in orig.consumers.get(t, [])]
            else:
                near = [
                    orig.producer[t]
                    for t in orig.inputs[k]
                    if t in orig.producer and len(orig.consumers[t]) == 1
                ]
            for c in near:
                if c not in seen:
                    seen.add(c)
                    if c in anchors:
                        found.add(anchors[c])
                    else:
                        step.append(c)
        if found or not step:
            return found
        frontier = step
    return set()


def _folded_flops(parts: list[NodeCost]) -> int:
    """FLOPs of the BatchNormalizations this row's convolution or product absorbed: the model's
    count has them, the run does not (ORT folds them into the weights when it loads)."""
    if not any(p.op_type in _CARRIERS for p in parts):
        return 0
    return sum(p.flops for p in parts if p.op_type == "BatchNormalization")


def _row_cost(
    key: str, node: NodeCost | None, parts: list[NodeCost], orig: CostReport, opt: CostReport | None
) -> dict[str, Any]:
    """flops, macs, bytes and where they came from (see the module docstring)."""
    out: dict[str, Any] = {"bytes": node.bytes_read + node.bytes_written if node else None}
    if key in LAYOUT_OPS or key in DATA_MOVEMENT:
        return {**out, "flops": 0, "macs": 0, "cost_source": "data movement"}
    countable = bool(parts) and not any(p.op_type in orig.uncounted for p in parts)
    if key in PADDED_OPS and countable and node and opt and node.op_type not in opt.uncounted:
        model = _row_cost("", None, parts, orig, None)  # the original nodes' count
        return {**model, **out, "padded_flops": node.flops - model["flops"]}
    if node and opt and node.op_type not in opt.uncounted:
        return {**out, "flops": node.flops, "macs": node.macs, "cost_source": "optimized graph"}
    if not parts or any(p.op_type in orig.uncounted for p in parts):
        return {**out, "flops": None, "macs": None, "cost_source": None}
    if any(p.op_type in _CARRIERS for p in parts):
        parts = [p for p in parts if p.op_type != "BatchNormalization"]
    return {
        **out,
        "flops": sum(p.flops for p in parts),
        "macs": sum(p.macs for p in parts),
        "cost_source": "original nodes: " + ", ".join(p.name for p in parts),
    }
