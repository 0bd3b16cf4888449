"""One feature row per fused node of an optimized graph: what a kernel's time depends on.

Why from shapes and attributes alone: the same function must describe a node an agent
profiled (training) and a node of a graph nobody ran (prediction, shapes from the collector's
own sizing), so it reads only what both have, a profile-like node entry (``name``,
``op_type``, ``input_shapes``, ``output_shapes``, ``output_types``) and the optimized graph's
node (domain and attributes). Work is counted here from those shapes as the kernel ran them
(NCHWc convolutions with their channel padding, a fused residual Add as a fourth input), not
from the original model, because the kernel's time follows the work it did.

A kernel's family is its op as ORT executes it (``com.microsoft.nchwc.Conv``,
``com.microsoft.FusedMatMul``, ``Add`` ...): one regressor per family (collector.predict.kernels).
A feature that does not apply is NaN, which LightGBM reads as missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import onnx

from collector.flops import op_key

FEATURE_VERSION = 3  # bump when a feature changes meaning: stored predictors then retrain

NAN = float("nan")
ACTIVATIONS = ("", "Relu", "Clip", "HardSigmoid", "LeakyRelu", "Sigmoid", "Tanh")
_CONV = frozenset({"Conv", "FusedConv"})
_MATMUL = frozenset({"MatMul", "FusedMatMul", "MatMulInteger", "MatMulNBits"})
_GEMM = frozenset({"Gemm", "FusedGemm"})
_ELEM_BYTES = {"float": 4, "float16": 2, "MLFloat16": 2, "double": 8, "int64_t": 8, "int64": 8,
               "int32_t": 4, "int32": 4, "int8_t": 1, "int8": 1, "uint8_t": 1, "uint8": 1,
               "bool": 1}  # fmt: skip
_UNNAMED = re.compile(r"(\w+)_(\d+)$")

# The numeric columns every row has, in the order the regressors see them.
FEATURES: tuple[str, ...] = (
    "log_macs",
    "log_bytes",
    "log_out",
    "log_in",
    "intensity",
    "n_inputs",
    "rank",
    "in_0", "in_1", "in_2", "in_3",
    "out_0", "out_1", "out_2", "out_3",
    "kh", "kw", "stride", "dilation", "group", "cin_per_group", "cout", "depthwise",
    "pads", "activation", "has_sum",
    "m", "k", "n", "batch", "trans_a", "trans_b",
    "elem_bytes",
    "axis_from_end", "axis_len", "log_inner", "log_weight_bytes",
)  # fmt: skip
_AXIS_DEFAULT = {"Softmax": -1, "LogSoftmax": -1, "Hardmax": -1, "LayerNormalization": -1,
                 "Concat": 0, "Split": 0, "Gather": 0, "Flatten": 1}  # fmt: skip


def graph_index(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """The graph's nodes by the name a profile gives them (collector.flops' label when unnamed)."""
    index: dict[str, onnx.NodeProto] = {}
    for i, node in enumerate(graph.node):
        index[node.name or f"{op_key(node.domain, node.op_type)}#{i}"] = node
    return index


def _find(
    entry: Mapping[str, Any], index: Mapping[str, onnx.NodeProto], graph: onnx.GraphProto
) -> onnx.NodeProto | None:
    """The graph node of a profile entry: by name, else ORT's ``<OpType>_<index>`` of an
    unnamed node."""
    name = str(entry.get("name"))
    node = index.get(name)
    if node is not None:
        return node
    match = _UNNAMED.fullmatch(name)
    if match and int(match.group(2)) < len(graph.node):
        candidate = graph.node[int(match.group(2))]
        if not candidate.name and candidate.op_type == match.group(1):
            return candidate
    return None


def _prod(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= max(int(d), 0)
    return out


def _shapes(value: Any) -> list[list[int]]:
    if not isinstance(value, list):
        return []
    return [[int(d) for d in s] if isinstance(s, list) else [] for s in value]


def _attrs(node: onnx.NodeProto | None) -> dict[str, Any]:
    if node is None:
        return {}
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _tail(dims: Sequence[int], width: int = 4) -> list[float]:
    """The last `width` dims, right-aligned (NaN where the tensor has fewer)."""
    tail = [float(d) for d in dims[-width:]]
    return [NAN] * (width - len(tail)) + tail


def _log(x: float) -> float:
    return math.log(x) if x > 0 else 0.0


# A fused node that runs its plain op's kernel with an activation after it is that op's family
# (the activation is a feature): MLAS runs FusedConv as Conv, FusedGemm as Gemm, so a grouped
# convolution measured with a Relu teaches the one without.
_SAME_KERNEL = {"com.microsoft.FusedConv": "Conv", "com.microsoft.FusedGemm": "Gemm"}


def family(entry: Mapping[str, Any], node: onnx.NodeProto | None) -> str:
    """The kernel family: the op as ORT executes it, domain-qualified."""
    key = op_key(node.domain, node.op_type) if node is not None else str(entry.get("op_type"))
    return _SAME_KERNEL.get(key, key)


def macs(fam: str, ins: Sequence[Sequence[int]], outs: Sequence[Sequence[int]],
         attrs: Mapping[str, Any]) -> int:  # fmt: skip
    """Multiply-accumulates of a Conv/ConvTranspose/MatMul/Gemm kernel at the shapes it ran; 0
    for every other op (their cost is in bytes)."""
    op = fam.rsplit(".", 1)[-1]
    if len(ins) < 2 or not outs or not outs[0]:
        return 0
    weight, out = ins[1], outs[0]
    if op in _CONV and len(weight) >= 3 and len(out) >= 3:
        return _prod(out) * weight[1] * _prod(weight[2:])
    if op == "ConvTranspose" and len(weight) >= 3 and ins[0]:
        return _prod(ins[0]) * weight[1] * _prod(weight[2:])
    a = ins[0]
    if op in _MATMUL and a:
        k = a[-2] if attrs.get("transA") and len(a) >= 2 else a[-1]
        return _prod(out) * k
    if op in _GEMM and len(a) == 2:
        return _prod(out) * (a[0] if attrs.get("transA") else a[1])
    return 0


def kernel_row(
    entry: Mapping[str, Any],
    node: onnx.NodeProto | None,
    weights: Mapping[str, list[int]] | None = None,
) -> dict[str, Any]:
    """The feature row of one profiled (or sized) node: ``node``, ``family``, FEATURES, and
    ``kernel_time_us`` when the entry has a time.

    The profiler leaves out a weight its kernel prepacked (a MatMul's or Gemm's B, a
    ConvTranspose's filter); `weights` (the graph's initializer dims) puts it back, so the
    work and bytes are the kernel's whole ones."""
    fam = family(entry, node)
    op = fam.rsplit(".", 1)[-1]
    ins, outs = _shapes(entry.get("input_shapes")), _shapes(entry.get("output_shapes"))
    if node is not None and weights and len(ins) < len(node.input):
        ins = _with_weights(ins, node, weights)
    attrs = _attrs(node)
    types = entry.get("output_types") or ["float"]
    elem = _ELEM_BYTES.get(str(types[0]), 4)
    in_elems = sum(_prod(s) for s in ins)
    out_elems = sum(_prod(s) for s in outs)
    nbytes = elem * (in_elems + out_elems)
    work = macs(fam, ins, outs, attrs)
    row: dict[str, Any] = dict.fromkeys(FEATURES, NAN)
    first_in, first_out = (ins[0] if ins else []), (outs[0] if outs else [])
    row.update(
        log_macs=_log(work),
        log_bytes=_log(nbytes),
        log_out=_log(out_elems),
        log_in=_log(_prod(first_in) if first_in else 0),
        intensity=work / nbytes if nbytes else 0.0,
        n_inputs=float(len(ins)),
        rank=float(len(first_in)),
        elem_bytes=float(elem),
    )
    row.update(zip(("in_0", "in_1", "in_2", "in_3"), _tail(first_in), strict=True))
    row.update(zip(("out_0", "out_1", "out_2", "out_3"), _tail(first_out), strict=True))
    if op in _CONV or op == "ConvTranspose":
        row.update(_conv(op, ins, attrs))
    elif op in _MATMUL or op in _GEMM:
        row.update(_matmul(op, ins, first_out, attrs))
    for pool_key in ("kernel_shape", "strides"):  # pooling has no weight to read them from
        if op not in _CONV and pool_key in attrs and op != "ConvTranspose":
            dims = list(attrs[pool_key])
            if pool_key == "kernel_shape" and dims:
                row["kh"], row["kw"] = float(dims[0]), float(dims[-1])
            elif dims:
                row["stride"] = float(max(dims))
    row.update(_axis(op, first_in, attrs))
    weight_bytes = _weight_bytes(node, weights or {}, elem)
    row["log_weight_bytes"] = _log(weight_bytes)
    out: dict[str, Any] = {"node": str(entry.get("name")), "family": fam, **row,
                           "weight_bytes": weight_bytes}  # fmt: skip
    time = entry.get("kernel_time_us")
    out["kernel_time_us"] = float(time) if isinstance(time, (int, float)) else None
    return out


