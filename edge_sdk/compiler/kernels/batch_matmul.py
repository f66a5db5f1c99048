"""BATCH_MATMUL: ``out[..., m, n] = sum_k lhs[..., m, k] * rhs[..., k, n]``, int8, int16x8 and
float32 (``reference_ops::BatchMatMul``).

``adj_x``/``adj_y`` read the left/right operand transposed in its last two dimensions; the batch
dimensions (all but the last two) broadcast against each other like an element-wise operator's,
which we fold into per-operand strides at compile time (stride 0 where a dimension is 1).
Either operand may be a constant (it is then baked into flash) or an activation.

Integer: ``(lhs - lhs_zp) * (rhs - rhs_zp)`` accumulated in int32 (int64 for int16), then
``MultiplyByQuantizedMultiplier`` with ``lhs_scale * rhs_scale / output_scale`` (the product in
float32, then divided in double, as ``GetQuantizedConvolutionMultipler``) and the output zero
point. Float accumulates over ``k`` in order, from 0.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import quantized_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    reduced_multiplier,
)
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    i64,
    kernel,
    loop,
    loop_nest,
    scalar,
    store,
    strided_offset,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import f32, quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

RANGES = {"int8": (-128, 127), "int16": (-32768, 32767)}


def _batch_strides(shape: tuple[int, ...], batch: tuple[int, ...]) -> list[int]:
    """Element strides of ``shape``'s batch dimensions (all but the last two) when broadcast to
    ``batch``: 0 where the operand has 1 (or lacks the dimension)."""
    dims = (1,) * (len(batch) - (len(shape) - 2)) + tuple(shape[:-2])
    matrix = shape[-1] * shape[-2]
    strides, step = [], matrix
    for d in reversed(dims):
        strides.append(0 if d == 1 else step)
        step *= d
    return list(reversed(strides))


def _operand(op: Operator, t: Tensor, role: str, dtype: str) -> Tensor:
    if dtype == "float32":
        if t.dtype != "float32":
            raise refuse(op, f"{role} is {t.dtype} in a float32 BATCH_MATMUL")
        return t
    if t.is_constant:
        if t.dtype != dtype or t.quant is None or t.quant.per_channel:
            raise refuse(op, f"{role} '{t.name}' is not a per-tensor quantized {dtype} constant")
        return t
    return t


def lower_batch_matmul(op: Operator, graph: Graph, func_name: str) -> Step:
    lhs, rhs = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    dtype = y.dtype
    if dtype != "float32":
        y = quantized_tensor(op, graph, op.outputs[0], "output")
        for t, role in ((lhs, "left operand"), (rhs, "right operand")):
            if not t.is_constant:
                quantized_tensor(op, graph, t.index, role)
    lhs, rhs = _operand(op, lhs, "left operand", dtype), _operand(op, rhs, "right operand", dtype)
    if lhs.dtype != dtype or rhs.dtype != dtype:
        raise refuse(op, f"operands {lhs.dtype} and {rhs.dtype} with a {dtype} output")
    if len(lhs.shape) < 2 or len(rhs.shape) < 2:
        raise refuse(op, "operands of rank below 2")
    adj_x, adj_y = bool(op.options.get("adj_x")), bool(op.options.get("adj_y"))
    m, k = (lhs.shape[-1], lhs.shape[-2]) if adj_x else (lhs.shape[-2], lhs.shape[-1])
    k2, n = (rhs.shape[-1], rhs.shape[-2]) if adj_y else (rhs.shape[-2], rhs.shape[-1])
    if k != k2:
        raise refuse(op, f"inner dimensions {k} and {k2} differ")
    try:
        batch = tuple(np.broadcast_shapes(tuple(lhs.shape[:-2]), tuple(rhs.shape[:-2])))
    except ValueError:
        raise refuse(op, f"batch dimensions {list(lhs.shape[:-2])} and "
                         f"{list(rhs.shape[:-2])} do not broadcast") from None
    if tuple(y.shape) != (*batch, m, n):
        raise refuse(op, f"output shape {list(y.shape)}, expected {[*batch, m, n]}")
    lhs_strides, rhs_strides = _batch_strides(lhs.shape, batch), _batch_strides(rhs.shape, batch)

    def arg(t: Tensor, name: str):
        if t.is_constant:
            return Constant(f"l{op.index}_{name}", np.ascontiguousarray(t.data).reshape(-1))
        return TensorArg(t.index)

    acc_dtype = {"int8": "int32", "int16": "int64", "float32": "float32"}[dtype]
    with kernel(func_name) as kf:
        L, R, Y = buffer_args(("lhs", (lhs.size,), dtype), ("rhs", (rhs.size,), dtype),
                              ("output", (y.size,), dtype))
        acc = scalar("acc", acc_dtype)
        with loop_nest(batch or (1,), "b") as bs:
            lb = strided_offset(bs, lhs_strides) if batch else i32(0)
            rb = strided_offset(bs, rhs_strides) if batch else i32(0)
            ob = strided_offset(bs, [m * n * int(np.prod(batch[i + 1:]))
                                     for i in range(len(batch))]) if batch else i32(0)
            with loop("m", m) as row, loop("n", n) as col:
                store(acc, tirx.const(0, acc_dtype))
                with loop("k", k) as kk:
                    a = L[lb + (kk * m + row if adj_x else row * k + kk)]
                    b = R[rb + (col * k + kk if adj_y else kk * n + col)]
                    store(acc, acc[0] + _product(a, b, lhs, rhs, acc_dtype))
                store(Y, _requantized(acc, lhs, rhs, y), ob + row * n + col)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=tuple(t.index for t in (lhs, rhs) if not t.is_constant), outputs=(y.index,),
        func=kf.func, func_name=func_name,
        args=(arg(lhs, "lhs"), arg(rhs, "rhs"), TensorArg(y.index, writes=True)),
        macs=int(np.prod(batch or (1,))) * m * n * k,
        notes=f"{m}x{k} @ {k}x{n}" + (f", batch {list(batch)}" if batch else ""),
    )


def _product(a, b, lhs: Tensor, rhs: Tensor, acc_dtype: str):
    if acc_dtype == "float32":
        return a * b
    if acc_dtype == "int64":  # int16x8: symmetric, zero points 0
        return i64(a) * i64(b)
    return (i32(a) - i32(zero_point(lhs))) * (i32(b) - i32(zero_point(rhs)))


def _requantized(acc: tirx.Buffer, lhs: Tensor, rhs: Tensor, y: Tensor):
    if y.dtype == "float32":
        return acc[0]
    product = float(f32(scale(lhs) * scale(rhs)))  # float32, as TFLite multiplies them
    multiplier, shift = quantize_multiplier(product / scale(y))
    lo, hi = RANGES[y.dtype]
    if y.dtype == "int16":
        value = multiply_by_quantized_multiplier_int64(
            acc[0], i64(reduced_multiplier(multiplier)), shift)
        return tirx.Cast("int16", clamp(value + i32(zero_point(y)), lo, hi))
    emit_multiply_by_quantized_multiplier(acc, multiplier, shift)
    return tirx.Cast("int8", clamp(acc[0] + i32(zero_point(y)), lo, hi))
