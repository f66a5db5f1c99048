"""TFLite's fixed-point requantization, as TIR statements.

``MultiplyByQuantizedMultiplier(x, m, shift)`` from ``tensorflow/lite/kernels/internal/common.h``
(the default, double-rounding variant used by the reference kernels)::

    SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0), m)   # round half away from zero
    RoundingDivideByPOT(..., max(-shift, 0))                     # round half away from zero

TVM's ``q_multiply_shift`` lowers to a single rounding step (half up), which differs from TFLite
on ties, so we spell the arithmetic out. ``SaturatingRoundingDoublingHighMul`` saturates only
when both operands are INT32_MIN; our multipliers are positive Q31 values, so that case cannot
occur and is not emitted.
"""

from __future__ import annotations

from typing import Any

from tvm import tirx

from edge_sdk.compiler.kernels.tir import i32, i64, select, store


def saturating_rounding_doubling_high_mul(a: Any, b: Any) -> Any:
    ab = i64(a) * i64(b)
    nudge = select(ab >= i64(0), i64(1 << 30), i64(1 - (1 << 30)))
    return i32(tirx.truncdiv(ab + nudge, i64(1 << 31)))


def rounding_divide_by_pot(x: Any, exponent: Any) -> Any:
    mask = (i32(1) << exponent) - 1 if not isinstance(exponent, int) else i32((1 << exponent) - 1)
    remainder = tirx.bitwise_and(x, mask)
    threshold = tirx.shift_right(mask, i32(1)) + select(x < 0, i32(1), i32(0))
    return tirx.shift_right(x, i32(exponent) if isinstance(exponent, int) else exponent) + select(
        remainder > threshold, i32(1), i32(0)
    )


def emit_multiply_by_quantized_multiplier(acc: tirx.Buffer, multiplier: Any, shift: Any,
                                          at: int = 0) -> None:
    """``acc[at] = MultiplyByQuantizedMultiplier(acc[at], multiplier, shift)`` in three stores.

    ``multiplier``/``shift`` are Python ints (per-tensor: folded into the code) or TIR
    expressions (per-channel: loaded from const tables).
    """
    if isinstance(shift, int):
        if shift > 0:
            store(acc, acc[at] * i32(1 << shift), at)
        store(acc, saturating_rounding_doubling_high_mul(acc[at], i32(multiplier)), at)
        if shift < 0:
            store(acc, rounding_divide_by_pot(acc[at], -shift), at)
        return
    left = tirx.max(shift, i32(0))
    right = tirx.max(i32(0) - shift, i32(0))
    store(acc, acc[at] * (i32(1) << left), at)
    store(acc, saturating_rounding_doubling_high_mul(acc[at], multiplier), at)
    store(acc, rounding_divide_by_pot(acc[at], right), at)


# |x * multiplier + nudge| below 2^53 is exact in a double: |x| up to this, for any multiplier.
F64_EXACT_LIMIT = (2**53 - 2**30) // 2**31


def multiply_by_quantized_multiplier_f64(x: Any, multiplier: Any, shift: Any) -> Any:
    """The double-rounding ``MultiplyByQuantizedMultiplier`` with the 64-bit product formed in
    double precision, for vector units without a cheap 64-bit integer multiply (AVX2, NEON).

    Bit-exact **only** when ``|x * 2^max(shift, 0)| <= F64_EXACT_LIMIT``: then the product plus
    the nudge is below 2^53, a double holds it exactly, dividing by 2^31 is exact, and the
    conversion to int32 truncates toward zero as the integer division does. The caller proves
    the bound at compile time (from the bias and the weights)."""
    left = tirx.max(shift, i32(0))
    right = tirx.max(i32(0) - shift, i32(0))
    scaled = x * (i32(1) << left)
    nudge = select(scaled >= i32(0), tirx.const(2.0**30, "float64"),
                   tirx.const(1.0 - 2.0**30, "float64"))
    product = tirx.Cast("float64", scaled) * tirx.Cast("float64", multiplier) + nudge
    high = tirx.Cast("int32", product / tirx.const(2.0**31, "float64"))
    return rounding_divide_by_pot(high, right)