def _axis(op: str, dims: Sequence[int], attrs: Mapping[str, Any]) -> dict[str, float]:
    """Where along its input an axis-wise op works: a softmax or concat over the last axis is
    a contiguous pass, over an outer one a strided (or transposing) one, at the same bytes."""
    axis = attrs.get("axis", _AXIS_DEFAULT.get(op))
    if axis is None or not dims or isinstance(axis, (list, tuple)):
        return {}
    at = int(axis) + len(dims) if int(axis) < 0 else int(axis)
    if not 0 <= at < len(dims):
        return {}
    return {"axis_from_end": float(len(dims) - 1 - at), "axis_len": float(dims[at]),
            "log_inner": _log(_prod(dims[at + 1 :]))}  # fmt: skip


def _weight_bytes(node: onnx.NodeProto | None, weights: Mapping[str, list[int]], elem: int) -> int:
    """Bytes of the node's initializer inputs: what a whole model reads from memory afresh
    each inference when its weights do not stay in cache (collector.predict.whole)."""
    if node is None:
        return 0
    return sum(elem * _prod(weights[name]) for name in node.input if name in weights)


def _with_weights(
    ins: list[list[int]], node: onnx.NodeProto, weights: Mapping[str, list[int]]
) -> list[list[int]]:
    """The profiled input shapes with each initializer the profile left out put back in its
    place: the profile lists a node's inputs in order, less the weights its kernel prepacked."""
    listed = 0
    out: list[list[int]] = []
    for name in (n for n in node.input if n):
        dims = weights.get(name)
        if listed < len(ins) and (dims is None or ins[listed] == dims):
            out.append(ins[listed])
            listed += 1
        else:
            out.append(dims if dims is not None else [])
    return out


