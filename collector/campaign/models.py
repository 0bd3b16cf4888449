"""Which models a campaign runs: paths, globs, zoo and sweep names resolved, inputs read.

Why: a path that does not exist, a glob that matches nothing or two files with the same stem
must stop the campaign at load, not after a fleet has run half of it. The inputs each model
declares are read here, once, with onnx (imported only then; weights stay on disk:
``load_external_data=False``), so that shapes and batch sizes are checked against the model and
the stored campaign can expand its jobs after a restart without opening the files again.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from collector.campaign.tables import Table
from shared.errors import ModelError

if TYPE_CHECKING:
    import onnx

ZOO_PREFIX = "zoo:"
SWEEP_PREFIX = "sweep:"
_GLOB_CHARS = frozenset("*?[")

Dims = tuple[int | None, ...]


@dataclass(frozen=True)
class ModelInput:
    """One graph input as the model declares it: ``None`` per dynamic dim, ``dims=None`` when
    the model gives no rank at all; ``dtype`` is numpy's name of its element type (``None``
    for strings, types numpy lacks and non-tensors), to check given values against."""

    name: str
    dims: Dims | None
    dtype: str | None = None


@dataclass(frozen=True)
class ModelRef:
    """One model of a campaign: a file (``path``), a built-in zoo model (``zoo``) or a kernel
    of a named sweep (``sweep``, the sweep's name; the kernel is the one whose id is ``name``).

    ``name`` is the file stem (or zoo name, or sweep kernel id): it keys ``[inputs]`` and must
    be unique.
    """

    name: str
    path: Path | None = None
    zoo: str | None = None
    inputs: tuple[ModelInput, ...] = ()
    sweep: str | None = None


def resolve_models(top: Table, base: Path, seed: int) -> list[ModelRef]:
    """Every model the ``models`` list names, in the order written, with its declared inputs.

    Relative paths and globs are taken from ``base`` (the campaign file's folder); a glob's
    matches are sorted so the job order does not depend on the filesystem.
    """
    entries = top.items("models", "a string")
    if entries is None:
        raise top.error("models", "missing required key", 'add models = ["model.onnx"]')
    found: list[tuple[ModelRef, str]] = []
    for index, entry in enumerate(entries):
        found += [(ref, entry) for ref in _expand(top, index, entry, base)]
    seen: dict[str, str] = {}
    for ref, entry in found:
        if ref.name in seen:
            raise top.error(
                "models",
                f"two models are named {ref.name!r} (from {seen[ref.name]!r} and {entry!r})",
                "a model's name is its file stem and keys [inputs]; rename or drop one",
            )
        seen[ref.name] = entry
    return [_with_inputs(top, ref, seed) for ref, _ in found]


def _expand(top: Table, index: int, entry: str, base: Path) -> list[ModelRef]:
    """The models one ``models`` entry stands for: a zoo or sweep name, a glob or a path."""
    if entry.startswith(SWEEP_PREFIX):
        return _sweep_refs(top, index, entry[len(SWEEP_PREFIX) :])
    if entry.startswith(ZOO_PREFIX):
        from collector import zoo  # builds with onnx: imported when a campaign is loaded

        name = entry[len(ZOO_PREFIX) :]
        if name == "*":
            return [ModelRef(name=n, zoo=n) for n in zoo.ZOO]
        if name not in zoo.ZOO:
            raise top.error(
                "models",
                f"no zoo model named {name!r}",
                f"the zoo has: {', '.join(zoo.ZOO)}; write zoo:<name>, or zoo:* for all",
                index,
            )
        return [ModelRef(name=name, zoo=name)]
    pattern = Path(entry).expanduser()
    resolved = pattern if pattern.is_absolute() else base / pattern
    if _GLOB_CHARS & set(entry):
        # root_dir keeps glob characters in the folder's own name from being read as a pattern
        matches = glob.glob(str(pattern), root_dir=base, recursive=True)
        files = sorted(p for p in (base / m for m in matches) if p.is_file())
        if not files:
            raise top.error(
                "models",
                f"glob {entry!r} matches no file (searched {resolved})",
                "globs are relative to the campaign file's folder; fix the pattern",
                index,
            )
        return [ModelRef(name=p.stem, path=p) for p in files]
    if not resolved.is_file():
        state = "is not a file" if resolved.exists() else "does not exist"
        raise top.error(
            "models",
            f"{entry!r} resolves to {resolved.resolve()}, which {state}",
            "paths are relative to the campaign file's folder; fix the path",
            index,
        )
    return [ModelRef(name=resolved.stem, path=resolved)]


def _sweep_refs(top: Table, index: int, name: str) -> list[ModelRef]:
    """Every kernel of the named sweep, named by its id, with the float32 inputs it declares
    (the same the sweep's builder gives its graph, so nothing is built at load)."""
    from collector import sweep  # light: sampling needs no onnx

    if name not in sweep.NAMED:
        raise top.error(
            "models",
            f"no sweep named {name!r}",
            f"the named sweeps are: {', '.join(sweep.NAMED)}; write sweep:<name> "
            "(`flopgap sweep list` shows them)",
            index,
        )
    return [
        ModelRef(
            name=sample.id,
            sweep=name,
            inputs=tuple(ModelInput(n, dims, "float32") for n, dims in sample.inputs.items()),
        )
        for sample in sweep.named_samples(name)
    ]


def _with_inputs(top: Table, ref: ModelRef, seed: int) -> ModelRef:
    """``ref`` with the inputs its graph declares (initializers are not inputs)."""
    if ref.sweep is not None:
        return ref  # _sweep_refs gave it the inputs its builder declares
    if ref.zoo is not None:
        from collector import zoo

        model = zoo.build(ref.zoo, seed)
    else:
        assert ref.path is not None  # _expand gives every non-zoo model a path
        model = _load(top, ref.path)
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = tuple(
        ModelInput(value.name, _dims(value), _dtype(value))
        for value in graph.input
        if value.name not in initializers
    )
    return ModelRef(name=ref.name, path=ref.path, zoo=ref.zoo, inputs=inputs)


def _load(top: Table, path: Path) -> onnx.ModelProto:
    """The model's graph without its external weights, or a ModelError naming the file.

    onnx is imported here, when a campaign is loaded, so that the server (which imports the
    campaign package for its stored specs and targets) never loads it."""
    import onnx

    try:
        return onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf DecodeError, ValueError, OSError, ...
        raise ModelError(
            f"{top.source}: models: {path} is not a readable ONNX model: {exc}",
            "check that the file is a complete .onnx export, or drop it from models",
        ) from exc


def _dims(value: onnx.ValueInfoProto) -> Dims | None:
    """Declared dims, ``None`` where dynamic (a symbol, unset, or negative, as onnxruntime
    sees it); ``None`` for a non-tensor input or one without a rank."""
    kind = value.type
    if not kind.HasField("tensor_type") or not kind.tensor_type.HasField("shape"):
        return None
    return tuple(
        dim.dim_value if dim.HasField("dim_value") and dim.dim_value >= 0 else None
        for dim in kind.tensor_type.shape.dim
    )


def _dtype(value: onnx.ValueInfoProto) -> str | None:
    """numpy's name of a tensor input's element type, ``None`` where numpy lacks a number type."""
    from onnx import helper

    kind = value.type
    if not kind.HasField("tensor_type"):
        return None
    try:
        dtype = helper.tensor_dtype_to_np_dtype(kind.tensor_type.elem_type)
    except (KeyError, ValueError, TypeError):
        return None
    return dtype.name if dtype.kind in "biuf" and dtype.name != "bfloat16" else None
