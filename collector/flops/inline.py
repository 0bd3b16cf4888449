"""Replace each ``If`` whose condition is known by the branch it takes, in the main graph.

Why: once the branch is known, its nodes are ordinary nodes of the model. Inlined, they get
everything the main graph gets (inference with data propagation, folding, the onnxruntime
fallback) and their outputs size the nodes after the If, which inference over an If whose two
branches differ cannot do. A nested If inside the taken branch becomes a main-graph If, so the
next round can resolve it in turn (silero-vad's decoder has three levels of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from collector.flops.control import Condition, ConditionResolver
from collector.flops.subgraphs import subgraphs


@dataclass(frozen=True)
class Inlined:
    """One If replaced by its branch: its label, the condition, and the branch names."""

    label: str
    cond: Condition
    taken: str
    other: str

    @property
    def prefix(self) -> str:
        """How the inlined nodes' names start, so a report can sum the branch's cost."""
        return f"{self.label}/{self.taken}/"


def _branch_nodes(node: onnx.NodeProto, label: str, taken: str) -> list[onnx.NodeProto]:
    """The taken branch's nodes, renamed under the If, then Identities onto the If outputs."""
    branch = subgraphs(node)[taken]
    prefix = f"{label}/{taken}/"
    out: list[onnx.NodeProto] = []
    for i, inner in enumerate(branch.node):
        copy = onnx.NodeProto()
        copy.CopyFrom(inner)
        copy.name = prefix + (inner.name or f"{inner.op_type}#{i}")
        out.append(copy)
    for src, dst in zip(branch.output, node.output, strict=False):
        if dst:
            out.append(
                onnx.helper.make_node("Identity", [src.name], [dst], name=f"{prefix}out:{dst}")
            )
    return out


def inline_known_ifs(
    proto: onnx.ModelProto, resolver: ConditionResolver
) -> tuple[onnx.ModelProto, list[Inlined]]:
    """A copy of ``proto`` with every main-graph If of known condition inlined (or ``proto``)."""
    found: dict[int, Inlined] = {}
    for i, node in enumerate(proto.graph.node):
        if node.op_type != "If" or node.domain not in ("", "ai.onnx") or not node.input:
            continue
        cond = resolver.resolve(node.input[0])
        if cond.value is None:
            continue
        taken, other = (
            ("then_branch", "else_branch") if cond.value else ("else_branch", "then_branch")
        )
        found[i] = Inlined(node.name or f"If#{i}", cond, taken, other)
    if not found:
        return proto, []
    new = onnx.ModelProto()
    new.CopyFrom(proto)
    graph = new.graph
    nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(proto.graph.node):
        if i in found:
            nodes.extend(_branch_nodes(node, found[i].label, found[i].taken))
            graph.initializer.extend(subgraphs(node)[found[i].taken].initializer)
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return new, list(found.values())
