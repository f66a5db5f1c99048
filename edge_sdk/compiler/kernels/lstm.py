"""UNIDIRECTIONAL_SEQUENCE_LSTM, float32 (TFLite's ``LstmStepFloat``), no peephole, projection
or layer norm.

For each time step, the four gates are ``bias + W_x x_t + W_h h`` (the three terms in that
order, each dot product summed before it is added, as ``MatrixBatchVectorMultiplyAccumulate``
does), then sigmoid (input, forget, output) or the cell activation (cell gate); then
``c = f * c``, ``c += i * g`` (clipped by ``cell_clip``), ``h = o * act(c)``, and ``h`` is both
the step's output and the next step's state.

The int8 form (TFLite's "8x8->16" integer LSTM, ``LstmStepInteger8x8_16``) has int8 input,
weights and hidden state, int16 cell state (scale a power of two, ``2^cell_scale``) and int32
biases. Each gate's two matrix products are requantized *separately* to Q3.12 int16 (the bias and
the zero points folded into an "effective bias" per row) and added with saturation; the gates go
through gemmlowp's int16 ``logistic``/``tanh`` (:mod:`.fixed16`); the cell update is two
rounding shifts and a saturating add; the hidden state is ``o * tanh(c)`` requantized to the
``effective_hidden_scale`` intermediate's scale plus its zero point.

The hidden and cell state are *variable* tensors: TFLite keeps them from one inference to the
next (and starts from zeros). The planner gives them arena bytes no other tensor ever shares, so
they persist as long as the caller keeps the arena; a zeroed arena starts from a zero state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler import quantization
from edge_sdk.compiler.kernels import fixed16
from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import (
    binder,
    buffer_args,
    clamp,
    f32,
    i32,
    kernel,
    loop,
    scalar,
    store,
)
from edge_sdk.compiler.program import Constant, Scratch, Step, TensorArg
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

GATES = ("input", "forget", "cell", "output")


def _sigmoid(v):
    return f32(1.0) / (f32(1.0) + tirx.call_pure_extern("float32", "expf", f32(0.0) - v))


def _activation(op: Operator, v):
    act = op.options.get("activation", "TANH")
    if act == "TANH":
        return tirx.call_pure_extern("float32", "tanhf", v)
    if act == "RELU":
        return tirx.max(v, f32(0.0))
    if act == "NONE":
        return v
    raise refuse(op, f"cell activation {act}")


def lower_lstm(op: Operator, graph: Graph, func_name: str) -> Step:
    def present(k: int) -> bool:
        return len(op.inputs) > k and op.inputs[k] >= 0

    x = graph.tensor(op.inputs[0])
    if x.dtype not in ("float32", "int8"):
        raise refuse(op, f"{x.dtype} input (int8 and float32 LSTMs are supported)")
    if any(present(k) for k in (9, 10, 11, 16, 17, 20, 21, 22, 23)):
        raise refuse(op, "peephole, projection or layer-norm weights")
    if not (present(1) and present(5)):
        raise refuse(op, "coupled input and forget gates (CIFG)")
    if x.dtype == "int8":
        return lower_lstm_int8(op, graph, func_name)
    h_t, c_t, y = graph.tensor(op.inputs[18]), graph.tensor(op.inputs[19]), graph.tensor(
        op.outputs[0])
    w_x = [graph.tensor(op.inputs[k]).data for k in (1, 2, 3, 4)]
    w_h = [graph.tensor(op.inputs[k]).data for k in (5, 6, 7, 8)]
    biases = [graph.tensor(op.inputs[k]).data if present(k) else None for k in (12, 13, 14, 15)]
    if any(w is None for w in (*w_x, *w_h)):
        raise refuse(op, "weights that are not constants")
    n_cell, n_input = w_x[0].shape
    n_output = w_h[0].shape[1]
    if n_output != n_cell:
        raise refuse(op, "an output size different from the cell size")
    time_major = bool(op.options.get("time_major"))
    steps, batch = (x.shape[0], x.shape[1]) if time_major else (x.shape[1], x.shape[0])
    clip = float(op.options.get("cell_clip", 0.0))

    consts = (
        Constant(f"l{op.index}_w_x", np.stack(w_x).astype(np.float32)),
        Constant(f"l{op.index}_w_h", np.stack(w_h).astype(np.float32)),
        Constant(f"l{op.index}_bias", np.stack([
            b.astype(np.float32) if b is not None else np.zeros(n_cell, np.float32)
            for b in biases])),
        Constant(f"l{op.index}_clip", np.array([clip], np.float32)),
    )
    gates = Scratch(f"l{op.index}_gates", (4, n_cell), "float32")
    with kernel(func_name) as k:
        X, WX, WH, B, CL, H, C, G, Y = buffer_args(
            ("input", x.shape, "float32"), ("w_x", (4, n_cell, n_input), "float32"),
            ("w_h", (4, n_cell, n_output), "float32"), ("bias", (4, n_cell), "float32"),
            ("cell_clip", (1,), "float32"),
            ("output_state", (batch, n_output), "float32"),
            ("cell_state", (batch, n_cell), "float32"),
            ("gates", (4, n_cell), "float32"), ("output", y.shape, "float32"))
        dot = scalar("dot", "float32")
        with loop("b", batch) as b, loop("t", steps) as t:
            def xin(col):
                return X[t, b, col] if time_major else X[b, t, col]

            with loop("gate", 4) as gi, loop("c", n_cell) as c:
                store(G, B[gi, c], gi, c)
                store(dot, f32(0.0))
                with loop("i", n_input) as i:
                    store(dot, dot[0] + WX[gi, c, i] * xin(i))
                store(G, G[gi, c] + dot[0], gi, c)
                store(dot, f32(0.0))
                with loop("j", n_output) as j:
                    store(dot, dot[0] + WH[gi, c, j] * H[b, j])
                store(G, G[gi, c] + dot[0], gi, c)
            with loop("c", n_cell) as c:
                i_g, f_g = _sigmoid(G[0, c]), _sigmoid(G[1, c])
                g_g, o_g = _activation(op, G[2, c]), _sigmoid(G[3, c])
                store(G, i_g, 0, c)
                store(G, f_g, 1, c)
                store(G, g_g, 2, c)
                store(G, o_g, 3, c)
                store(C, G[1, c] * C[b, c], b, c)
                store(C, C[b, c] + G[0, c] * G[2, c], b, c)
                if clip > 0:
                    store(C, tirx.min(tirx.max(C[b, c], f32(0.0) - CL[0]), CL[0]), b, c)
                store(H, G[3, c] * _activation(op, C[b, c]), b, c)
                if time_major:
                    store(Y, H[b, c], t, b, c)
                else:
                    store(Y, H[b, c], b, t, c)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index, h_t.index, c_t.index), outputs=(y.index, h_t.index, c_t.index),
        func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(h_t.index, writes=True),
              TensorArg(c_t.index, writes=True), gates, TensorArg(y.index, writes=True)),
        macs=batch * steps * 4 * n_cell * (n_input + n_output),
        notes="float32; hidden and cell state kept in the arena between inferences")


# --- int8 (8x8->16) -----------------------------------------------------------------------------

GATE_INTEGER_BITS = 3  # without layer norm, every gate's pre-activation is Q3.12


@dataclass(frozen=True)
class IntegerLstmPlan:
    """``PopulateQuantizedLstmParams8x8_16`` without peephole, projection or layer norm."""

    x: Tensor
    h: Tensor  # the int8 output (hidden) state, a variable tensor
    c: Tensor  # the int16 cell state, a variable tensor
    y: Tensor
    w_x: np.ndarray  # (4, n_cell, n_input) int8
    w_h: np.ndarray  # (4, n_cell, n_output) int8
    bias_x: np.ndarray  # (4, n_cell) int32: bias - input_zp * row sums
    bias_h: np.ndarray  # (4, n_cell) int32: -state_zp * row sums
    scale_x: tuple[tuple[int, int], ...]  # per gate (multiplier, shift) into Q3.12
    scale_h: tuple[tuple[int, int], ...]
    hidden: tuple[int, int]
    hidden_zp: int
    cell_scale: int  # log2 of the cell state's scale
    cell_clip: int  # quantized; 0 = none
    steps: int
    batch: int
    time_major: bool


def _log2_exact(value: float) -> int | None:
    exponent = round(math.log2(value)) if value > 0 else 0
    return exponent if value > 0 and 2.0 ** exponent == value else None


def plan_lstm_int8(op: Operator, graph: Graph) -> IntegerLstmPlan:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    h = int8_tensor(op, graph, op.inputs[18], "output state")
    c = graph.tensor(op.inputs[19])
    if c.dtype != "int16" or c.quant is None:
        raise refuse(op, f"cell state '{c.name}' is {c.dtype}; the integer LSTM keeps it int16")
    cell_scale = _log2_exact(scale(c))
    if cell_scale is None or cell_scale > -9:
        raise refuse(op, f"cell state scale {scale(c)} (TFLite requires a power of two <= 2^-9)")
    if len(op.intermediates) < 5:
        raise refuse(op, "no effective_hidden_scale intermediate (re-convert the model)")
    hidden = graph.tensor(op.intermediates[4])
    if hidden.quant is None:
        raise refuse(op, "an effective_hidden_scale intermediate without quantization")
    w_x = [graph.tensor(op.inputs[k]) for k in (1, 2, 3, 4)]
    w_h = [graph.tensor(op.inputs[k]) for k in (5, 6, 7, 8)]
    biases = [graph.tensor(op.inputs[k]) for k in (12, 13, 14, 15)]
    for w in (*w_x, *w_h):
        if w.dtype != "int8" or w.quant is None or w.data is None or w.quant.per_channel:
            raise refuse(op, f"weights '{w.name}' are not constant per-tensor int8")
    for b in biases:
        if b.dtype != "int32" or b.data is None:
            raise refuse(op, f"bias '{b.name}' is not a constant int32")
    n_cell, _ = w_x[0].shape
    if w_h[0].shape[1] != n_cell:
        raise refuse(op, "an output size different from the cell size")
    # TFLite computes the effective scales in float32 (weight * input / 2^-12), then
    # QuantizeMultiplier in double; the hidden scale in double, stored as float.
    f32_ = quantization.f32
    gate_scale = f32_(2.0 ** -12)

    def effective(w: Tensor, activation_scale: float) -> tuple[int, int]:
        return quantize_multiplier(f32_(f32_(f32_(scale(w)) * f32_(activation_scale)) / gate_scale))

    wx = np.stack([w.data for w in w_x]).astype(np.int32)
    wh = np.stack([w.data for w in w_h]).astype(np.int32)
    bias = np.stack([b.data for b in biases]).astype(np.int64)
    bias_x = bias - zero_point(x) * wx.sum(axis=2, dtype=np.int64)
    bias_h = -zero_point(h) * wh.sum(axis=2, dtype=np.int64)
    clip = float(op.options.get("cell_clip", 0.0))
    cell_clip = int(min(max(f32_(clip / f32_(scale(c))), -32768.0), 32767.0)) if clip > 0 else 0
    time_major = bool(op.options.get("time_major"))
    return IntegerLstmPlan(
        x=x, h=h, c=c, y=y, w_x=wx.astype(np.int8), w_h=wh.astype(np.int8),
        bias_x=bias_x.astype(np.int32), bias_h=bias_h.astype(np.int32),
        scale_x=tuple(effective(w, scale(x)) for w in w_x),
        scale_h=tuple(effective(w, scale(h)) for w in w_h),
        hidden=quantize_multiplier(f32_(2.0 ** -15 / float(f32_(scale(hidden))) * 2.0 ** -15)),
        hidden_zp=zero_point(hidden), cell_scale=cell_scale, cell_clip=cell_clip,
        steps=x.shape[0] if time_major else x.shape[1],
        batch=x.shape[1] if time_major else x.shape[0], time_major=time_major)


# The kernel keeps the gates in this order, so the three sigmoid gates are one contiguous run.
KERNEL_ORDER = (0, 1, 3, 2)  # input, forget, output, cell (TFLite's gate indices)


def lower_lstm_int8(op: Operator, graph: Graph, func_name: str) -> Step:
    p = plan_lstm_int8(op, graph)
    n_cell, n_input = p.w_x.shape[1], p.w_x.shape[2]
    n_output = p.w_h.shape[2]
    order = list(KERNEL_ORDER)

    def requant_table(name: str, scales: tuple[tuple[int, int], ...]) -> Constant:
        return Constant(f"l{op.index}_{name}",
                        np.array([scales[g] for g in order], np.int32).reshape(4, 2))

    consts = (Constant(f"l{op.index}_w_x", p.w_x[order]),
              Constant(f"l{op.index}_w_h", p.w_h[order]),
              Constant(f"l{op.index}_bias_x", p.bias_x[order]),
              Constant(f"l{op.index}_bias_h", p.bias_h[order]),
              requant_table("requant_x", p.scale_x), requant_table("requant_h", p.scale_h))
    gates = Scratch(f"l{op.index}_gates", (4, n_cell), "int16")
    with kernel(func_name) as k:
        X, WX, WH, BX, BH, QX, QH, H, C, G, Y = buffer_args(
            ("input", p.x.shape, "int8"), ("w_x", (4, n_cell, n_input), "int8"),
            ("w_h", (4, n_cell, n_output), "int8"), ("bias_x", (4, n_cell), "int32"),
            ("bias_h", (4, n_cell), "int32"), ("requant_x", (4, 2), "int32"),
            ("requant_h", (4, 2), "int32"),
            ("output_state", (p.batch, n_output), "int8"),
            ("cell_state", (p.batch, n_cell), "int16"),
            ("gates", (4, n_cell), "int16"), ("output", p.y.shape, "int8"))
        acc = scalar("acc")
        pre = scalar("pre_activation")
        cell, hidden = scalar("cell"), scalar("hidden")

        ar = fixed16.TirArith(binder(fresh=True))
        with loop("b", p.batch) as b, loop("t", p.steps) as t:
            def at(buf: tirx.Buffer, col: Any) -> Any:
                return buf[t, b, col] if p.time_major else buf[b, t, col]

            # Pre-activations in Q3.12: each matrix product requantized on its own, then added.
            with loop("gate", 4) as gate, loop("c", n_cell) as c:
                store(acc, BX[gate, c])
                with loop("i", n_input) as i:
                    store(acc, acc[0] + i32(WX[gate, c, i]) * i32(at(X, i)))
                emit_multiply_by_quantized_multiplier(acc, QX[gate, 0], QX[gate, 1])
                store(pre, clamp(acc[0], -32768, 32767))
                store(acc, BH[gate, c])
                with loop("j", n_output) as j:
                    store(acc, acc[0] + i32(WH[gate, c, j]) * i32(H[b, j]))
                emit_multiply_by_quantized_multiplier(acc, QH[gate, 0], QH[gate, 1])
                store(G, tirx.Cast("int16", clamp(acc[0] + pre[0], -32768, 32767)), gate, c)
            with loop("gate", 3) as gate, loop("c", n_cell) as c:  # input, forget, output
                store(G, tirx.Cast("int16", fixed16.logistic(ar, i32(G[gate, c]),
                                                             GATE_INTEGER_BITS)), gate, c)
            with loop("c", n_cell) as c:  # the cell gate
                store(G, tirx.Cast("int16", fixed16.tanh(ar, i32(G[3, c]), GATE_INTEGER_BITS)),
                      3, c)
            with loop("c", n_cell) as c:
                # c = f * c >> 15; c += i * g >> (30 + cell_scale); both rounding, then clip.
                # The cell and hidden values get scalars of their own: TVM's C printer reuses a
                # temporary for a repeated load of one scalar even across a store to it.
                kept = ar.rdbp(i32(G[1, c]) * i32(C[b, c]), 15)
                added = ar.rdbp(i32(G[0, c]) * i32(G[3, c]), 30 + p.cell_scale)
                store(cell, clamp(ar.wrap(kept) + ar.wrap(added), -32768, 32767))
                if p.cell_clip > 0:
                    store(cell, clamp(cell[0], -p.cell_clip, p.cell_clip))
                store(C, tirx.Cast("int16", cell[0]), b, c)
                squashed = fixed16.tanh(ar, cell[0], 15 + p.cell_scale)
                store(hidden, i32(G[2, c]) * squashed)
                emit_multiply_by_quantized_multiplier(hidden, *p.hidden)
                store(H, tirx.Cast("int8", clamp(hidden[0] + i32(p.hidden_zp), -128, 127)), b, c)
                if p.time_major:
                    store(Y, H[b, c], t, b, c)
                else:
                    store(Y, H[b, c], b, t, c)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=p.y.name, kind="kernel",
        inputs=(p.x.index, p.h.index, p.c.index), outputs=(p.y.index, p.h.index, p.c.index),
        func=k.func, func_name=func_name,
        args=(TensorArg(p.x.index), *consts, TensorArg(p.h.index, writes=True),
              TensorArg(p.c.index, writes=True), gates, TensorArg(p.y.index, writes=True)),
        macs=p.batch * p.steps * 4 * n_cell * (n_input + n_output),
        notes=f"int8 with int16 gates and cell state (Q{15 + p.cell_scale}."
              f"{-p.cell_scale}); state kept in the arena between inferences")
