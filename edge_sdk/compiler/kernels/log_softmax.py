"""LOG_SOFTMAX over the last axis: int8 (``reference_integer_ops::LogSoftmax``) and float32.

int8, in integers only, per row:

1. each difference ``x - row_max`` (256 possible values) is scaled to Q5.26 and its ``exp``
   taken in gemmlowp fixed point: both evaluated at compile time into tables
   (:mod:`edge_sdk.compiler.gemmlowp`), as for SOFTMAX;
2. the exps are summed in Q12.19 and ``log`` of the sum is taken on the device with TFLite's
   ``log_x_for_x_greater_than_or_equal_to_1`` (leading zeros by compares, a rational
   approximation and one Newton-Raphson reciprocal), once per row;
3. each output is ``(scaled_diff - log_sum) / 2^22 + 127``, rounded, or -128 for differences too
   small to show. TFLite fixes the output at scale 16/256, zero point 127.

float32 (``reference_ops::LogSoftmax``): ``x - max - log(sum(exp(x - max)))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler import gemmlowp
from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier,
    leading_zeros,
    rounding_divide_by_pot,
    saturating_shift_left,
)
from edge_sdk.compiler.kernels.fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from edge_sdk.compiler.kernels.softmax import (
    final_scale,
    newton_start,
    newton_step,
    softmax_scaling,
)
from edge_sdk.compiler.kernels.tir import (
    binder,
    buffer_args,
    clamp,
    f32,
    i32,
    i64,
    kernel,
    loop,
    scalar,
    select,
    store,
    when,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.ir import Graph, Operator

OUTPUT_SCALE, OUTPUT_ZERO_POINT = 16 / 256, 127
SCALED_DIFF_BITS, ACCUM_BITS, OUTPUT_BITS = 5, 12, 4
LOG_ACCUM_BITS = SCALED_DIFF_BITS + 1  # the log's accumulator: one bit of headroom


def log_softmax_tables(input_scale: float) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Per difference ``d = row_max - x`` (0..255): the Q5.26 scaled difference and its exp
    rescaled to Q12.19; plus ``diff_min`` and the reverse scaling (multiplier, shift)."""
    multiplier, shift, diff_min = softmax_scaling(input_scale, 1.0)
    reverse = quantize_multiplier((1 << (31 - shift)) / float(multiplier))
    scaled = [gemmlowp.mbqm(-d, multiplier, shift) for d in range(256)]
    exps = [gemmlowp.rdbp(gemmlowp.exp_on_negative_values(q, SCALED_DIFF_BITS), ACCUM_BITS)
            if -d >= diff_min else 0 for d, q in enumerate(scaled)]
    return (np.array(scaled, np.int32), np.array(exps, np.int32), diff_min, *reverse)


def _shift_left_saturating(x: Any, exponent: Any) -> Any:
    """``SaturatingRoundingMultiplyByPOTParam`` for a run-time exponent >= 0 (x >= 0)."""
    threshold = (i64(1) << (i64(31) - i64(exponent))) - i64(1)
    return select(i64(x) > threshold, i32(2**31 - 1), x << exponent)


def log_of_sum(z: Any, bind) -> Any:
    """``log_x_for_x_greater_than_or_equal_to_1<5>`` of a Q12.19 sum in [2^19, 2^31): Q5.26."""
    g = gemmlowp
    quarter = g.rdbp(1 << 29, LOG_ACCUM_BITS)
    hp1 = bind("log_headroom", leading_zeros(z, 19))
    r_a = bind("log_r_a", saturating_shift_left(srdhm(z << (hp1 - i32(1)), i32(g.SQRT_HALF)), 1))
    pow_a = bind("log_pow_a", ((i32(ACCUM_BITS) - hp1) << i32(31 - LOG_ACCUM_BITS))
                 + i32(quarter))
    z_b = bind("log_z_b", srdhm(z, i32(g.SQRT_HALF)))
    b_headroom = bind("log_headroom_b", leading_zeros(z_b, 18) - i32(1))
    r_b = bind("log_r_b", _shift_left_saturating(z, b_headroom))
    pow_b = bind("log_pow_b", ((i32(ACCUM_BITS) - b_headroom) << i32(31 - LOG_ACCUM_BITS))
                 - i32(quarter))
    r = bind("log_r", tirx.min(r_a, r_b))
    power = bind("log_power", tirx.max(pow_a, pow_b))
    total = i64(r) + i64(g.SQRT_SQRT_HALF)
    p = bind("log_p", i32(tirx.truncdiv(total + select(total >= i64(0), i64(1), i64(-1)),
                                        i64(2))))
    q = bind("log_q", r - i32(g.SQRT_SQRT_HALF))
    q = bind("log_q", q + q)
    common_sq = bind("log_q2", srdhm(q, q))
    num = bind("log_num", srdhm(q, r) + srdhm(bind("log_q3", srdhm(q, common_sq)),
                                              i32(g.ALPHA_N)))
    inner = bind("log_inner", i32(g.ALPHA_I) + q + srdhm(i32(g.ALPHA_D), common_sq))
    denom = bind("log_denom", srdhm(p, inner) + srdhm(i32(g.ALPHA_F), q))
    # one_over_one_plus_x_for_x_in_0_1(denom): Newton-Raphson on (1 + denom) / 2
    half = i64(denom) + i64(2**31 - 1)
    half_den = bind("log_half_den", i32(tirx.truncdiv(
        half + select(half >= i64(0), i64(1), i64(-1)), i64(2))))
    x = bind("log_recip", newton_start(half_den))
    for _ in range(3):
        x = bind("log_recip", newton_step(x, half_den, bind))
    recip = bind("log_recip", final_scale(x))
    num_scaled = bind("log_num_scaled", rounding_divide_by_pot(num, LOG_ACCUM_BITS))
    value = bind("log_value", srdhm(power, i32(g.LOG_2)) + srdhm(num_scaled, recip))
    return bind("log_sum", saturating_shift_left(value, LOG_ACCUM_BITS - SCALED_DIFF_BITS))


