"""Last-resort shapes: one onnxruntime pass over synthesized inputs, recording every tensor.

Some shapes follow neither from ONNX inference nor from folding shape arithmetic
(``folding``): they depend on tensor values (a slice end read from a weight, NonZero), or on
ops ONNX cannot infer. Running the model once, with graph optimizations disabled and every
unresolved tensor added as a graph output, yields their concrete shapes for the user's input
dims. Inputs are seeded random data of the right dtype; a shape that depends on input values
(NonZero, NMS) is then only one possible shape, which the report says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx

from collector.flops.inputs import real_inputs
from collector.flops.loading import LoadedModel
from collector.flops.tensors import TensorInfo

SEED = 0
_MAX_PROTO_BYTES = (1 << 31) - 1


class FallbackFailed(Exception):
    """The onnxruntime pass could not run; the message says why."""


def synthesize_inputs(
    graph: onnx.GraphProto, resolved: Mapping[str, list[int | str] | None]
) -> dict[str, np.ndarray]:
    """Seeded random feeds of each real input's dtype and resolved shape."""
    rng = np.random.default_rng(SEED)
    feeds: dict[str, np.ndarray] = {}
    for vi in real_inputs(graph):
        dims = resolved.get(vi.name)
        if dims is None or not all(isinstance(d, int) for d in dims):
            raise FallbackFailed(f"input '{vi.name}' has unresolved dims {dims}")
        shape = tuple(int(d) for d in dims)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[vi.name] = rng.random(shape) < 0.5
        elif np.issubdtype(dtype, np.integer):
            feeds[vi.name] = rng.integers(0, 2, shape).astype(dtype)
        else:
            feeds[vi.name] = np.zeros(shape, dtype=dtype)
    return feeds


def make_session(data: bytes) -> object:
    """An InferenceSession on ``data`` with every graph optimization off, quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def ort_shapes(
    proto: onnx.ModelProto,
    owned: bool,
    base_dir: Path | None,
    resolved: Mapping[str, list[int | str] | None],
    names: Iterable[str],
) -> dict[str, TensorInfo]:
    """Shapes of ``names`` (main-graph node outputs) from one onnxruntime run."""
    feeds = synthesize_inputs(proto.graph, resolved)
    work = proto if owned else onnx.ModelProto()
    if not owned:
        work.CopyFrom(proto)
    has_external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in work.graph.initializer)
    if has_external:
        if base_dir is None:
            raise FallbackFailed("the model's external weights are not loaded, no path is known")
        onnx.load_external_data_for_model(work, os.fspath(base_dir))
    present = {o.name for o in work.graph.output}
    wanted = [n for n in dict.fromkeys(names) if n not in present]
    n_outputs = len(work.graph.output)
    work.graph.output.extend(onnx.ValueInfoProto(name=n) for n in wanted)
    try:
        if work.ByteSize() > _MAX_PROTO_BYTES:
            raise FallbackFailed(
                "the model is larger than 2 GB and cannot be passed to onnxruntime"
            )
        session = make_session(work.SerializeToString())
        arrays = session.run(wanted, feeds)  # type: ignore[attr-defined]
    except FallbackFailed:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types
        raise FallbackFailed(f"onnxruntime could not run the model: {exc}") from exc
    finally:
        del work.graph.output[n_outputs:]
    found: dict[str, TensorInfo] = {}
    for name, arr in zip(wanted, arrays, strict=True):
        if isinstance(arr, np.ndarray):
            elem = onnx.helper.np_dtype_to_tensor_dtype(arr.dtype) if arr.dtype != object else 8
            found[name] = TensorInfo.make(elem, tuple(int(d) for d in arr.shape))
    return found


def fill_unresolved(
    loaded: LoadedModel,
    resolved: Mapping[str, list[int | str] | None],
    table: dict[str, TensorInfo],
    missing: list[str],
    assumptions: list[str],
) -> str:
    """Run the onnxruntime pass if a main-graph tensor is unresolved; return the error hint.

    The hint is what an unknown-dim error will tell the user, so it says why a dim is unknown.
    """
    symbolic = [k for k, v in resolved.items() if v is None or any(type(d) is not int for d in v)]
    if symbolic:
        shown = ", ".join(f"{k}=[{', '.join(map(str, resolved[k] or ['?']))}]" for k in symbolic)
        return f"give every symbolic input dim with --input NAME=DIMS (input_shapes): {shown}"
    if not missing:
        return "ONNX shape inference left this dim unknown"
    try:
        found = ort_shapes(loaded.proto, loaded.owned, loaded.base_dir, resolved, missing)
    except FallbackFailed as exc:
        return f"ONNX shape inference left it unknown and the onnxruntime fallback failed: {exc}"
    table.update(found)
    if found:
        assumptions.append(
            f"shapes of {len(found)} tensor(s) that ONNX shape inference left unresolved were "
            "taken from one onnxruntime run on seeded random inputs (e.g. "
            f"{', '.join(list(found)[:3])}); shapes that depend on input values may differ"
        )
    return "neither ONNX shape inference nor the onnxruntime fallback resolved this dim"
