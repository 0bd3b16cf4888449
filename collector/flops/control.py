"""Which branch an ``If`` takes, when constants and the user's input values decide it.

Why: a voice-activity model picks its STFT with ``If(sr == 16000)``; counting the larger
branch is then a guess about a value the user knows. The condition's cone (the nodes it
depends on) is cut out of the main graph and evaluated with onnxruntime, fed only
initializers, Constants and given input values (not folded values, so that the report can say
which given values decided it); an input reached only through ``Shape``/``Size`` needs only
its shape. Anything else in the cone (an input without a value,
random ops, nested control flow) leaves the condition unresolved, and the counter falls back to
the larger branch and says which inputs would decide it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from collector.flops.folding import _NEVER, _shape_constant
from collector.flops.ort_shapes import make_session
from collector.flops.tensors import TensorInfo

MAX_CONE_NODES = 512


@dataclass
class Condition:
    """An If condition: its value when known, and the inputs it reads or would need."""

    value: bool | None = None
    values_used: list[str] = field(default_factory=list)  # "name=value" of given inputs read
    deciders: list[str] = field(default_factory=list)  # inputs whose value would decide it
    why: str = ""  # why it stays unresolved, when no input is to blame


@dataclass
class _Cone:
    nodes: dict[int, onnx.NodeProto] = field(default_factory=dict)
    inits: dict[str, onnx.TensorProto] = field(default_factory=dict)
    cond: Condition = field(default_factory=Condition)


class ConditionResolver:
    """Resolves the conditions of the main graph's If nodes (built once per model)."""

    def __init__(
        self,
        graph: onnx.GraphProto,
        table: Mapping[str, TensorInfo],
        given: Mapping[str, npt.NDArray[Any]],
        opsets: list[onnx.OperatorSetIdProto],
    ) -> None:
        self.graph, self.table, self.given = graph, table, given
        self.opsets = opsets
        self.producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
        self.inits = {t.name: t for t in graph.initializer}
        self.inputs = {vi.name for vi in graph.input} - set(self.inits)

    def resolve(self, name: str) -> Condition:
        """The value of the bool tensor ``name``, or why it cannot be known before a run."""
        cone = self._cone(name)
        cond = cone.cond
        if cond.deciders or cond.why:
            return cond
        nodes = [cone.nodes[i] for i in sorted(cone.nodes)]
        graph = onnx.helper.make_graph(
            nodes, "if_condition", [], [onnx.ValueInfoProto(name=name)], list(cone.inits.values())
        )
        model = onnx.helper.make_model(graph, ir_version=8, opset_imports=self.opsets)
        try:
            (arr,) = make_session(model.SerializeToString()).run([name], {})  # type: ignore[attr-defined]
        except Exception as exc:  # onnxruntime's own exception types
            cond.why = f"evaluating it failed: {' '.join(str(exc).split())[:200]}"
            return cond
        arr = np.asarray(arr)
        if arr.size != 1:
            cond.why = f"it has {arr.size} elements, not one"
            return cond
        cond.value = bool(arr.reshape(-1)[0])
        return cond

    def _cone(self, name: str) -> _Cone:
        """The nodes and constants ``name`` depends on, or the inputs that block it."""
        cone, stack, seen = _Cone(), [name], set()
        cond = cone.cond
        while stack:
            t = stack.pop()
            if not t or t in seen:
                continue
            seen.add(t)
            if t in self.given:
                cone.inits[t] = onnx.numpy_helper.from_array(self.given[t], t)
                cond.values_used.append(f"{t}={_array_text(self.given[t])}")
            elif t in self.inits:
                cone.inits[t] = self.inits[t]
            elif t in self.inputs:
                cond.deciders.append(t)
            elif t in self.producer:
                self._add_node(self.producer[t], cone, stack)
            else:
                cond.why = f"tensor '{t}' has no producer in the main graph"
            if len(cone.nodes) > MAX_CONE_NODES:
                cond.why = f"it depends on more than {MAX_CONE_NODES} nodes"
                break
        cond.values_used.sort()
        cond.deciders.sort()
        return cone

    def _add_node(self, i: int, cone: _Cone, stack: list[str]) -> None:
        """Add producer ``i`` to the cone (a Shape/Size of a sized tensor as a constant)."""
        node = self.graph.node[i]
        if node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx"):
            info = self.table.get(node.input[0])
            if info is not None and info.static:
                cone.nodes[i] = _shape_constant(node, info)
                return
            source = node.input[0]
            if source in self.inputs:
                cone.cond.deciders.append(source)
                return
        if node.domain not in ("", "ai.onnx") or node.op_type in _NEVER:
            cone.cond.why = f"it depends on node '{node.name or node.op_type}' ({node.op_type})"
            return
        cone.nodes[i] = node
        stack.extend(node.input)


def _array_text(array: npt.NDArray[Any]) -> str:
    """A given value as a short text: the number for one element, else its shape."""
    if array.size == 1:
        return str(array.reshape(-1)[0].item())
    return f"<{array.dtype} {list(array.shape)}>"


def if_taken(label: str, cond: Condition, taken: str, other: str, flops: int) -> str:
    """The assumption line of an If whose condition was resolved before the run."""
    truth = "true" if cond.value else "false"
    at = f" at {', '.join(cond.values_used)}" if cond.values_used else " from constants"
    return (
        f"If '{label}': condition is {truth}{at}: counted {taken} ({flops} FLOPs); {other} not run"
    )


def if_assumed(label: str, cond: Condition, chosen: str, flops: str) -> str:
    """The assumption line of an If whose condition is not known before the run."""
    if cond.deciders:
        give = " ".join(f"--input-value {n}=VALUE" for n in cond.deciders)
        why = f"it depends on the value of {', '.join(repr(n) for n in cond.deciders)} ({give})"
    else:
        why = cond.why or "it is not known before the run"
    return (
        f"If '{label}': condition not resolved ({why}); counted {chosen}, the larger branch "
        f"({flops}), an assumption"
    )
