"""Give every tensor of the optimized graph a size, from the profile of the run itself.

Why: the graph ORT saves through ``optimized_model_filepath`` has no value infos, and ONNX
shape inference knows no ``com.microsoft.nchwc`` op, so every NCHWc tensor (and what follows
it) is unsized. The collector's onnxruntime fallback can size them only when it can run the
agent's graph, which fails when the board's NCHWc block size, CPU or ORT version differ. The
profiler already recorded each node's input and output shapes (``input_type_shape``,
``output_type_shape``) on the board; they are the shapes the kernels really ran on (NCHWc
channels padded to the block), so they are joined to the graph by node name and written as
value infos. A tensor the profile does not describe is left as it was, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx

# ORT's profiler names element types as C++ type names.
ORT_TYPES: dict[str, int] = {
    "float": onnx.TensorProto.FLOAT,
    "double": onnx.TensorProto.DOUBLE,
    "float16": onnx.TensorProto.FLOAT16,
    "MLFloat16": onnx.TensorProto.FLOAT16,
    "bfloat16": onnx.TensorProto.BFLOAT16,
    "BFloat16": onnx.TensorProto.BFLOAT16,
    "int8": onnx.TensorProto.INT8,
    "int8_t": onnx.TensorProto.INT8,
    "uint8": onnx.TensorProto.UINT8,
    "uint8_t": onnx.TensorProto.UINT8,
    "int16": onnx.TensorProto.INT16,
    "int16_t": onnx.TensorProto.INT16,
    "int32": onnx.TensorProto.INT32,
    "int32_t": onnx.TensorProto.INT32,
    "int64": onnx.TensorProto.INT64,
    "int64_t": onnx.TensorProto.INT64,
    "bool": onnx.TensorProto.BOOL,
}

NCHWC = "com.microsoft.nchwc"
_FLOAT = onnx.TensorProto.FLOAT


def profiled_shapes(
    graph: onnx.GraphProto, nodes: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[int, list[int]]]:
    """{tensor: (elem type, dims)} for every node output the profile sized and typed.

    The element type is the profile's (``output_types``, recorded by agents since issue 17),
    else the one the graph states for that tensor, else float for an NCHWc node (ORT's NCHWc
    kernels are float32 only); with none of these, the tensor is left out.
    """
    stated = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in (*graph.input, *graph.value_info, *graph.output)
        if vi.type.tensor_type.elem_type
    }
    by_name = {n.name: n for n in graph.node if n.name}
    found: dict[str, tuple[int, list[int]]] = {}
    for entry in nodes:
        node = by_name.get(str(entry.get("name")))
        shapes, types = entry.get("output_shapes"), entry.get("output_types") or []
        if node is None or not isinstance(shapes, list) or len(shapes) != len(node.output):
            continue
        for i, (tensor, dims) in enumerate(zip(node.output, shapes, strict=True)):
            elem = ORT_TYPES.get(str(types[i])) if i < len(types) else None
            elem = elem or stated.get(tensor) or (_FLOAT if node.domain == NCHWC else None)
            if tensor and elem and isinstance(dims, list):
                found[tensor] = (elem, [int(d) for d in dims])
    return found


def annotate(optimized: Path, nodes: Sequence[Mapping[str, Any]], out: Path) -> int:
    """Write `optimized` to `out` with value infos for the tensors the profile sized (those
    the graph does not already describe); returns how many were added."""
    model = onnx.load(str(optimized), load_external_data=False)
    graph = model.graph
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        return 0  # a copy elsewhere would lose its weights' relative paths
    described = {vi.name for vi in (*graph.input, *graph.value_info, *graph.output)}
    described |= {t.name for t in graph.initializer}
    shapes = profiled_shapes(graph, nodes)
    added = [
        onnx.helper.make_tensor_value_info(name, elem, dims)
        for name, (elem, dims) in shapes.items()
        if name not in described
    ]
    graph.value_info.extend(added)
    onnx.save(model, str(out))
    return len(added)
