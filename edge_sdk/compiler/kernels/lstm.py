"""UNIDIRECTIONAL_SEQUENCE_LSTM, float32 (TFLite's ``LstmStepFloat``), no peephole, projection
or layer norm.

For each time step, the four gates are ``bias + W_x x_t + W_h h`` (the three terms in that
order, each dot product summed before it is added, as ``MatrixBatchVectorMultiplyAccumulate``
does), then sigmoid (input, forget, output) or the cell activation (cell gate); then
``c = f * c``, ``c += i * g`` (clipped by ``cell_clip``), ``h = o * act(c)``, and ``h`` is both
the step's output and the next step's state.

The hidden and cell state are *variable* tensors: TFLite keeps them from one inference to the
next (and starts from zeros). The planner gives them arena bytes no other tensor ever shares, so
they persist as long as the caller keeps the arena; a zeroed arena starts from a zero state.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import refuse
from edge_sdk.compiler.kernels.tir import buffer_args, f32, kernel, loop, scalar, store
from edge_sdk.compiler.program import Constant, Scratch, Step, TensorArg
from edge_sdk.frontend.tflite import Graph, Operator

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
    if x.dtype != "float32":
        raise refuse(op, f"{x.dtype} LSTM (its int8 form, with int16 gates, is not supported "
                         "yet; the float model compiles)")
    if any(present(k) for k in (9, 10, 11, 16, 17, 20, 21, 22, 23)):
        raise refuse(op, "peephole, projection or layer-norm weights")
    if not (present(1) and present(5)):
        raise refuse(op, "coupled input and forget gates (CIFG)")
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
