"""L2_NORMALIZATION over the last axis, int8 and float32.

L2_NORMALIZATION, int8 (``reference_integer_ops::L2Normalization``): per row, the sum of squares
of ``x - zp`` in int32, then ``GetInvSqrtQuantizedMultiplierExp`` turns it into a multiplier and
shift for ``1 / sqrt(sum)`` (a normalisation into [2^27, 2^29) by pairs of bits, five
Newton-Raphson steps of ``x = 1.5 x - (s / 2) x^3`` in Q3.28, times sqrt(2) / 2); each output is
``MultiplyByQuantizedMultiplier(x - zp, multiplier, shift + 7)``: TFLite fixes the output at
scale 1/128, zero point 0. The per-row part runs once per row on the device, in integers; leading
zeros are counted with compares (TVM's C codegen has no ``clz``).

float32 (``reference_ops``): divides by ``max(sqrt(sum of squares), 1e-6)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import (
    leading_zeros,
    multiply_by_quantized_multiplier,
    saturating_rounding_doubling_high_mul,
    saturating_shift_left,
)
from edge_sdk.compiler.kernels.tir import (
    binder,
    buffer_args,
    clamp,
    f32,
    i32,
    kernel,
    loop,
    scalar,
    select,
    store,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.ir import Graph, Operator

L2_EPSILON = 1e-6
OUTPUT_SCALE_BITS = 7  # int8 L2_NORMALIZATION outputs 1/128 steps


def _rows(op: Operator, graph: Graph) -> tuple[Any, Any, int, int]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.shape != y.shape or not x.shape:
        raise refuse(op, "input and output shapes differ")
    depth = x.shape[-1]
    return x, y, x.size // depth, depth


def inv_sqrt_multiplier(total: Any, bind) -> tuple[Any, Any]:
    """``GetInvSqrtQuantizedMultiplierExp(total, reverse_shift=-1)``: (multiplier, shift) with
    ``1 / sqrt(total) ~ multiplier * 2^(shift - 31)``; totals 0 and 1 give (INT32_MAX, 0)."""
    big = total >= i32(1 << 29)
    value = bind("norm_value", select(big, tirx.truncdiv(total, i32(4)), total))
    shift = bind("norm_shift", select(big, i32(12), i32(11)))
    zeros = leading_zeros(value, highest=29)
    pairs = bind("norm_pairs", tirx.truncdiv(zeros - i32(1), i32(2)) - i32(1))
    shift = bind("norm_shift", shift - pairs)
    value = bind("norm_value", value << (pairs * i32(2)))
    half_input = bind("half_input", _rounding_half(value >> i32(1)))
    srdhm = saturating_rounding_doubling_high_mul
    x = bind("newton_x", i32(1 << 28))  # 1.0 in Q3.28
    for _ in range(5):  # each product named: TVM's simplifier is slow on deep expressions
        x2 = bind("newton_x2", srdhm(x, x))
        x3 = bind("newton_x3", saturating_shift_left(bind("newton_x3", srdhm(x2, x)), 6))
        a = bind("newton_a", srdhm(i32((1 << 28) + (1 << 27)), x))
        b = bind("newton_b", srdhm(half_input, x3))
        x = bind("newton_x", saturating_shift_left(bind("newton_diff", a - b), 3))
    x = bind("newton_x", srdhm(x, i32(1518500250)))  # times sqrt(2) / 2
    negative = shift < i32(0)
    multiplier = bind("inv_sqrt", select(negative, x << (i32(0) - shift), x))
    shift = bind("norm_shift", select(negative, i32(0), shift) * i32(-1))
    small = total <= i32(1)
    return (select(small, i32(2**31 - 1), multiplier), select(small, i32(0), shift))


def _rounding_half(v: Any) -> Any:
    """``SaturatingRoundingMultiplyByPOT<-1>``: divide by two, rounding half away from zero."""
    return (v >> i32(1)) + select(tirx.bitwise_and(v, i32(1)) > select(v < 0, i32(1), i32(0)),
                                  i32(1), i32(0))


def lower_l2_normalization(op: Operator, graph: Graph, func_name: str) -> Step:
    x, y, outer, depth = _rows(op, graph)
    if op.options.get("activation", "NONE") != "NONE":
        raise refuse(op, f"fused activation {op.options['activation']}")
    if x.dtype == "float32":
        return _l2_float(op, x, y, outer, depth, func_name)
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if zero_point(y) != 0 or abs(scale(y) * 128 - 1) > 1e-6:
        raise refuse(op, f"int8 output quantized with scale {scale(y)}, zero point "
                         f"{zero_point(y)}; TFLite requires 1/128 and 0")
    zp = zero_point(x)
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (outer, depth), "int8"), ("output", (outer, depth), "int8"))
        acc = scalar("sum_of_squares")
        bind = binder()

        with loop("row", outer) as r:
            store(acc, i32(0))
            with loop("c", depth) as c:
                v = i32(X[r, c]) - i32(zp)
                store(acc, acc[0] + v * v)
            multiplier, shift = inv_sqrt_multiplier(acc[0], bind)
            multiplier, shift = bind("row_multiplier", multiplier), bind("row_shift", shift)
            with loop("c", depth) as c:
                out = multiply_by_quantized_multiplier(
                    i32(X[r, c]) - i32(zp), multiplier, shift + i32(OUTPUT_SCALE_BITS))
                store(Y, tirx.Cast("int8", clamp(out, -128, 127)), r, c)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=2 * x.size,
        notes="integer inverse square root per row, as TFLite's reference",
    )


def _l2_float(op: Operator, x, y, outer: int, depth: int, func_name: str) -> Step:
    if y.dtype != "float32":
        raise refuse(op, f"float32 input with {y.dtype} output")
    eps = Constant(f"l{op.index}_epsilon", np.array([L2_EPSILON], np.float32))
    with kernel(func_name) as k:
        X, E, Y = buffer_args(("input", (outer, depth), "float32"), ("epsilon", (1,), "float32"),
                              ("output", (outer, depth), "float32"))
        total, norm = scalar("sum_of_squares", "float32"), scalar("norm", "float32")
        with loop("row", outer) as r:
            store(total, f32(0.0))
            with loop("c", depth) as c:
                store(total, total[0] + X[r, c] * X[r, c])
            store(norm, tirx.max(tirx.call_pure_extern("float32", "sqrtf", total[0]), E[0]))
            with loop("c", depth) as c:
                store(Y, X[r, c] / norm[0], r, c)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), eps, TensorArg(y.index, writes=True)), macs=2 * x.size,
        notes="float32",
    )
