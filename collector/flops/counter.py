"""``count_model``: theoretical MACs, FLOPs, params and bytes of an ONNX model.

Order of work: load (without external weights), check the user's input values (``values``)
and resolve the input dims they and ``input_shapes`` give, check and infer shapes on a light
copy, fold the shape arithmetic ONNX leaves unevaluated (``folding``), replace each ``If``
whose condition is known by the branch it takes (``control``, ``inline``) and start again,
fall back to one whole-model onnxruntime pass only when some tensor is still unresolved, then
walk the graph once. Nothing is guessed: a FLOP-bearing node whose shapes stay unknown is an
error that names the node and the dim, and every assumption is in the report.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import replace

import onnx

from collector.flops.control import Condition, ConditionResolver, if_assumed, if_taken
from collector.flops.formulas import OpCost
from collector.flops.graphview import GraphView
from collector.flops.known import known_shapes
from collector.flops.loading import load
from collector.flops.ort_shapes import Fallback, fill_unresolved
from collector.flops.registry import CONTROL_FLOW
from collector.flops.report import CONVENTION, CostReport, summarize
from collector.flops.shapes import unresolved
from collector.flops.subgraphs import body_table, loop_trips, scan_trips, subgraphs
from collector.flops.tally import Tally
from collector.flops.tensors import TensorInfo, constant_tensor
from collector.flops.uncountable import UnknownDimError
from collector.flops.values import (
    merge_shapes,
    missing_switches,
    shown_values,
    value_arrays,
    value_tensors,
)
from collector.flops.walk import NodeContext, node_cost
from shared.input_values import InputValue

ModelLike = str | os.PathLike[str] | onnx.ModelProto


def count_model(
    model: ModelLike,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, InputValue] | None = None,
) -> CostReport:
    """Count ``model`` (a path or ModelProto) at ``input_shapes`` ({input name: dims}) and
    ``input_values`` ({input name: value}; a value also sets its input's dims)."""
    loaded = load(model)
    given = value_arrays(loaded.proto.graph, input_values)
    small = value_tensors(given)
    known, inlined = known_shapes(loaded, merge_shapes(input_shapes, given), small, given)
    if inlined:
        loaded = replace(loaded, proto=known.proto, owned=True)
    proto, view, table, resolved = known.proto, known.view, known.table, known.resolved
    assumptions: list[str] = []
    switches = missing_switches(proto.graph, given)
    missing = unresolved(view, table)
    fallback = fill_unresolved(loaded, resolved, table, missing, assumptions, given, switches)
    walker = _Walker(proto, fallback, known.strict_error)
    walker.conditions = ConditionResolver(proto.graph, table, given, list(proto.opset_import))
    walker.outer = {**{t.name: t for t in small}, **known.folded}
    tally = Tally()
    walker.walk(view, table, view.float_init_sizes(), "", tally)
    for done in inlined:
        flops = sum(n.flops for n in tally.nodes if n.name.startswith(done.prefix))
        assumptions.append(if_taken(done.label, done.cond, done.taken, done.other, flops))
    assumptions.extend(tally.assumptions)
    if tally.unknown_bytes:
        names = list(tally.unknown_bytes)
        assumptions.append(
            f"bytes of {len(names)} tensor(s) of unknown shape on zero-FLOP nodes are not "
            f"counted: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
        )
    totals, by_op = summarize(tally.nodes, sum(tally.params.values()), sum(tally.tensors.values()))
    by_values = any(d.cond.values_used for d in inlined) or walker.value_decided
    return CostReport(
        convention=CONVENTION,
        model=loaded.label,
        inputs={k: list(v or []) for k, v in resolved.items()},
        total=totals,
        by_op_type=by_op,
        nodes=tally.nodes,
        uncounted=dict(sorted(tally.uncounted.items())),
        assumptions=assumptions,
        input_values=shown_values(input_values),
        at_these_inputs=fallback.used or by_values,
    )


class _Walker:
    """Walks the main graph and, recursively, control-flow bodies."""

    def __init__(
        self, proto: onnx.ModelProto, fallback: Fallback, strict_error: str | None
    ) -> None:
        self.proto = proto
        self.hint = fallback.hint
        self.pending = fallback.pending
        self.strict_error = strict_error
        self.conditions: ConditionResolver | None = None
        self.outer: dict[str, onnx.TensorProto] = {}  # given and folded values bodies may read
        self.value_decided = False  # an If branch was chosen from the user's input values
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
        depth: int = 0,
    ) -> None:
        """Append the cost of every node of ``graph`` to ``tally`` (``depth`` 0: main graph)."""
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
            try:
                append(node_cost(node, label, ctx, tally))
            except UnknownDimError as exc:
                if self.pending is not None:  # a switch input with no value is the cause
                    raise self.pending from exc
                raise
            if node.key in CONTROL_FLOW:
                self._control(node.proto, node.key, label, table, float_inits, tally, depth)

    def _body(
        self,
        node: onnx.NodeProto,
        body: onnx.GraphProto,
        table: Mapping[str, TensorInfo],
        float_inits: Mapping[str, int],
        prefix: str,
        depth: int,
    ) -> Tally:
        """Walk one body with its own inferred shapes layered over the enclosing ones."""
        inner = body_table(node, body, table, self.proto, self._outer_value)
        local = ChainMap(inner, table)  # type: ignore[arg-type]
        sub = Tally()
        view = GraphView.read(body)
        own = view.float_init_sizes()
        inits = ChainMap(own, float_inits) if float_inits else own  # type: ignore[arg-type]
        self.walk(view, local, inits, prefix, sub, depth + 1)
        return sub

    def _control(
        self,
        node: onnx.NodeProto,
        key: str,
        label: str,
        table: Mapping[str, TensorInfo],
        float_inits: Mapping[str, int],
        tally: Tally,
        depth: int,
    ) -> None:
        """If: the branch taken, else the larger one (stated). Loop/Scan: body x trip count."""
        bodies = subgraphs(node)
        if key == "If":
            self._if(node, bodies, label, table, float_inits, tally, depth)
            return
        walked = {
            name: self._body(node, g, table, float_inits, f"{label}/{name}/", depth)
            for name, g in bodies.items()
        }
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

    def _if(
        self,
        node: onnx.NodeProto,
        bodies: Mapping[str, onnx.GraphProto],
        label: str,
        table: Mapping[str, TensorInfo],
        float_inits: Mapping[str, int],
        tally: Tally,
        depth: int,
    ) -> None:
        """Count the branch the condition picks, or the larger one when it is not known."""
        cond = Condition(why="it is computed inside a control-flow body")
        if depth == 0 and self.conditions is not None and node.input:
            cond = self.conditions.resolve(node.input[0])
        if cond.value is not None:
            taken = "then_branch" if cond.value else "else_branch"
            other = "else_branch" if cond.value else "then_branch"
            sub = self._body(node, bodies[taken], table, float_inits, f"{label}/{taken}/", depth)
            tally.assumptions.append(if_taken(label, cond, taken, other, sub.flops_key()[0]))
            self.value_decided = self.value_decided or bool(cond.values_used)
            tally.merge(sub)
            return
        walked = {
            name: self._body(node, g, table, float_inits, f"{label}/{name}/", depth)
            for name, g in bodies.items()
        }
        ranked = sorted(walked.items(), key=lambda kv: kv[1].flops_key(), reverse=True)
        chosen, best = ranked[0]
        flops = ", ".join(f"{n}: {t.flops_key()[0]} FLOPs" for n, t in ranked)
        tally.assumptions.append(if_assumed(label, cond, chosen, flops))
        tally.merge(best)

    def _outer_value(self, name: str) -> onnx.TensorProto | None:
        """A value a body may read from outside: given, folded, initializer or Constant."""
        return self.outer.get(name) or self._lookup(name)

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
