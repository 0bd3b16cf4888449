"""Attention ops: com.microsoft Attention / MultiHeadAttention and ONNX (opset 23) Attention.

Each counts the Q·Kᵀ and A·V MACs plus 4 Softmax FLOPs per score, as ``docs/FLOPS.md``
says. com.microsoft ``Attention`` also takes the QKV projection weights as an input, so its
projection MatMul is counted here too (plus one FLOP per projected element for its bias, like
Gemm's C term): the weights are consumed by this node and nowhere else in the graph, so leaving
them out would drop the largest part of the layer. Score scaling and masking are not counted.
"""

from __future__ import annotations

from collector.flops.formulas import Attrs, FormulaError, OpCost, Shapes, has, need


def _scores(b: int, heads: int, s: int, length: int, dq: int, dv: int) -> OpCost:
    """MACs = B·S·L·(Dq + Dv) for Q·Kᵀ and A·V; FLOPs = 2·MACs + 4·B·heads·S·L (Softmax)."""
    macs = b * s * length * (dq + dv)
    return OpCost(macs=macs, flops=2 * macs + 4 * b * heads * s * length)


def ms_attention(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = B·S·In·(Dq+Dk+Dv) + B·S·L·(Dq+Dv); FLOPs = 2·MACs + bias + 4·B·heads·S·L."""
    x, w = need(ins, 0, "input"), need(ins, 1, "weights")
    heads = int(attrs.get("num_heads", 0))
    if len(x) != 3 or len(w) != 2 or x[2] != w[0] or heads <= 0:
        raise FormulaError(f"input {list(x)}, weights {list(w)}, num_heads={heads} disagree")
    sizes = list(attrs.get("qkv_hidden_sizes") or [w[1] // 3] * 3)
    if sum(sizes) != w[1]:
        raise FormulaError(f"qkv_hidden_sizes {sizes} do not add up to weights dim {w[1]}")
    b, s = x[0], x[1]
    past = need(ins, 4, "past")[3] if has(ins, 4) else 0
    proj = b * s * x[2] * w[1]
    core = _scores(b, heads, s, s + past, sizes[0], sizes[2])
    bias = b * s * w[1] if has(ins, 2) else 0
    return OpCost(macs=proj + core.macs, flops=2 * proj + bias + core.flops)


def _mha_kv_length(ins: Shapes, outs: Shapes, s: int) -> int:
    """Total key length L of MultiHeadAttention for its packed, BSD and BNSH key layouts."""
    if has(outs, 1):
        return need(outs, 1, "present_key")[2]
    if not has(ins, 1):
        return s
    key = need(ins, 1, "key")
    length = key[2] if len(key) == 4 else key[1]
    return length + (need(ins, 6, "past_key")[2] if has(ins, 6) else 0)


def ms_multi_head_attention(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = B·S·L·(Dq + Dv) for Q·Kᵀ and A·V; FLOPs = 2·MACs + 4·B·heads·S·L."""
    q, out = need(ins, 0, "query"), need(outs, 0, "output")
    heads = int(attrs.get("num_heads", 0))
    if len(q) not in (3, 5) or heads <= 0:
        raise FormulaError(f"query {list(q)} with num_heads={heads} is not supported")
    dq = q[2] if len(q) == 3 else q[2] * q[4]
    s = q[1]
    return _scores(q[0], heads, s, _mha_kv_length(ins, outs, s), dq, out[-1])


def onnx_attention(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = B·Nq·S·L·(H + Hv) for Q·Kᵀ and A·V; FLOPs = 2·MACs + 4·B·Nq·S·L."""
    q, k, v = need(ins, 0, "Q"), need(ins, 1, "K"), need(ins, 2, "V")
    if len(q) == 4:
        b, nq, s, h = q
        length, hv = k[2], v[3]
    elif len(q) == 3:
        nq, nkv = int(attrs.get("q_num_heads", 0)), int(attrs.get("kv_num_heads", 0))
        if nq <= 0 or nkv <= 0:
            raise FormulaError("3-D Q needs q_num_heads and kv_num_heads")
        b, s, h = q[0], q[1], q[2] // nq
        length, hv = k[1], v[2] // nkv
    else:
        raise FormulaError(f"Q {list(q)} must be 3-D or 4-D")
    if has(ins, 4):
        length += need(ins, 4, "past_key")[2]
    return _scores(b, nq, s, length, nq * h, nq * hv)
