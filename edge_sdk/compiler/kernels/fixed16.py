"""gemmlowp's int16 fixed-point ``logistic`` and ``tanh``, written once for two back ends.

TFLite's integer LSTM (``lstm_eval.cc``, the 8x8->16 path) runs its gates through
``gemmlowp::logistic`` on Q3.12 and ``gemmlowp::tanh`` on Q3.12 (the cell gate) or on the cell
state's own format (Q(15 + cell_scale)); all in int16 arithmetic, where additions wrap, a few
add saturate, and gemmlowp's int32 constants are rounded to 16 bits. An int16 input has 65536
values, so a table (128 KiB per function) is out of the question on a microcontroller; we emit
the arithmetic itself, about 60 integer operations per value.

The algorithm is written once against a small arithmetic interface, :class:`Arith`:
:class:`PyArith` evaluates it on Python ints (the compile-time model the tests check against
gemmlowp's semantics), :class:`TirArith` builds TIR expressions for the kernel, binding each
named intermediate to a local scalar (TVM's simplifier takes very long over one deep
expression; each ``bind`` makes a scalar of its own, declared where the value is computed).
Both hold values as int32 carrying int16 numbers; ``wrap`` is the int16 cast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from tvm import tirx

from edge_sdk.compiler import gemmlowp
from edge_sdk.compiler.kernels.fixedpoint import rounding_divide_by_pot
from edge_sdk.compiler.kernels.tir import i32, select

ONE_Q0 = 32767  # FixedPoint<int16, 0>::One()


def _c16(int32_constant: int) -> int:
    """gemmlowp's ``RescaleConstantInitializer`` for int16: the int32 constant rounded by 2^16."""
    return gemmlowp.rdbp(int32_constant, 16)


class Arith(Protocol):
    def wrap(self, x: Any) -> Any: ...
    def srdhm(self, a: Any, b: Any) -> Any: ...
    def rdbp(self, x: Any, exponent: int) -> Any: ...
    def bitand(self, x: Any, mask: int) -> Any: ...
    def sel(self, cond: Any, a: Any, b: Any) -> Any: ...
    def lt(self, a: Any, b: Any) -> Any: ...
    def gt(self, a: Any, b: Any) -> Any: ...
    def eq(self, a: Any, b: Any) -> Any: ...
    def nonzero(self, x: Any) -> Any: ...
    def div2(self, x: Any) -> Any: ...
    def bind(self, name: str, x: Any) -> Any: ...


class PyArith:
    """Python ints; C's int16 behaviour spelled out."""

    def wrap(self, x: int) -> int:
        return (x + 32768) % 65536 - 32768

    def srdhm(self, a: int, b: int) -> int:
        return gemmlowp.srdhm16(a, b)

    def rdbp(self, x: int, exponent: int) -> int:
        return gemmlowp.rdbp(x, exponent)

    def bitand(self, x: int, mask: int) -> int:
        return x & mask

    def sel(self, cond: bool, a: int, b: int) -> int:
        return a if cond else b

    def lt(self, a: int, b: int) -> bool:
        return a < b

    def gt(self, a: int, b: int) -> bool:
        return a > b

    def eq(self, a: int, b: int) -> bool:
        return a == b

    def nonzero(self, x: int) -> bool:
        return x != 0

    def div2(self, x: int) -> int:
        return gemmlowp._tdiv(x, 2)

    def bind(self, name: str, x: int) -> int:
        return x


class TirArith:
    """TIR int32 expressions; ``bind(name, value)`` stores into a local scalar and loads it."""

    def __init__(self, bind: Callable[[str, Any], Any]):
        self._bind = bind

    def wrap(self, x: Any) -> Any:
        return i32(tirx.Cast("int16", x))

    def srdhm(self, a: Any, b: Any) -> Any:
        ab = a * b  # |a|, |b| <= 2^15: fits int32
        nudge = select(ab >= i32(0), i32(1 << 14), i32(1 - (1 << 14)))
        high = tirx.truncdiv(ab + nudge, i32(1 << 15))
        return select(tirx.all(a == i32(-32768), b == i32(-32768)), i32(32767), high)

    def rdbp(self, x: Any, exponent: int) -> Any:
        return rounding_divide_by_pot(x, exponent) if exponent else x

    def bitand(self, x: Any, mask: int) -> Any:
        return tirx.bitwise_and(x, i32(mask))

    def sel(self, cond: Any, a: Any, b: Any) -> Any:
        return select(cond, a, b)

    def lt(self, a: Any, b: Any) -> Any:
        return a < b

    def gt(self, a: Any, b: Any) -> Any:
        return a > b

    def eq(self, a: Any, b: Any) -> Any:
        return a == b

    def nonzero(self, x: Any) -> Any:
        return x != i32(0)

    def div2(self, x: Any) -> Any:
        return tirx.truncdiv(x, i32(2))

    def bind(self, name: str, x: Any) -> Any:
        return self._bind(name, x)


def _const(ar: Arith, v: int) -> Any:
    return v if isinstance(ar, PyArith) else i32(v)


