"""LOGISTIC and TANH, int16x8: TFLite's interpolated sigmoid, bit for bit.

TFLite's int16 kernels (``reference_integer_ops::Logistic``/``Tanh``) do not compute the
function: they rescale the input to a fixed grid, then interpolate linearly between 256 knots
of sigmoid on ``[0, 255/24]`` (Q0.16), using ``tanh(x) = 2 sigmoid(2x) - 1`` for TANH and the
symmetry ``sigmoid(-x) = 1 - sigmoid(x)`` for negative inputs. The knots are not
``round(65536 sigmoid(k/24))`` (a third of them are one above it; no rounding rule we tried
gives them all), so bit-exactness needs the knots themselves.

:data:`SIGMOID_KNOTS` was measured, not transcribed: LiteRT's reference LOGISTIC and TANH were
run on all 65,536 int16 inputs at ten input scales, and for every segment the one knot pair that
reproduces every output was solved for (each segment's pair is unique, and each segment's upper
knot is the next one's lower knot). ``tests/test_sigmoid16.py`` repeats that measurement against
the installed LiteRT, so a change there fails a test instead of going unnoticed.

Everything else is the kernels' own arithmetic:

- ``Prepare`` picks the input rescaling. A power-of-two input scale of 2^-12 (TANH: also
  2^-11) multiplies by 3 (6); any other scale multiplies by ``int(scale * 12288 * 2^shift)``,
  doubling until the multiplier passes 16383.5, then shifts right by ``shift`` with rounding.
- LOGISTIC takes the rescaled ``v`` as segment ``|v| >> 9`` and weight ``|v| & 511``; TANH as
  ``|v| >> 8`` and ``|v| & 255``; both saturate from segment 255 on.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import quantized_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.tir import buffer_args, i32, kernel, loop, scalar, select, store
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.ir import Graph, Operator

# sigmoid(k / 24) in Q0.16 as TFLite's int16 kernels use it, k = 0..255 (measured; see above).
SIGMOID_KNOTS: tuple[int, ...] = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
)

# Per opcode: bits of the interpolation weight, and the pre-shift value a saturated segment has.
_WEIGHT_BITS = {"LOGISTIC": 9, "TANH": 8}
_SATURATED = {"LOGISTIC": 0x7FFF << 10, "TANH": 0xFFFF << 8}


def checked_log2(value: float) -> tuple[int, bool]:
    """``CheckedLog2``: the nearest integer log2 of ``value`` in float32 arithmetic, and whether
    ``value`` is a power of two within 1e-3 of an octave."""
    log2 = np.float32(np.log(np.float32(value))) * np.float32(1.0 / np.log(np.float32(2.0)))
    rounded = math.copysign(math.floor(abs(float(log2)) + 0.5), float(log2))  # TfLiteRound
    return int(rounded), abs(float(log2) - rounded) < 1e-3


def input_rescale(opcode: str, input_scale: float) -> tuple[int, int]:
    """``Prepare``'s ``(multiplier, right_shift)`` taking int16 inputs to the knots' grid, where
    one segment is 512 (LOGISTIC) or 256 (TANH) steps."""
    log2, power_of_two = checked_log2(input_scale)
    left_shift = 12 + log2
    if power_of_two and (left_shift == 0 or (opcode == "TANH" and left_shift == 1)):
        return 3 << left_shift, 0
    multiplier, shift = float(np.float32(input_scale)) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift


def lower_sigmoid16(op: Operator, graph: Graph, func_name: str) -> Step:
    """LOGISTIC or TANH with int16 input and output (zero points 0, output scale 1/32768)."""
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if (x.dtype, y.dtype) != ("int16", "int16") or x.size != y.size:
        raise refuse(op, "int16 input needs an int16 output of the same size")
    if zero_point(x) != 0 or zero_point(y) != 0:
        raise refuse(op, "int16 tensors need zero point 0")
    if checked_log2(scale(y)) != (-15, True):
        raise refuse(op, f"int16 output scale {scale(y)}; TFLite requires 1/32768")
    multiplier, shift = input_rescale(op.opcode, scale(x))
    if 32768 * multiplier >= 1 << 31:
        raise refuse(op, f"input scale {scale(x)} is too large for TFLite's int16 rescaling "
                         "(its int32 product overflows)")
    bits = _WEIGHT_BITS[op.opcode]
    knots = Constant("sigmoid_knots_q16", np.array(SIGMOID_KNOTS, dtype=np.uint16))
    with kernel(func_name) as k:
        X, K, Y = buffer_args(("input", (x.size,), "int16"), ("knots", (256,), "uint16"),
                              ("output", (y.size,), "int16"))
        v, a, seg, r = scalar("rescaled"), scalar("magnitude"), scalar("segment"), scalar("acc")
        with loop("i", x.size) as i:
            rounding = (1 << (shift - 1)) if shift else 0
            store(v, (i32(X[i]) * i32(multiplier) + i32(rounding)) >> i32(shift))
            store(a, tirx.abs(v[0]))
            store(seg, tirx.min(a[0] >> i32(bits), i32(254)))
            lower = i32(K[seg[0]])
            weight = tirx.bitwise_and(a[0], i32((1 << bits) - 1))
            store(r, (lower << i32(bits)) + weight * (i32(K[seg[0] + 1]) - lower))
            store(r, select(a[0] >= i32(255 << bits), i32(_SATURATED[op.opcode]), r[0]))
            if op.opcode == "LOGISTIC":
                out = select(v[0] >= i32(0), (r[0] + i32(1 << 9)) >> i32(10),
                             (i32((1 << 25) + (1 << 9) - 1) - r[0]) >> i32(10))
            else:
                out = select(v[0] >= i32(0), (r[0] - i32((1 << 23) - (1 << 7))) >> i32(8),
                             (i32((1 << 23) + (1 << 7) - 1) - r[0]) >> i32(8))
            store(Y, tirx.Cast("int16", out), i)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), knots, TensorArg(y.index, writes=True)), macs=x.size,
        notes="int16x8: TFLite's 256-knot interpolated sigmoid",
    )
