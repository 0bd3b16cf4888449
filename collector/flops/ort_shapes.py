"""Last-resort shapes: one onnxruntime pass over synthesized inputs, recording every tensor.

Some shapes follow neither from ONNX inference nor from folding shape arithmetic
(``folding``): they depend on tensor values (a slice end read from a weight, NonZero), or on
ops ONNX cannot infer. Running the model once, with graph optimizations disabled and every
unresolved tensor added as a graph output, yields their concrete shapes for the user's input
dims. Inputs the user gave a value for (``--input-value``) get it; the rest are seeded random
data of the right dtype, except an integer or boolean scalar, which is refused rather than made
up (it usually picks a branch). A shape that depends on input values (NonZero, NMS) then holds
"at these inputs", which the report says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from collector.flops.inputs import real_inputs
from collector.flops.loading import LoadedModel
from collector.flops.tensors import TensorInfo
from shared.errors import UsageError
from shared.input_values import missing_value_error

SEED = 0
_MAX_PROTO_BYTES = (1 << 31) - 1


class FallbackFailed(Exception):
    """The onnxruntime pass could not run; the message says why."""


def synthesize_inputs(
    graph: onnx.GraphProto,
    resolved: Mapping[str, list[int | str] | None],
    given: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The given arrays, and seeded random feeds of dtype and resolved shape for the rest."""
    rng = np.random.default_rng(SEED)
    feeds: dict[str, np.ndarray] = dict(given or {})
    for vi in real_inputs(graph):
        if vi.name in feeds:
            continue
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
    given: Mapping[str, np.ndarray] | None = None,
) -> dict[str, TensorInfo]:
    """Shapes of ``names`` (main-graph node outputs) from one onnxruntime run."""
    feeds = synthesize_inputs(proto.graph, resolved, given)
    work = proto if owned else onnx.ModelProto()
    if not owned:
        work.CopyFrom(proto)
    has_external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in work.graph.initializer)
    if has_external:
        if base_dir is None:
            raise FallbackFailed("the model's external weights are not loaded, no path is known")
        onnx.load_external_data_for_model(work, os.fspath(base_dir))
    present = {o.name for o in work.graph.output}
    # Ask for every wanted tensor by name, graph outputs included: an empty list would mean
    # "all outputs" to onnxruntime.
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    n_outputs = len(work.graph.output)
    work.graph.output.extend(onnx.ValueInfoProto(name=n) for n in wanted if n not in present)
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


@dataclass(frozen=True)
class Fallback:
    """What the onnxruntime pass left behind for the walk.

    ``hint`` is what an unknown-dim error tells the user; ``used`` says shapes came from a run
    (the count then holds "at these inputs"); ``pending`` is the error to raise instead when a
    FLOP-bearing node stays unknown because a switch input had no value.
    """

    hint: str
    used: bool = False
    pending: UsageError | None = None


def _failed_hint(exc: FallbackFailed, given: Mapping[str, np.ndarray]) -> str:
    """Why the pass failed, and what to change: values for a control-flow failure."""
    text = str(exc)
    if any(f"{op} node" in text for op in ("If", "Loop", "Scan")) or given:
        return (
            f"ONNX shape inference left it unknown and the onnxruntime fallback failed on these "
            f"input values: {text}; check the values the model expects (--input-value "
            "NAME=VALUE, --input-file NAME=FILE.npy)"
        )
    return f"ONNX shape inference left it unknown and the onnxruntime fallback failed: {text}"


def fill_unresolved(
    loaded: LoadedModel,
    resolved: Mapping[str, list[int | str] | None],
    table: dict[str, TensorInfo],
    missing: list[str],
    assumptions: list[str],
    given: Mapping[str, np.ndarray] | None = None,
    switches: Sequence[str] = (),
) -> Fallback:
    """Run the onnxruntime pass if a main-graph tensor is unresolved.

    ``switches`` are integer/bool scalar inputs without a value: the pass is not run on a
    made-up value for them; the error names them if a FLOP-bearing node needs the pass.
    """
    given = given or {}
    symbolic = [k for k, v in resolved.items() if v is None or any(type(d) is not int for d in v)]
    if symbolic:
        shown = ", ".join(f"{k}=[{', '.join(map(str, resolved[k] or ['?']))}]" for k in symbolic)
        return Fallback(
            f"give every symbolic input dim with --input NAME=DIMS (input_shapes): {shown}"
        )
    if not missing:
        return Fallback("ONNX shape inference left this dim unknown")
    if switches:
        error = missing_value_error(list(switches))
        return Fallback(f"{error.message} ({error.hint})", pending=error)
    try:
        found = ort_shapes(loaded.proto, loaded.owned, loaded.base_dir, resolved, missing, given)
    except FallbackFailed as exc:
        return Fallback(_failed_hint(exc, given))
    table.update(found)
    if found:
        fed = "seeded random inputs"
        if given:
            rest = set(given) != {vi.name for vi in real_inputs(loaded.proto.graph)}
            fed = "the given input values" + (" and seeded random data" if rest else "")
        assumptions.append(
            f"shapes of {len(found)} tensor(s) that ONNX shape inference left unresolved were "
            f"taken from one onnxruntime run on {fed} (e.g. {', '.join(list(found)[:3])}); "
            "shapes that depend on input values hold at these inputs"
        )
    return Fallback(
        "neither ONNX shape inference nor the onnxruntime fallback resolved this dim", bool(found)
    )
