"""``count_model``: theoretical MACs, FLOPs, params and bytes of an ONNX model.

Order of work: load (without external weights), resolve the user's input dims, check and infer
shapes on a light copy, fold the shape arithmetic ONNX leaves unevaluated (``folding``), fall
back to one whole-model onnxruntime pass only when some tensor is still unresolved, then walk
the graph once. Nothing is guessed: a FLOP-bearing node whose shapes stay
unknown is an error that names the node and the dim, and every assumption is in the report.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping, Sequence

import onnx

from collector.flops.folding import fold_shapes
from collector.flops.formulas import OpCost
from collector.flops.graphview import GraphView
from collector.flops.inputs import resolve_inputs
from collector.flops.loading import load
from collector.flops.ort_shapes import fill_unresolved
from collector.flops.registry import CONTROL_FLOW
from collector.flops.report import CONVENTION, CostReport, summarize
from collector.flops.shapes import check_and_infer, inferred_table, light_models, unresolved
from collector.flops.subgraphs import body_table, loop_trips, scan_trips, subgraphs
from collector.flops.tally import Tally
from collector.flops.tensors import TensorInfo, constant_tensor
from collector.flops.walk import NodeContext, node_cost

ModelLike = str | os.PathLike[str] | onnx.ModelProto


def count_model(
    model: ModelLike, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> CostReport:
    """Count ``model`` (a path or ModelProto) at ``input_shapes`` ({input name: dims})."""
    loaded = load(model)
    proto = loaded.proto
    view = GraphView.read(proto.graph)
    resolved = resolve_inputs(proto.graph, input_shapes)
    light = light_models(proto, resolved, view)
    inferred, strict_error = check_and_infer(light, loaded.label)
    table = inferred_table(inferred, view)
    missing = unresolved(view, table)
    if missing:
        table = fold_shapes(proto, resolved, table, view)
        missing = unresolved(view, table)
    assumptions: list[str] = []
    hint = fill_unresolved(loaded, resolved, table, missing, assumptions)
    walker = _Walker(proto, hint, strict_error)
    tally = Tally()
    walker.walk(view, table, view.float_init_sizes(), "", tally)
    assumptions.extend(tally.assumptions)
    if tally.unknown_bytes:
        names = list(tally.unknown_bytes)
        assumptions.append(
            f"bytes of {len(names)} tensor(s) of unknown shape on zero-FLOP nodes are not "
            f"counted: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
        )
    totals, by_op = summarize(tally.nodes, sum(tally.params.values()), sum(tally.tensors.values()))
    return CostReport(
        convention=CONVENTION,
        model=loaded.label,
        inputs={k: list(v or []) for k, v in resolved.items()},
        total=totals,
        by_op_type=by_op,
        nodes=tally.nodes,
        uncounted=dict(sorted(tally.uncounted.items())),
        assumptions=assumptions,
    )


class _Walker:
    """Walks the main graph and, recursively, control-flow bodies."""

    def __init__(self, proto: onnx.ModelProto, hint: str, strict_error: str | None) -> None:
        self.proto = proto
        self.hint = hint
        self.strict_error = strict_error
        self.const_floats: dict[str, int] = {}
        self.producers: dict[str, str] = {}
        self.memo: dict[tuple[object, ...], OpCost] = {}  # formula costs by op type and shapes
        self._consts: dict[str, onnx.TensorProto] | None = None

    def walk(
        self,
        graph: GraphView,
        table: Mapping[str, TensorInfo],
        float_inits: Mapping[str, int],
        prefix: str,
        tally: Tally,
    ) -> None:
        """Append the cost of every node of ``graph`` to ``tally``."""
        ctx = NodeContext(
            table,
            float_inits,
            self.const_floats,
            self.producers,
            self.hint,
            self.strict_error,
            self.memo,
        )
        append = tally.nodes.append
        for i, node in enumerate(graph.nodes):
            label = prefix + (node.name or f"{node.key}#{i}")
            append(node_cost(node, label, ctx, tally))
            if node.key in CONTROL_FLOW:
                self._control(node.proto, node.key, label, table, float_inits, tally)

    def _body(
        self,
        node: onnx.NodeProto,
        body: onnx.GraphProto,
        table: Mapping[str, TensorInfo],
        float_inits: Mapping[str, int],
        prefix: str,
    ) -> Tally:
        """Walk one body with its own inferred shapes layered over the enclosing ones."""
        local = ChainMap(body_table(node, body, table, self.proto), table)  # type: ignore[arg-type]
        sub = Tally()
        view = GraphView.read(body)
        own = view.float_init_sizes()
        inits = ChainMap(own, float_inits) if float_inits else own  # type: ignore[arg-type]
        self.walk(view, local, inits, prefix, sub)
        return sub

    def _control(
        self,
        node: onnx.NodeProto,
        key: str,
        label: str,
        table: Mapping[str, TensorInfo],
        float_inits: Mapping[str, int],
        tally: Tally,
    ) -> None:
        """If: keep the branch with more FLOPs. Loop/Scan: body x trip count (or x1, stated)."""
        bodies = subgraphs(node)
        walked = {
            name: self._body(node, g, table, float_inits, f"{label}/{name}/")
            for name, g in bodies.items()
        }
        if key == "If":
            ranked = sorted(walked.items(), key=lambda kv: kv[1].flops_key(), reverse=True)
            chosen, best = ranked[0]
            flops = ", ".join(f"{n}: {t.flops_key()[0]} FLOPs" for n, t in ranked)
            tally.assumptions.append(f"If '{label}': counted {chosen}, the larger branch ({flops})")
            tally.merge(best)
            return
        if key == "Loop":
            trips, caveat = loop_trips(node, self._lookup)
            why = "Loop trip count"
        else:
            trips, caveat = scan_trips(node, table), None
            why = "Scan iterations"
        if trips is None:
            trips, text = 1, "iteration count is not static; counted ONE iteration"
        else:
            text = caveat or f"body counted x{trips} ({why})"
        tally.assumptions.append(f"{key} '{label}': {text}, with first-iteration shapes")
        for sub in walked.values():
            tally.merge(sub, repeat=trips, why=why)

    def _lookup(self, name: str) -> onnx.TensorProto | None:
        """Initializer or Constant value by name, anywhere in the model (built on first use)."""
        if self._consts is None:
            self._consts = {}
            stack = [self.proto.graph]
            while stack:
                g = stack.pop()
                self._consts.update((t.name, t) for t in g.initializer)
                for n in g.node:
                    value = constant_tensor(n) if n.op_type == "Constant" else None
                    if value is not None:
                        self._consts[n.output[0]] = value
                    stack.extend(subgraphs(n).values())
        return self._consts.get(name)