def emit_multiply_by_quantized_multiplier_single_rounding(
    acc: tirx.Buffer, multiplier: Any, shift: Any, at: int = 0
) -> None:
    """``acc[0] = (acc[0] * m + 2^(30 - shift)) >> (31 - shift)``: one rounding, half up.

    TFLite's interpreter uses this single-rounding form for int8 FULLY_CONNECTED (measured
    against ``BUILTIN_REF``: 0 differences, against 38 for the double-rounding form on ad01);
    TFLite Micro keeps double rounding there, hence its 1-2 LSB disagreement on ad01. It is
    exactly what TVM's ``q_multiply_shift`` intrinsic lowers to, so we use that.
    """
    if isinstance(multiplier, int) and isinstance(shift, int):
        store(acc, tirx.q_multiply_shift(acc[at], i32(multiplier), i32(31), i32(shift)), at)
        return
    # Per-channel tables: TVM's intrinsic needs a constant shift, so spell it out (shift <= 30).
    total = i64(31) - i64(shift)
    rounding = tirx.shift_left(i64(1), total - i64(1))
    store(acc, i32(tirx.shift_right(i64(acc[at]) * i64(multiplier) + rounding, total)), at)


def multiply_by_quantized_multiplier(x: Any, multiplier: Any, shift: Any) -> Any:
    """The double-rounding ``MultiplyByQuantizedMultiplier`` as one expression.

    For compute definitions (``te.compute``), where there are no statements; same arithmetic as
    :func:`emit_multiply_by_quantized_multiplier`.
    """
    if isinstance(shift, int):
        left, right = max(shift, 0), max(-shift, 0)
        x = x * i32(1 << left) if left else x
        x = saturating_rounding_doubling_high_mul(x, i32(multiplier))
        return rounding_divide_by_pot(x, right) if right else x
    left = tirx.max(shift, i32(0))
    right = tirx.max(i32(0) - shift, i32(0))
    x = saturating_rounding_doubling_high_mul(x * (i32(1) << left), multiplier)
    return rounding_divide_by_pot(x, right)


def multiply_by_quantized_multiplier_single_rounding(x: Any, multiplier: Any, shift: Any) -> Any:
    """``(x * m + 2^(30 - shift)) >> (31 - shift)`` as one expression (see the emit form)."""
    total = i64(31) - i64(shift)
    rounding = tirx.shift_left(i64(1), total - i64(1))
    return i32(tirx.shift_right(i64(x) * i64(multiplier) + rounding, total))


def reduced_multiplier(multiplier: int) -> int:
    """The 16-bit multiplier of ``MultiplyByQuantizedMultiplier(int64_t x, ...)`` (int16x8
    layers): the Q31 multiplier rounded to Q15, saturated."""
    return (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF


def multiply_by_quantized_multiplier_int64(acc: Any, reduced: Any, shift: Any) -> Any:
    """``MultiplyByQuantizedMultiplier(int64_t x, m, shift)`` with ``reduced`` from
    :func:`reduced_multiplier`: ``(x * reduced + 2^(14 - shift)) >> (15 - shift)``, one
    rounding, half up, in 64 bits (TFLite asserts |x| < 2^47, so the product fits)."""
    total = i64(15) - i64(shift)
    rounding = tirx.shift_left(i64(1), total - i64(1))
    return i32(tirx.shift_right(i64(acc) * i64(reduced) + rounding, total))


def saturating_shift_left(x: Any, exponent: int) -> Any:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` for an int32 and exponent > 0."""
    threshold = (1 << (31 - exponent)) - 1
    return select(x > i32(threshold), i32(2**31 - 1),
                  select(x < i32(-threshold), i32(-(2**31)), x << i32(exponent)))


def leading_zeros(v: Any, lowest: int = 0, highest: int = 31) -> Any:
    """Leading zeros of an int32 known to lie in [2^lowest, 2^highest), counted with compares
    (TVM's C codegen has no ``clz`` and the GPU languages spell it differently): ``32 - highest``
    plus one for each power of two in 2^(lowest+1)..2^(highest-1) above ``v``."""
    count = i32(32 - highest)
    for k in range(lowest + 1, highest):
        count = count + select(v < i32(1 << k), i32(1), i32(0))
    return count