def _conv(op: str, ins: Sequence[Sequence[int]], attrs: Mapping[str, Any]) -> dict[str, float]:
    weight = ins[1] if len(ins) > 1 and len(ins[1]) >= 2 else []
    group = int(attrs.get("group", 1))
    act = attrs.get("activation", b"")
    act = act.decode() if isinstance(act, bytes) else str(act)
    code = ACTIVATIONS.index(act) if act in ACTIVATIONS else len(ACTIVATIONS)
    kernel = list(weight[2:]) if len(weight) >= 3 else list(attrs.get("kernel_shape", []))
    strides = list(attrs.get("strides", [1]))
    dilations = list(attrs.get("dilations", [1]))
    transpose = op == "ConvTranspose"
    cin_pg = weight[0] // max(group, 1) if transpose and weight else (weight[1] if weight else 0)
    cout = weight[1] * group if transpose and weight else (weight[0] if weight else 0)
    return {
        "kh": float(kernel[0]) if kernel else NAN,
        "kw": float(kernel[-1]) if kernel else NAN,
        "stride": float(max(strides)) if strides else 1.0,
        "dilation": float(max(dilations)) if dilations else 1.0,
        "group": float(group),
        "cin_per_group": float(cin_pg),
        "cout": float(cout),
        "depthwise": float(group > 1 and cin_pg == 1),
        "pads": float(sum(attrs.get("pads", []))),
        "activation": float(code),
        "has_sum": float(not transpose and len(ins) > 3),
    }


def _matmul(
    op: str, ins: Sequence[Sequence[int]], out: Sequence[int], attrs: Mapping[str, Any]
) -> dict[str, float]:
    a = ins[0] if ins else []
    trans_a = bool(attrs.get("transA", 0))
    k = (a[-2] if trans_a else a[-1]) if len(a) >= 2 else (a[-1] if a else 0)
    return {
        "m": float(out[-2]) if len(out) >= 2 else 1.0,
        "n": float(out[-1]) if out else NAN,
        "k": float(k),
        "batch": float(_prod(out[:-2])) if len(out) > 2 else 1.0,
        "trans_a": float(trans_a),
        "trans_b": float(bool(attrs.get("transB", 0))),
        "has_sum": float(op in _GEMM and len(ins) > 2),
    }


def kernel_rows(
    graph: onnx.GraphProto, entries: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Feature rows of every entry of a profile (or of the collector's sized node list) of
    `graph`, the optimized graph those entries name."""
    index = graph_index(graph)
    weights = {t.name: list(t.dims) for t in graph.initializer}
    return [kernel_row(entry, _find(entry, index, graph), weights) for entry in entries]
