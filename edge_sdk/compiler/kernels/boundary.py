"""QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32, at a float model's edges.

``reference_ops::AffineQuantize`` divides the float input by the scale held as a *double* and
rounds with ``std::round``; ``reference_ops::Dequantize`` multiplies in double and rounds to
float, which equals one float32 multiply because the exact product fits a double. We emit the
same operations.
"""

from __future__ import annotations

from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, f32, i32, kernel, loop, store
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.frontend.tflite import Graph, Operator


def _step(op: Operator, x, y, func, func_name: str) -> Step:
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
    )


def lower_quantize_float(op: Operator, graph: Graph, func_name: str) -> Step:
    x = graph.tensor(op.inputs[0])
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.dtype != "float32":
        raise refuse(op, f"QUANTIZE from {x.dtype}")
    s, zp = scale(y), zero_point(y)

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), "float32"), ("output", (y.size,), "int8"))
        with loop("i", x.size) as i:
            q = tirx.call_pure_extern(
                "float64", "round", tirx.Cast("float64", X[i]) / tirx.FloatImm("float64", s))
            # Clamp in double before the cast: out-of-range float->int casts are undefined in C.
            q = tirx.max(tirx.min(q, tirx.FloatImm("float64", 2.0**31 - 1)),
                         tirx.FloatImm("float64", -(2.0**31)))
            store(Y, tirx.Cast("int8", clamp(i32(q) + zp, -128, 127)), i)
    return _step(op, x, y, k.func, func_name)


def lower_dequantize(op: Operator, graph: Graph, func_name: str) -> Step:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = graph.tensor(op.outputs[0])
    if y.dtype != "float32":
        raise refuse(op, f"DEQUANTIZE to {y.dtype}")
    s, zp = scale(x), zero_point(x)

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), "int8"), ("output", (y.size,), "float32"))
        with loop("i", x.size) as i:
            store(Y, f32(i32(X[i]) - zp) * f32(float(s)), i)
    return _step(op, x, y, k.func, func_name)
