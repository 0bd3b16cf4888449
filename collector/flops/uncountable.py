"""The errors for a FLOP-bearing node that cannot be counted: each names the node and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.flops.graphview import NodeRecord
from collector.flops.tensors import TensorInfo
from shared.errors import ModelError

if TYPE_CHECKING:
    from collector.flops.walk import NodeContext


class UnknownDimError(ModelError):
    """A FLOP-bearing node has a dim no pass resolved (not a contradiction in the model)."""


def unknown_dim_error(
    label: str, key: str, names: list[str], infos: list[TensorInfo | None], hint: str
) -> UnknownDimError:
    """The error for a FLOP-bearing node with an unknown dim, naming node, tensor and dim."""
    for name, info in zip(names, infos, strict=True):
        if info is None or info.static:
            continue
        if info.shape is None:
            what = "has an unknown shape"
        else:
            dim = next(j for j, d in enumerate(info.shape) if type(d) is not int)
            what = f"has unknown dim {dim} ('{info.shape[dim]}') in shape {list(info.shape)}"
        return UnknownDimError(f"cannot count node '{label}' ({key}): tensor '{name}' {what}", hint)
    return UnknownDimError(f"cannot count node '{label}' ({key})", hint)


def uncountable(
    node: NodeRecord, label: str, infos: list[TensorInfo | None], ctx: NodeContext
) -> ModelError:
    """The error for a FLOP-bearing node whose shapes are not all known."""
    strict = ctx.strict_error
    if strict and node.name and f"node name: {node.name})" in strict:
        return ModelError(
            f"node '{label}' ({node.key}) has contradictory shapes: {strict}",
            hint="fix or re-export the model; the node's inputs do not fit together",
        )
    names = node.inputs + node.outputs
    return unknown_dim_error(label, node.key, names, infos, ctx.unresolved_hint)
