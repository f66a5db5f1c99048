"""An exact Python port of the gemmlowp fixed-point routines that TFLite's int8 kernels use.

LOGISTIC and TANH (``reference_integer_ops::Logistic``/``Tanh``) evaluate ``gemmlowp::logistic``
and ``gemmlowp::tanh`` on Q4.27 inputs; HARD_SWISH (``reference_ops::HardSwish``) uses int16
fixed point. An int8 input has 256 values, so we evaluate these once, in Python, at compile time,
and the generated C looks the result up in a table. Integers here are Python ints; every helper
reproduces C's int32/int16 behaviour (truncating division, arithmetic shifts, saturation).
"""

from __future__ import annotations

import math

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def _wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def _tdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _srdhm(a: int, b: int, bits: int) -> int:
    """SaturatingRoundingDoublingHighMul for ``bits``-wide integers (gemmlowp's, both widths)."""
    lowest, highest = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if a == b == lowest:
        return highest
    ab = a * b
    nudge = (1 << (bits - 2)) if ab >= 0 else 1 - (1 << (bits - 2))
    return _tdiv(ab + nudge, 1 << (bits - 1))


def srdhm(a: int, b: int) -> int:
    return _srdhm(a, b, 32)


def srdhm16(a: int, b: int) -> int:
    return _srdhm(a, b, 16)


def sdhm16(a: int, b: int) -> int:
    """TFLite's SaturatingDoublingHighMul (no rounding), int16."""
    if a == b == INT16_MIN:
        return INT16_MAX
    return _tdiv(a * b, 1 << 15)


def rdbp(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: round half away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def srmbpot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbp(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return _wrap32(x << exponent)


def mbqm(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding)."""
    left = max(shift, 0)
    return rdbp(srdhm(_wrap32(x * (1 << left)), multiplier), max(-shift, 0))


def _rescale(raw: int, src_bits: int, dst_bits: int) -> int:
    return srmbpot(raw, src_bits - dst_bits)


def _one(integer_bits: int) -> int:
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbp(x4, 2)
    poly = rdbp(_wrap32(srdhm(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp::exp_on_negative_values for FixedPoint<int32, integer_bits>; result Q0.31."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = _wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                                 (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            shift = fractional_bits + exponent
            if remainder & (1 << shift):
                result = srdhm(result, multiplier)
    if integer_bits > 5:
        raise NotImplementedError("gemmlowp's clamp for more than 5 integer bits")
    return INT32_MAX if a == 0 else result


def _newton_reciprocal_half(a: int) -> int:
    """The shared Newton-Raphson core: returns x (Q2.29) ~ 1 / half_denominator."""
    half_denominator = _wrap32(_tdiv(a + INT32_MAX + (1 if a + INT32_MAX >= 0 else -1), 2))
    x = _wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)  # Q0 * Q2 -> Q2
        one_minus = _wrap32(_one(2) - half_denominator_times_x)
        x = _wrap32(x + _rescale(srdhm(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_half(a)
    return _rescale(x, 1, 0)  # ExactMulByPot<-1> (Q2 -> Q1, same raw), then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_half(a)
    return _rescale(_wrap32(x - _one(2)), 2, 0)


def logistic_q4(a: int) -> int:
    """gemmlowp::logistic(FixedPoint<int32, 4>) -> Q0.31 raw."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else _wrap32(-a)
    positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(_wrap32(-abs_a), 4))
    return positive if a > 0 else _wrap32(INT32_MAX - positive)


def tanh_q4(a: int) -> int:
    """gemmlowp::tanh(FixedPoint<int32, 4>) -> Q0.31 raw."""
    if a == 0:
        return 0
    n = a if a < 0 else _wrap32(-a)
    # ExactMulByPot<1>: the same raw value read with 5 integer bits.
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, 5))
    return _wrap32(-t) if a < 0 else t


def quantize_multiplier(real: float) -> tuple[int, int]:
    from edge_sdk.compiler.quantization import quantize_multiplier as qm

    return qm(real)


def sigmoid_tanh_params(input_scale: float) -> tuple[int, int, int]:
    """(input_multiplier, input_left_shift, input_range_radius) of TFLite's int8 Prepare."""
    real = input_scale * float(1 << (31 - 4))
    multiplier, shift = quantize_multiplier(real)
    radius = math.floor(((1 << 4) - 1) * (1 << (31 - 4)) / (1 << shift))
    return multiplier, shift, radius


def _q4_table(input_scale: float, input_zp: int, fn, output_bits: int, zero_point: int
              ) -> list[int]:
    """``reference_integer_ops::Logistic``/``Tanh`` for every int8 input: saturate outside the
    input radius, else evaluate ``fn`` on the Q4.27 input and rescale its Q0.31 result."""
    multiplier, shift, radius = sigmoid_tanh_params(input_scale)
    table = []
    for q in range(-128, 128):
        x = q - input_zp
        if x <= -radius:
            table.append(-128)
        elif x >= radius:
            table.append(127)
        else:
            out = rdbp(fn(mbqm(x, multiplier, shift)), 31 - output_bits) + zero_point
            table.append(min(max(out, -128), 127))
    return table


def logistic_table(input_scale: float, input_zp: int) -> list[int]:
    return _q4_table(input_scale, input_zp, logistic_q4, 8, -128)


def tanh_table(input_scale: float, input_zp: int) -> list[int]:
    return _q4_table(input_scale, input_zp, tanh_q4, 7, 0)