def _sat_shift_left(ar: Arith, x: Any, exponent: int) -> Any:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` (exponent >= 0) on int16."""
    if exponent == 0:
        return x
    threshold = (1 << (15 - exponent)) - 1
    shifted = ar.wrap(x * _const(ar, 1 << exponent))
    return ar.sel(ar.gt(x, _const(ar, threshold)), _const(ar, 32767),
                  ar.sel(ar.lt(x, _const(ar, -threshold)), _const(ar, -32768), shifted))


def _exp_on_interval(ar: Arith, a: Any) -> Any:
    """exp(a) for a in [-1/4, 0), Q0.15 in and out: a Taylor series around -1/8."""
    c = _const
    constant_term = c(ar, _c16(1895147668))
    one_third = c(ar, _c16(715827883))
    x = ar.bind("exp_x", ar.wrap(a + c(ar, 1 << 12)))
    x2 = ar.bind("exp_x2", ar.srdhm(x, x))
    x3 = ar.bind("exp_x3", ar.srdhm(x2, x))
    x4 = ar.bind("exp_x4", ar.srdhm(x2, x2))
    x4_over_4 = ar.bind("exp_x4_4", ar.rdbp(x4, 2))
    partial = ar.bind("exp_partial", ar.wrap(x4_over_4 + x3))
    partial = ar.bind("exp_partial", ar.wrap(ar.srdhm(partial, one_third) + x2))
    poly = ar.bind("exp_poly", ar.rdbp(partial, 1))
    total = ar.bind("exp_total", constant_term + ar.srdhm(constant_term, ar.wrap(x + poly)))
    # AddSaturatingIf16Bit
    return ar.sel(ar.gt(total, c(ar, 32767)), c(ar, 32767), total)


BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
          (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(ar: Arith, a: Any, integer_bits: int) -> Any:
    """``gemmlowp::exp_on_negative_values`` for ``FixedPoint<int16, integer_bits>``; Q0.15."""
    c = _const
    fractional_bits = 15 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod = ar.bind("exp_a_mod", ar.wrap(ar.bitand(a, one_quarter - 1) - c(ar, one_quarter)))
    result = ar.bind("exp_result", _exp_on_interval(ar, _sat_shift_left(ar, a_mod, integer_bits)))
    remainder = ar.bind("exp_remainder", ar.wrap(a_mod - a))
    for exponent, multiplier in BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = ar.bind("exp_result", ar.sel(
                ar.nonzero(ar.bitand(remainder, bit)),
                ar.srdhm(result, c(ar, _c16(multiplier))), result))
    if integer_bits > 5:
        clamp = -(1 << (20 - integer_bits))  # -32 in this format
        result = ar.sel(ar.lt(a, c(ar, clamp)), c(ar, 0), result)
    return ar.bind("exp_result", ar.sel(ar.eq(a, c(ar, 0)), c(ar, ONE_Q0), result))


def _newton_half_reciprocal(ar: Arith, a: Any) -> Any:
    """x in Q2.13 with x ~ 1 / ((1 + a) / 2), a in Q0.15: three Newton-Raphson steps."""
    c = _const
    total = a + c(ar, ONE_Q0)
    half_den = ar.bind("half_den", ar.div2(total + ar.sel(ar.lt(total, c(ar, 0)), c(ar, -1),
                                                          c(ar, 1))))
    x = ar.bind("recip", ar.wrap(c(ar, _c16(1515870810))
                                 + ar.srdhm(half_den, c(ar, _c16(-1010580540)))))
    for _ in range(3):
        product = ar.bind("recip_product", ar.srdhm(half_den, x))
        correction = ar.bind("recip_correction", ar.srdhm(x, ar.wrap(c(ar, 1 << 13) - product)))
        x = ar.bind("recip", ar.wrap(x + _sat_shift_left(ar, correction, 2)))
    return x


def logistic(ar: Arith, a: Any, integer_bits: int) -> Any:
    """``gemmlowp::logistic(FixedPoint<int16, integer_bits>)``: Q0.15 in [0, 32767]."""
    c = _const
    positive = ar.gt(a, c(ar, 0))
    abs_a = ar.sel(positive, a, ar.wrap(c(ar, 0) - a))
    e = exp_on_negative_values(ar, ar.wrap(c(ar, 0) - abs_a), integer_bits)
    x = _newton_half_reciprocal(ar, e)
    on_positive = ar.bind("logistic", _sat_shift_left(ar, x, 1))
    return ar.sel(ar.eq(a, c(ar, 0)), c(ar, 1 << 14),
                  ar.sel(positive, on_positive, ar.wrap(c(ar, ONE_Q0) - on_positive)))


def tanh(ar: Arith, a: Any, integer_bits: int) -> Any:
    """``gemmlowp::tanh(FixedPoint<int16, integer_bits>)``: Q0.15."""
    c = _const
    negative = ar.lt(a, c(ar, 0))
    n = ar.sel(negative, a, ar.wrap(c(ar, 0) - a))
    e = exp_on_negative_values(ar, n, integer_bits + 1)  # ExactMulByPot<1>: 2x, same raw value
    x = _newton_half_reciprocal(ar, e)
    t = ar.bind("tanh", _sat_shift_left(ar, ar.wrap(x - c(ar, 1 << 13)), 2))
    return ar.sel(ar.eq(a, c(ar, 0)), c(ar, 0), ar.sel(negative, ar.wrap(c(ar, 0) - t), t))


def logistic_py(raw: int, integer_bits: int = 3) -> int:
    return int(logistic(PyArith(), raw, integer_bits))


def tanh_py(raw: int, integer_bits: int) -> int:
    return int(tanh(PyArith(), raw, integer_bits))
