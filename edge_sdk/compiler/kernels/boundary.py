"""QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32, at a float model's edges.

Measured against LiteRT's reference kernels on every int8 value and on exact rounding ties:
QUANTIZE divides in float32 (``x / scale``) and rounds half away from zero (``roundf``);
DEQUANTIZE is one float32 multiply ``(q - zero_point) * scale``. We emit the same operations,
with the scale in a table so that it reaches C bit for bit.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, f32, i32, kernel, loop, store
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.ir import Graph, Operator


def _step(op: Operator, x, y, func, func_name: str, scale: Constant) -> Step:
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=func, func_name=func_name,
        args=(TensorArg(x.index), scale, TensorArg(y.index, writes=True)), macs=x.size,
    )


def lower_quantize_float(op: Operator, graph: Graph, func_name: str) -> Step:
    x = graph.tensor(op.inputs[0])
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.dtype != "float32":
        raise refuse(op, f"QUANTIZE from {x.dtype}")
    zp = zero_point(y)
    table = Constant(f"l{op.index}_scale", np.array([scale(y)], dtype=np.float32))

    with kernel(func_name) as k:
        X, S, Y = buffer_args(("input", (x.size,), "float32"), ("scale", (1,), "float32"),
                              ("output", (y.size,), "int8"))
        with loop("i", x.size) as i:
            q = tirx.call_pure_extern("float32", "roundf", X[i] / S[0])
            # Clamp before the cast (out-of-range float->int is undefined in C); any value past
            # +-1000 saturates the int8 output anyway.
            q = tirx.max(tirx.min(q, f32(1000.0)), f32(-1000.0))
            store(Y, tirx.Cast("int8", clamp(i32(q) + zp, -128, 127)), i)
    return _step(op, x, y, k.func, func_name, table)


def lower_dequantize(op: Operator, graph: Graph, func_name: str) -> Step:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = graph.tensor(op.outputs[0])
    if y.dtype != "float32":
        raise refuse(op, f"DEQUANTIZE to {y.dtype}")
    zp = zero_point(x)
    table = Constant(f"l{op.index}_scale", np.array([scale(x)], dtype=np.float32))

    with kernel(func_name) as k:
        X, S, Y = buffer_args(("input", (x.size,), "int8"), ("scale", (1,), "float32"),
                              ("output", (y.size,), "float32"))
        with loop("i", x.size) as i:
            store(Y, f32(i32(X[i]) - zp) * S[0], i)
    return _step(op, x, y, k.func, func_name, table)
