"""TFLite's compile-time quantization arithmetic, done once in Python.

This mirrors ``tensorflow/lite/kernels/internal/quantization_util.cc`` and the ``Prepare`` steps of
the reference kernels: effective scales are computed in double from the float32 scales stored in the
model, turned into a Q31 multiplier and a shift with round-half-away-from-zero, exactly as TFLite
does. Generated C then does integer work only (see :mod:`edge_sdk.compiler.kernels.fixedpoint`).
"""

from __future__ import annotations

import math

import numpy as np

from edge_sdk.errors import ModelError

INT8_MIN, INT8_MAX = -128, 127


def tflite_round(x: float) -> int:
    """``std::round``: halves go away from zero (Python's ``round`` goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def f32(x: float) -> float:
    """Round a Python float to float32 and back, as C++ does when it stores a ``float``."""
    return float(np.float32(x))


def quantize_array(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8"
                   ) -> np.ndarray:
    """Float data to int8 (or int16) exactly as TFLite's QUANTIZE does: divide in float32,
    round half away from zero, add the zero point, saturate (measured against LiteRT, ties
    included)."""
    scaled = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    info = np.iinfo(dtype)
    return np.clip(rounded + zero_point, info.min, info.max).astype(dtype)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier``: ``real ≈ m * 2**(shift - 31)`` with ``m`` in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 31 or not math.isfinite(real):
        # 32-bit fixed point cannot scale by 2^31 or more: such a ratio of scales only comes
        # from a broken file (a denormal scale, say), and its kernel would shift past 32 bits.
        raise ModelError(f"a rescaling factor of {real:.3g} (a ratio of the model's scales) is "
                         "beyond 32-bit fixed point: the model's quantization parameters are "
                         "broken; re-export it")
    return int(q_fixed), int(shift)


def activation_range(activation: str, scale: float, zero_point: int, dtype: str = "int8"
                     ) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for an int8 (or int16) output.

    ``scale`` is the float32 output scale; the division runs in float32 as in TFLite.
    """
    lo, hi = (INT8_MIN, INT8_MAX) if dtype == "int8" else (-(2**15), 2**15 - 1)

    def quantize(value: float) -> int:
        return zero_point + tflite_round(f32(f32(value) / f32(scale)))

    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, quantize(0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    raise ValueError(f"fused activation {activation} is not supported on {dtype} outputs")


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """``ComputePaddingHeightWidth`` for one axis: returns (output size, padding before)."""
    effective = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2


def valid_output(in_size: int, filter_size: int, stride: int, dilation: int) -> int:
    effective = (filter_size - 1) * dilation + 1
    return (in_size - effective + stride) // stride


def conv_geometry(
    padding: str, in_hw: tuple[int, int], filt_hw: tuple[int, int],
    stride: tuple[int, int], dilation: tuple[int, int] = (1, 1),
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Output (H, W) and (pad_top, pad_left) for TFLite's SAME/VALID padding."""
    out, pad = [], []
    for axis in range(2):
        if padding == "SAME":
            o, p = same_padding(in_hw[axis], filt_hw[axis], stride[axis], dilation[axis])
        else:
            o, p = valid_output(in_hw[axis], filt_hw[axis], stride[axis], dilation[axis]), 0
        out.append(o)
        pad.append(p)
    return (out[0], out[1]), (pad[0], pad[1])


def per_channel_multipliers(
    input_scale: float, filter_scales: tuple[float, ...], output_scale: float, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """``PopulateConvolutionQuantizationParams``: one (multiplier, shift) per output channel.

    A per-tensor filter scale is broadcast over the channels, as TFLite does.
    """
    mults, shifts = [], []
    for c in range(channels):
        fs = filter_scales[c] if len(filter_scales) > 1 else filter_scales[0]
        m, s = quantize_multiplier(input_scale * fs / output_scale)
        mults.append(m)
        shifts.append(s)
    return np.array(mults, dtype=np.int32), np.array(shifts, dtype=np.int32)


def accumulator_bound(weights_by_channel: np.ndarray, bias: np.ndarray,
                      left_shift: np.ndarray | None = None) -> int:
    """The largest ``|accumulator|`` any output channel can reach for int8 inputs (which lie in
    [-128, 127]): its bias plus 128 times the sum of its weights' magnitudes, times
    ``2^left_shift`` per channel where a shift is given. ``weights_by_channel``: one row of
    weights per output channel. The SIMD kernels take their fast requantization only below
    the bound their arithmetic is exact for."""
    per_channel = np.abs(weights_by_channel.astype(np.int64)).sum(axis=1)
    bound = np.abs(bias[: per_channel.size].astype(np.int64)) + 128 * per_channel
    if left_shift is not None:
        bound = bound << np.maximum(left_shift.astype(np.int64), 0)
    return int(bound.max())
