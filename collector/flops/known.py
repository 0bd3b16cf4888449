"""Every main-graph shape known before a whole-model onnxruntime run, Ifs inlined.

Why: an ``If`` whose condition follows from constants, shapes and given values is replaced by
its branch (``inline``); the branch's shapes then need the same passes as the rest of the graph
(inference, folding), and a nested If it held can only be resolved after them. So the passes
run, known Ifs are inlined, and the passes run again, for at most ``MAX_IF_ROUNDS`` rounds. A
model without If pays one ``any`` over its nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import onnx

from collector.flops.control import ConditionResolver
from collector.flops.folding import fold_shapes
from collector.flops.graphview import GraphView
from collector.flops.inline import Inlined, inline_known_ifs
from collector.flops.inputs import resolve_inputs
from collector.flops.loading import LoadedModel
from collector.flops.shapes import check_and_infer, inferred_table, light_models, unresolved
from collector.flops.tensors import TensorInfo

MAX_IF_ROUNDS = 8  # each round inlines the Ifs it can resolve; nested ones need another


@dataclass
class Known:
    """Every main-graph shape known before any onnxruntime run of the whole model."""

    proto: onnx.ModelProto
    view: GraphView
    resolved: dict[str, list[int | str] | None]
    table: dict[str, TensorInfo]
    strict_error: str | None
    folded: dict[str, onnx.TensorProto]

    @staticmethod
    def of(
        proto: onnx.ModelProto,
        shapes: Mapping[str, Sequence[int]] | None,
        small: list[onnx.TensorProto],
        label: str,
    ) -> Known:
        """Resolve input dims, check and infer a light copy, then fold shape arithmetic."""
        view = GraphView.read(proto.graph)
        resolved = resolve_inputs(proto.graph, shapes)
        light = light_models(proto, resolved, view, values=small)
        inferred, strict_error = check_and_infer(light, label)
        table = inferred_table(inferred, view)
        folded: dict[str, onnx.TensorProto] = {}
        if unresolved(view, table):
            table = fold_shapes(proto, resolved, table, view, {t.name: t for t in small}, folded)
        return Known(proto, view, resolved, table, strict_error, folded)


def known_shapes(
    loaded: LoadedModel,
    shapes: Mapping[str, Sequence[int]] | None,
    small: list[onnx.TensorProto],
    given: Mapping[str, npt.NDArray[Any]],
) -> tuple[Known, list[Inlined]]:
    """The shapes of ``loaded`` at ``shapes``, after inlining every If of known condition."""
    known = Known.of(loaded.proto, shapes, small, loaded.label)
    inlined: list[Inlined] = []
    for _ in range(MAX_IF_ROUNDS):
        if not any(n.op_type == "If" for n in known.view.nodes):
            break
        graph, opsets = known.proto.graph, list(known.proto.opset_import)
        proto, found = inline_known_ifs(
            known.proto, ConditionResolver(graph, known.table, given, opsets)
        )
        if not found:
            break
        inlined += found
        known = Known.of(proto, shapes, small, loaded.label)
    return known, inlined
