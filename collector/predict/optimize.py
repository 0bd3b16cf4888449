"""The graph a board's onnxruntime will run, made on the collector, and each node's shapes.

Why: kernel predictors learn from profiles of the OPTIMIZED graph (ORT folds BatchNormalization
into Conv, fuses activations, and on x86 rewrites Conv into ``com.microsoft.nchwc`` blocks with
ReorderInput/ReorderOutput), so an unmeasured model must be seen as that same graph before a
kernel can be priced. This module builds it with this process's onnxruntime at the device's
opt level and provider, saves it (``optimized_model_filepath``), profiles one run of the saved
graph with optimizations off at the user's input dims and values, and lists its nodes as the
agent's profile does (``agent.engine.profile_ops``): the same keys, shapes and type names, with
``kernel_time_us`` None. An unnamed node is labelled ``<op_key>#<index>``, as collector.flops
labels it, so rows join to FLOP counts. Nodes inside If/Loop bodies are not listed.

Results are cached under ``cache_dir/<key>/`` (``optimized.onnx``, ``nodes.json``), keyed by
the model's bytes, the onnxruntime version, opt level, provider, input dims and input values; the
folder is built under a temporary name and renamed into place, so a concurrent reader sees a
whole entry or none, and a cache hit starts no onnxruntime session.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from collector.flops import op_key
from collector.flops.inputs import resolve_inputs
from collector.flops.loading import load
from collector.flops.ort_shapes import synthesize_inputs
from collector.flops.values import Arrays, merge_shapes, missing_switches, value_arrays
from collector.store.location import local_folder
from shared.errors import ModelError, UsageError
from shared.hashing import file_sha256
from shared.input_values import InputValue, missing_value_error
from shared.settings import OPT_LEVELS, ORT_LEVEL_NAMES

CACHE_FORMAT = 1
_MAX_DEFAULT_ELEMENTS = 1 << 20  # a default input larger than this is a weight, not a shape
OPTIMIZED = "optimized.onnx"
NODES = "nodes.json"
_KERNEL = "_kernel_time"  # the suffix of a node's kernel event in ORT's profile
_ORT_PREFIX = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")


@dataclass(frozen=True)
class OptimizedGraph:
    """The optimized graph (in the cache) and its nodes as profile-like rows, in graph order."""

    path: Path
    sha256: str
    nodes: list[dict[str, Any]]
    input_shapes: dict[str, list[int]]
    onnxruntime: str
    opt_level: str
    provider: str
    notes: list[str]


def optimize_for_device(
    model: Path,
    *,
    opt_level: str = "all",
    provider: str = "CPUExecutionProvider",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, InputValue] | None = None,
    device_onnxruntime: str | None = None,
    disabled_optimizers: Sequence[str] = (),
    cache_dir: Path,
) -> OptimizedGraph:
    """The graph `model` becomes on a device running `opt_level` and `provider`, sized at the
    given input dims and values, without `disabled_optimizers` (ORT's names, e.g.
    ``NchwcTransformer`` for a board whose onnxruntime does not block convolutions); cached.
    Raises UsageError (bad level, provider, missing dim)
    and ModelError (a model onnxruntime refuses)."""
    import onnxruntime as ort

    if opt_level not in OPT_LEVELS:
        raise UsageError(f"unknown optimisation level {opt_level!r}", f"use one of: {OPT_LEVELS}")
    available = ort.get_available_providers()
    if provider not in available:
        raise UsageError(
            f"execution provider {provider!r} is not in this collector's onnxruntime "
            f"{ort.__version__}",
            hint=f"choose one of: {', '.join(available)}",
        )
    model = Path(model)
    loaded = load(model)
    arrays = value_arrays(loaded.proto.graph, input_values)
    shapes = _static_inputs(loaded.proto.graph, input_shapes, arrays)
    model_sha256 = file_sha256(model)
    disabled = sorted(disabled_optimizers)
    key = _cache_key(model_sha256, ort.__version__, opt_level, provider, shapes, input_values)
    if disabled:
        key = hashlib.sha256(f"{key} without {','.join(disabled)}".encode()).hexdigest()
    folder = local_folder(cache_dir) / key  # a URL's DB.predict-cache: a local cache folder
    cached = _read_entry(folder)
    if cached is None:
        cached = _build_entry(
            model, model_sha256, folder, opt_level, provider, shapes, arrays, disabled
        )
    notes = []
    if disabled:
        notes.append(f"the graph was made without {', '.join(disabled)}, as the device runs")
    if device_onnxruntime and device_onnxruntime != ort.__version__:
        notes.append(
            f"the device runs onnxruntime {device_onnxruntime}, the graph was made with "
            f"{ort.__version__}: fusions and layouts may differ (pip install "
            f"onnxruntime=={device_onnxruntime} beside the collector to match it)"
        )
    return OptimizedGraph(
        path=folder / OPTIMIZED,
        sha256=str(cached["optimized_sha256"]),
        nodes=list(cached["nodes"]),
        input_shapes=shapes,
        onnxruntime=ort.__version__,
        opt_level=opt_level,
        provider=provider,
        notes=notes,
    )


def _static_inputs(
    graph: onnx.GraphProto, input_shapes: Mapping[str, Sequence[int]] | None, arrays: Arrays
) -> dict[str, list[int]]:
    """Every real input's dims from `input_shapes` and the values; a dim left dynamic, or an
    integer switch left without a value, is refused naming the input."""
    switches = missing_switches(graph, arrays)
    if switches:
        raise missing_value_error(switches)
    resolved = resolve_inputs(graph, merge_shapes(input_shapes, arrays))
    out: dict[str, list[int]] = {}
    for name, dims in resolved.items():
        unknown = [i for i, d in enumerate(dims or [None]) if not isinstance(d, int)]
        if dims is None or unknown:
            shown = "of unknown rank" if dims is None else f"{dims}, dim {unknown[0]} dynamic"
            example = "x".join(str(d) if isinstance(d, int) else "N" for d in dims or ["N"])
            raise UsageError(
                f"input '{name}' is {shown}: the optimized graph needs every dim",
                hint=f"give it with --input {name}={example} (N: the size the device runs)",
            )
        out[name] = [int(d) for d in dims if isinstance(d, int)]
    return out


def _cache_key(
    model_sha256: str,
    version: str,
    opt_level: str,
    provider: str,
    shapes: Mapping[str, Sequence[int]],
    values: Mapping[str, InputValue] | None,
) -> str:
    """sha256 of everything the optimized graph and its shapes depend on; a value file counts
    by its content (``describe``'s sha256), not its path."""
    shown = {
        name: {k: v for k, v in value.describe().items() if k != "file"}
        for name, value in sorted((values or {}).items())
    }
    text = json.dumps(
        [model_sha256, version, opt_level, provider, sorted(shapes.items()), shown],
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def input_defaults(model: Path) -> Arrays:
    """Values of the inputs an IR < 4 model declares with an initializer as their default.

    Why: ORT folds what they feed (e.g. the ``*_SHAPE`` inputs of ConstantOfShape weights in
    the onnx wheel's light models) and saves the optimized graph with them still declared as
    inputs but without their initializers, so a run of that graph must be handed them."""
    import numpy as np

    graph = onnx.load(str(model), load_external_data=False).graph
    declared = {vi.name for vi in graph.input}
    return {
        t.name: np.asarray(onnx.numpy_helper.to_array(t))
        for t in graph.initializer
        if t.name in declared
        and t.data_location != onnx.TensorProto.EXTERNAL
        and math.prod(t.dims) <= _MAX_DEFAULT_ELEMENTS
    }


def _read_entry(folder: Path) -> dict[str, Any] | None:
    """The cached entry in `folder`, or None (absent, or not an entry this version wrote)."""
    try:
        entry = json.loads((folder / NODES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT
    return entry if ok and (folder / OPTIMIZED).is_file() else None


def _build_entry(
    model: Path,
    model_sha256: str,
    folder: Path,
    opt_level: str,
    provider: str,
    shapes: Mapping[str, list[int]],
    arrays: Arrays,
    disabled: Sequence[str] = (),
) -> dict[str, Any]:
    """Optimize into a temporary folder beside `folder`, size the nodes, rename it into place
    (a concurrent writer that got there first wins; its entry is the same)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name[:16]}-", dir=folder.parent))
    try:
        optimized = _optimize(model, work / OPTIMIZED, opt_level, provider, disabled)
        entry = {
            "format": CACHE_FORMAT,
            "model_sha256": model_sha256,
            "optimized_sha256": file_sha256(optimized),
            "input_shapes": dict(shapes),
            "nodes": node_rows(
                optimized, shapes, {**input_defaults(model), **arrays}, provider, model.name
            ),
        }
        (work / NODES).write_text(json.dumps(entry), encoding="utf-8")
        if _read_entry(folder) is None and folder.exists():
            shutil.rmtree(folder)  # an unreadable old entry is rebuilt, never trusted
        try:
            os.rename(work, folder)
        except OSError:
            found = _read_entry(folder)
            if found is None:
                raise
            return found
        return entry
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _optimize(
    model: Path, out: Path, opt_level: str, provider: str, disabled: Sequence[str] = ()
) -> Path:
    """Let onnxruntime optimize `model` (from its own folder, so side-file weights load) and
    save the result to `out`; weights kept in side files go to one file beside `out`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_LEVEL_NAMES[opt_level])
    opts.optimized_model_filepath = str(out)
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    proto = onnx.load(str(model), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        opts.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", f"{out.name}.data"
        )
    try:
        ort.InferenceSession(str(model), sess_options=opts, providers=[provider],
                             disabled_optimizers=list(disabled))  # fmt: skip
    except Exception as exc:  # ORT's pybind errors share no public base class
        raise ModelError(
            f"onnxruntime {ort.__version__} could not optimize {model.name}: {_one_line(exc)}",
            hint="check the model with onnx.checker, or that this onnxruntime supports its ops",
        ) from exc
    if not out.is_file():
        raise ModelError(f"onnxruntime saved no optimized graph for {model.name}")
    return out


def _one_line(exc: BaseException) -> str:
    """ORT's message on one line, without its ``[ONNXRuntimeError] : 2 : KIND :`` prefix."""
    return _ORT_PREFIX.sub("", " ".join(str(exc).split()))[:300]


def node_rows(
    optimized: Path,
    shapes: Mapping[str, list[int]],
    arrays: Arrays,
    provider: str,
    label: str = "the model",
) -> list[dict[str, Any]]:
    """Profile-like rows for every main-graph node of `optimized`, from one profiled run of it
    with optimizations off (`label` names the model in errors).

    Why the profiler and not shape inference: the profile lists what each kernel was handed,
    which is not every input the graph names: an empty optional input is absent, and so is a
    weight the kernel prepacked (a Gemm's or MatMul's B) while a Conv's stays; only the
    profiler's own view matches the agent's rows. Loaded unoptimized, the saved graph keeps
    its node order, so an unnamed node's profiler name ``<OpType>_<i>`` is its index here.
    """
    graph = onnx.load(str(optimized), load_external_data=False).graph
    events = _profile_once(optimized, shapes, arrays, provider, label)
    rows = []
    for i, node in enumerate(graph.node):
        event = events.get(node.name or f"{node.op_type}_{i}", {})
        outputs = event.get("output_type_shape")
        rows.append(
            {
                "name": node.name or f"{op_key(node.domain, node.op_type)}#{i}",
                "op_type": node.op_type,
                "provider": provider,
                "input_shapes": _dims(event.get("input_type_shape")),
                "output_shapes": _dims(outputs),
                "output_types": None if outputs is None else [next(iter(t)) for t in outputs],
                "calls": 1,
                "kernel_time_us": None,
            }
        )
    return rows


def _dims(typed: list[dict[str, list[int]]] | None) -> list[list[int]] | None:
    """``[{"float": [1, 3]}, ...]`` (the profiler's layout) as ``[[1, 3], ...]``."""
    return None if typed is None else [list(next(iter(t.values()))) for t in typed]


def _profile_once(
    optimized: Path, shapes: Mapping[str, list[int]], arrays: Arrays, provider: str, label: str
) -> dict[str, dict[str, Any]]:
    """The ``args`` of each node's kernel event in one profiled run, by profiler node name.

    Outputs stay OrtValues (``run_with_ort_values``), so a bfloat16 tensor needs no numpy type.
    """
    import onnxruntime as ort

    graph = onnx.load(str(optimized), load_external_data=False).graph
    resolved: dict[str, list[int | str] | None] = {k: list(v) for k, v in shapes.items()}
    declared = {vi.name for vi in graph.input} - {t.name for t in graph.initializer}
    feeds = synthesize_inputs(graph, resolved, {k: v for k, v in arrays.items() if k in declared})
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="flopgap-profile-") as work:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(work) / "nodes")
        try:
            session = ort.InferenceSession(str(optimized), sess_options=opts, providers=[provider])
            values = {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in feeds.items()}
            session.run_with_ort_values([o.name for o in session.get_outputs()], values)
        except Exception as exc:  # ORT's pybind errors share no public base class
            raise ModelError(
                f"the optimized graph of {label} could not be run to size its nodes: "
                f"{_one_line(exc)}",
                hint="check that the model runs at these input dims and values",
            ) from exc
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    return {
        e["name"][: -len(_KERNEL)]: e.get("args", {})
        for e in events
        if isinstance(e, dict) and e.get("cat") == "Node" and e["name"].endswith(_KERNEL)
    }