def lower_log_softmax(op: Operator, graph: Graph, func_name: str) -> Step:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.shape != y.shape or not x.shape:
        raise refuse(op, "input and output shapes differ")
    depth = x.shape[-1]
    outer = x.size // depth
    if x.dtype == "float32" and y.dtype == "float32":
        return _float(op, x, y, outer, depth, func_name)
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if zero_point(y) != OUTPUT_ZERO_POINT or abs(scale(y) - OUTPUT_SCALE) > 1e-6:
        raise refuse(op, f"int8 output quantized with scale {scale(y)} and zero point "
                         f"{zero_point(y)}; TFLite requires 16/256 and 127")
    try:
        scaled, exps, diff_min, rev_m, rev_s = log_softmax_tables(scale(x))
    except ValueError as e:
        raise refuse(op, str(e)) from None
    tables = (Constant(f"l{op.index}_scaled_diff", scaled), Constant(f"l{op.index}_exp", exps))
    with kernel(func_name) as k:
        X, SD, EX, Y = buffer_args(("input", (outer, depth), "int8"), ("scaled_diff", (256,),
                                                                        "int32"),
                                   ("exp", (256,), "int32"), ("output", (outer, depth), "int8"))
        row_max, total, diff = scalar("row_max"), scalar("sum_of_exps"), scalar("diff")
        adjusted = scalar("adjusted_diff_min")
        bind = binder()

        with loop("row", outer) as r:
            store(row_max, i32(-128))
            with loop("c", depth) as c:
                store(row_max, tirx.max(row_max[0], i32(X[r, c])))
            store(total, i32(0))
            with loop("c", depth) as c:  # exps of differences below diff_min are 0 in the table
                store(total, total[0] + EX[row_max[0] - i32(X[r, c])])
            log_sum = log_of_sum(total[0], bind)
            store(adjusted, log_sum + i32(-(2**31)))
            emit_multiply_by_quantized_multiplier(adjusted, rev_m, rev_s)
            store(adjusted, tirx.max(i32(diff_min - 1), adjusted[0]))
            with loop("c", depth) as c:
                store(diff, i32(X[r, c]) - row_max[0])
                store(Y, tirx.Cast("int8", i32(-128)), r, c)
                with when(diff[0] > adjusted[0]):
                    out = rounding_divide_by_pot(SD[i32(0) - diff[0]] - log_sum,
                                                 31 - SCALED_DIFF_BITS - OUTPUT_BITS)
                    store(Y, tirx.Cast("int8", clamp(out + i32(OUTPUT_ZERO_POINT), -128, 127)),
                          r, c)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *tables, TensorArg(y.index, writes=True)), macs=2 * x.size,
        notes="fixed point, as TFLite's reference; log of the row sum on the device",
    )


def _float(op: Operator, x, y, outer: int, depth: int, func_name: str) -> Step:
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (outer, depth), "float32"),
                           ("output", (outer, depth), "float32"))
        mx, total = scalar("max_val", "float32"), scalar("sum", "float32")
        with loop("row", outer) as r:
            store(mx, X[r, 0])
            with loop("c", depth) as c:
                store(mx, tirx.max(mx[0], X[r, c]))
            store(total, f32(0.0))
            with loop("c", depth) as c:
                store(total, total[0] + tirx.call_pure_extern("float32", "expf", X[r, c] - mx[0]))
            store(total, tirx.call_pure_extern("float32", "logf", total[0]))
            with loop("c", depth) as c:
                store(Y, X[r, c] - mx[0] - total[0], r, c)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=3 * x.size,
        notes="float32",
    )