def _downscale_to_int16(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


def _sat16(x: int) -> int:
    return min(max(x, INT16_MIN), INT16_MAX)


def _wrap16(x: int) -> int:
    return (x + 2**15) % 2**16 - 2**15


def hard_swish_table(input_scale: float, input_zp: int, output_scale: float,
                     output_zp: int) -> list[int]:
    """``reference_ops::HardSwish`` for int8, with the float parameter math of Prepare."""
    from edge_sdk.compiler.quantization import f32

    hires_input_scale = f32(f32(1.0 / 128.0) * f32(input_scale))
    reluish_scale = f32(3.0 / 32768.0)
    out_m32, out_exp = quantize_multiplier(f32(hires_input_scale / f32(output_scale)))
    out_m16 = _downscale_to_int16(out_m32)
    rel_m32, rel_exp = quantize_multiplier(f32(hires_input_scale / reluish_scale))
    rel_m16 = _downscale_to_int16(rel_m32)
    if out_exp > 0:
        raise ValueError("HARD_SWISH output multiplier exponent > 0")
    table = []
    for q in range(-128, 128):
        input_value = _wrap16(q - input_zp)
        hires = _wrap16(input_value * (1 << 7))
        preshift_output = srdhm16(hires, out_m16)
        reluish = hires
        if rel_exp > 0:
            reluish = _sat16(reluish * (1 << (rel_exp - 1)))
        reluish = srdhm16(reluish, rel_m16)
        if rel_exp > 0:
            reluish = _sat16(reluish * 2)
        if rel_exp < 0:
            reluish = rdbp(reluish, -rel_exp)
        reluish = _wrap16((reluish + (1 << 15)) >> 1)
        preshift = sdhm16(reluish, preshift_output)
        out = rdbp(preshift, -out_exp) + output_zp
        table.append(min(max(out, -128), 127))
    return table


def inv_sqrt_multiplier_exp(value: int, reverse_shift: int = -1) -> tuple[int, int]:
    """``GetInvSqrtQuantizedMultiplierExp``: (multiplier, shift) for ``1 / sqrt(value)``,
    ``value`` an int32 >= 0 (0 and 1 give (INT32_MAX, 0)). Normalises ``value`` into
    [2^27, 2^29) by pairs of bits, runs five Newton-Raphson steps ``x = 1.5 x - (v / 2) x^3``
    in Q3.28 from ``x = 1``, and scales by sqrt(2) / 2."""
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    leading_zeros = 32 - value.bit_length()
    pairs = (leading_zeros - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = rdbp(value >> 1, 1)
    x = 1 << 28
    for _ in range(5):
        x3 = srmbpot(srdhm(srdhm(x, x), x), 6)
        x = srmbpot(_wrap32(srdhm((1 << 28) + (1 << 27), x) - srdhm(half_input, x3)), 3)
    x = srdhm(x, 1518500250)
    if shift < 0:
        x = _wrap32(x << -shift)
        shift = 0
    return x, shift * reverse_shift


def _sat_add32(a: int, b: int) -> int:
    return min(max(a + b, INT32_MIN), INT32_MAX)


def _rounding_half_sum32(a: int, b: int) -> int:
    total = a + b
    return _tdiv(total + (1 if total >= 0 else -1), 2)


def _clz32(x: int) -> int:
    return 32 - (x & 0xFFFFFFFF).bit_length()


LOG_2, SQRT_SQRT_HALF, SQRT_HALF = 1488522236, 1805811301, 1518500250
ALPHA_N, ALPHA_D, ALPHA_I, ALPHA_F = 117049297, 127690142, 1057819769, 638450708


def log_x_for_x_greater_than_or_equal_to_1(z: int, output_bits: int, input_bits: int) -> int:
    """TFLite's ``log_x_for_x_greater_than_or_equal_to_1_impl``: log of a positive
    ``FixedPoint<int32, input_bits>`` value, as ``FixedPoint<int32, output_bits>`` raw.

    The input's power of two is found from its leading zeros (twice: as is, and premultiplied by
    sqrt(1/2), keeping the better-centred one), the mantissa ``r`` goes through a rational
    approximation around 2^-1/4 with one Newton-Raphson reciprocal."""
    accum_bits = output_bits + 1
    shifted_quarter = rdbp(1 << 29, accum_bits)  # Rescale<accum_bits>(1/4)
    hp1 = _clz32(z)
    r_a_raw = srmbpot(srdhm(srmbpot(z, hp1 - 1), SQRT_HALF), 1)
    z_a_pow_2_adj = _sat_add32(srmbpot(input_bits - hp1, 31 - accum_bits), shifted_quarter)
    z_b = srdhm(z, SQRT_HALF)
    z_b_headroom = _clz32(z_b) - 1
    r_b_raw = srmbpot(z, z_b_headroom)
    z_b_pow_2_adj = max(min(srmbpot(input_bits - z_b_headroom, 31 - accum_bits)
                            - shifted_quarter, INT32_MAX), INT32_MIN)
    r = min(r_a_raw, r_b_raw)
    z_pow_2_adj = max(z_a_pow_2_adj, z_b_pow_2_adj)
    p = _rounding_half_sum32(r, SQRT_SQRT_HALF)
    q = _wrap32(r - SQRT_SQRT_HALF)
    q = _wrap32(q + q)
    common_sq = srdhm(q, q)
    num = _wrap32(srdhm(q, r) + srdhm(srdhm(q, common_sq), ALPHA_N))
    denom_minus_one = _wrap32(srdhm(p, _wrap32(_wrap32(ALPHA_I + q) + srdhm(ALPHA_D, common_sq)))
                              + srdhm(ALPHA_F, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = srmbpot(num, -accum_bits)
    total = _wrap32(srdhm(z_pow_2_adj, LOG_2) + srdhm(num_scaled, recip_denom))
    return srmbpot(total, accum_bits - output_bits)
