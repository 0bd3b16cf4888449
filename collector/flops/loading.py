"""Open an ONNX model for counting and turn every way it can be unusable into a clear error.

Counting needs only shapes, so a model file is parsed without reading external weight files;
their presence is still checked, because a model with missing weights cannot be benchmarked.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from shared.errors import ModelError, UsageError

_DEFAULT_DOMAINS = ("", "ai.onnx")
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


@dataclass
class LoadedModel:
    """A parsed model, how to name it, where its external data lives, and whether we own it."""

    proto: onnx.ModelProto
    label: str
    base_dir: Path | None
    owned: bool


def load(model: str | os.PathLike[str] | onnx.ModelProto) -> LoadedModel:
    """Parse ``model`` (a path or a ModelProto) and check its IR, opsets and external data."""
    if isinstance(model, onnx.ModelProto):
        loaded = LoadedModel(model, model.graph.name or "<in-memory model>", None, owned=False)
    else:
        loaded = _load_file(Path(model))
    check_versions(loaded.proto, loaded.label)
    if loaded.base_dir is not None:
        check_external_data(loaded.proto, loaded.base_dir)
    return loaded


def _load_file(path: Path) -> LoadedModel:
    """Read a model file; a missing path is the user's mistake, a corrupt file the model's."""
    if not path.exists():
        raise UsageError(f"model file not found: {path}", hint="check the path and try again")
    if not path.is_file():
        raise UsageError(f"not a file: {path}", hint="pass the path of an .onnx file")
    try:
        if path.suffix == ".gz":  # model zoos ship gzipped exports; read them as they come
            with gzip.open(path, "rb") as handle:
                proto = onnx.load_from_string(handle.read())
        else:
            proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError, EOFError) as exc:
        raise ModelError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})",
            hint="the file may be truncated or not ONNX; re-export or re-download it",
        ) from exc
    if not proto.HasField("graph") or not proto.ir_version:
        raise ModelError(
            f"{path} holds no ONNX graph (empty, truncated or not an ONNX file)",
            hint="re-export or re-download the model",
        )
    return LoadedModel(proto, str(path), path.resolve().parent, owned=True)


def check_versions(proto: onnx.ModelProto, label: str) -> None:
    """Refuse IR versions and default-domain opsets newer than the installed onnx knows."""
    if proto.ir_version > onnx.IR_VERSION:
        raise ModelError(
            f"{label}: IR version {proto.ir_version} is newer than onnx {onnx.__version__} "
            f"supports ({onnx.IR_VERSION})",
            hint="upgrade onnx (pip install -U onnx) or re-export with an older IR version",
        )
    newest = onnx.defs.onnx_opset_version()
    for opset in proto.opset_import:
        if opset.domain in _DEFAULT_DOMAINS and opset.version > newest:
            raise ModelError(
                f"{label}: uses opset {opset.version} but onnx {onnx.__version__} supports "
                f"opsets up to {newest}",
                hint="upgrade onnx (pip install -U onnx) or re-export with an older opset",
            )


def _external_tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Initializers of ``graph`` and its subgraphs whose data lives in another file."""
    external = onnx.TensorProto.EXTERNAL
    found = [t for t in graph.initializer if t.data_location == external]
    for node in graph.node:
        if node.op_type not in _CONTROL_FLOW:
            continue  # only control-flow ops carry subgraphs; skipping the rest keeps this O(n)
        for attr in node.attribute:
            subgraphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for sub in subgraphs:
                found.extend(_external_tensors(sub))
    return found


def check_external_data(proto: onnx.ModelProto, base_dir: Path) -> None:
    """Check that every external weight file exists and is long enough for its tensors."""
    for tensor in _external_tensors(proto.graph):
        info = {e.key: e.value for e in tensor.external_data}
        where = base_dir / info.get("location", "")
        end = int(info.get("offset", 0) or 0) + int(info.get("length", 0) or 0)
        if not where.is_file() or where.stat().st_size < end:
            raise ModelError(
                f"external data of tensor '{tensor.name}' is missing or short: {where}",
                hint="copy the weight file(s) next to the .onnx file, as when it was exported",
            )
