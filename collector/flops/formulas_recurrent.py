"""Recurrent ops: LSTM, GRU, RNN and com.microsoft DynamicQuantizeLSTM.

Each step of each direction multiplies x (size I) by W and the previous hidden state (size H)
by R for every gate, so MACs = directions × steps × batch × gates·H × (I + H). The gate
arithmetic is counted per hidden element and step (``docs/FLOPS.md``): one add joining the two
products per gate, one FLOP per activation, the cell/hidden updates, and, when B is given, one
add per gate for each of its two halves (Wb and Rb). Steps = the full sequence length of X: a
``sequence_lens`` input can only shorten the work, so the count is its upper bound.
"""

from __future__ import annotations

from collector.flops.formulas import Attrs, FormulaError, OpCost, Shapes, has, need

# {op: (gates, elementwise FLOPs per hidden element and step without bias)}
#   LSTM: 4 sums + 5 activations (i, f, o sigmoid; g, c tanh) + 3 for c = f·c + i·g
#         + 1 for h = o·tanh(c) = 13
#   GRU:  3 sums + 3 activations (z, r sigmoid; h̃ tanh) + 1 for r·(R h)
#         + 3 for h = (1 − z)·h̃ + z·h = 10
#   RNN:  1 sum + 1 activation = 2
_CELLS = {"LSTM": (4, 13), "GRU": (3, 10), "RNN": (1, 2)}


def _recurrent_cost(cell: str, ins: Shapes, attrs: Attrs, quantized: bool) -> OpCost:
    """MACs and FLOPs of one recurrent node; W is [D, gates·H, I] (ONNX) or [D, I, gates·H]."""
    gates, per_elem = _CELLS[cell]
    x, w = need(ins, 0, "input X"), need(ins, 1, "weights W")
    if len(x) != 3 or len(w) != 3:
        raise FormulaError(f"{cell} needs a 3-D X and W, got X {list(x)} and W {list(w)}")
    steps, batch = (x[1], x[0]) if attrs.get("layout", 0) == 1 else (x[0], x[1])
    hidden = attrs.get("hidden_size")
    if not isinstance(hidden, int) or hidden < 1:
        hidden = (w[2] if quantized else w[1]) // gates
    directions, inputs = w[0], x[2]
    work = directions * steps * batch * hidden
    macs = work * gates * (inputs + hidden)
    flops = work * (per_elem + (2 * gates if has(ins, 3) else 0))
    if cell == "LSTM" and has(ins, 7):
        flops += work * 6  # peepholes: p ⊙ c added to the i, f and o gates
    if quantized:
        return OpCost(flops=flops, int_macs=macs)
    return OpCost(macs=macs, flops=2 * macs + flops)


def lstm(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = D·T·N·4H·(I+H); FLOPs = 2·MACs + D·T·N·H·(13, + 8 with B, + 6 with peepholes)."""
    return _recurrent_cost("LSTM", ins, attrs, quantized=False)


def gru(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = D·T·N·3H·(I+H); FLOPs = 2·MACs + D·T·N·H·(10, + 6 with B)."""
    return _recurrent_cost("GRU", ins, attrs, quantized=False)


def rnn(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """MACs = D·T·N·H·(I+H); FLOPs = 2·MACs + D·T·N·H·(2, + 2 with B)."""
    return _recurrent_cost("RNN", ins, attrs, quantized=False)


def dynamic_quantize_lstm(ins: Shapes, outs: Shapes, attrs: Attrs) -> OpCost:
    """int_macs = D·T·N·4H·(I+H) (int8 W, R); FLOPs = D·T·N·H·(13, + 8 with B, + 6 with P)."""
    return _recurrent_cost("LSTM", ins, attrs, quantized=True)
