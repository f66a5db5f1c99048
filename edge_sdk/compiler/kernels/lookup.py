"""LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, ABS, RSQRT, GELU and ELU, int8, as 256-entry tables.

The tables are TFLite's own arithmetic evaluated for every int8 input at compile time: the
reference integer arithmetic for the first five (:mod:`edge_sdk.compiler.gemmlowp`), and for
GELU and ELU the float function TFLite itself tabulates in ``Prepare`` (``LUTPopulate``:
dequantize, transform, round, requantize, all in float32). The kernel is
``y[i] = table[x[i] + 128]``: one load per element, whatever the arithmetic costs.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import tirx

from edge_sdk.compiler import gemmlowp
from edge_sdk.compiler.kernels.common import (
    int8_tensor,
    quantized_tensor,
    refuse,
    scale,
    zero_point,
)
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.sigmoid16 import lower_sigmoid16
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, i32, kernel, loop, scalar, store
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import f32, quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

# TFLite requires these output parameters for int8 LOGISTIC and TANH.
_FIXED_OUTPUT = {"LOGISTIC": (1.0 / 256, -128), "TANH": (1.0 / 128, 0)}


def leaky_relu_table(op: Operator, x_scale: float, x_zp: int, y_scale: float, y_zp: int
                     ) -> list[int]:
    """``reference_ops::QuantizeLeakyRelu``: the identity or the alpha multiplier by the sign of
    ``x - zp``; ``LeakyReluPrepare`` forms both multipliers in float."""
    alpha = f32(op.options.get("alpha", 0.2))
    identity = quantize_multiplier(f32(f32(x_scale) / f32(y_scale)))
    negative = quantize_multiplier(f32(f32(f32(x_scale) * alpha) / f32(y_scale)))
    table = []
    for q in range(-128, 128):
        v = q - x_zp
        m, s = identity if v >= 0 else negative
        table.append(min(max(y_zp + gemmlowp.mbqm(v, m, s), -128), 127))
    return table


def abs_table(x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> list[int]:
    """``AbsEvalQuantized``: ``|x - zp|``, rescaled when the scales differ (multiplier formed
    in float by ``AbsPrepare``)."""
    m, s = quantize_multiplier(f32(f32(x_scale) / f32(y_scale)))
    table = []
    for q in range(-128, 128):
        v = abs(q - x_zp)
        out = (gemmlowp.mbqm(v, m, s) if f32(x_scale) != f32(y_scale) else v) + y_zp
        table.append(min(max(out, -128), 127))
    return table


def _gelu(x: np.float32, approximate: bool) -> np.float32:
    """The float GELU TFLite tabulates (``reference_ops::Gelu``'s formulas, float32)."""
    half = np.float32(0.5)
    if approximate:
        inner = np.float32(math.sqrt(2 / math.pi)) * (x + np.float32(0.044715) * x * x * x)
        return half * x * (np.float32(1.0) + np.float32(math.tanh(float(inner))))
    return half * x * np.float32(math.erfc(float(x * np.float32(-math.sqrt(0.5)))))


def _elu(x: np.float32) -> np.float32:
    return np.float32(math.expm1(float(x))) if x < 0 else x


def float_function_table(transform, x_scale: float, x_zp: int, y_scale: float, y_zp: int
                         ) -> list[int]:
    """``LUTPopulate`` for int8: ``round(f(scale * (q - zp)) / out_scale) + out_zp``, float32."""
    inverse = np.float32(1.0) / np.float32(y_scale)
    table = []
    for q in range(-128, 128):
        dequantized = np.float32(x_scale) * np.float32(q - x_zp)
        rescaled = np.float32(transform(dequantized)) * inverse
        rounded = math.floor(abs(float(rescaled)) + 0.5) * (1 if rescaled >= 0 else -1)
        table.append(min(max(int(rounded) + y_zp, -128), 127))
    return table


def rsqrt_table(x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> list[int]:
    """``RsqrtEvalQuantized``: ``1 / sqrt(x - zp)`` from the integer inverse square root, scaled
    by ``1 / (sqrt(input_scale) * output_scale)`` (float32 product, as ``Prepare``); zero gives
    the largest output. TFLite refuses negative inputs at run time; we give them 127 too."""
    m, s = quantize_multiplier(1.0 / float(np.sqrt(np.float32(x_scale)) * np.float32(y_scale)))
    table = []
    for q in range(-128, 128):
        v = q - x_zp
        if v <= 0:
            table.append(127)
            continue
        inv, inv_shift = gemmlowp.inv_sqrt_multiplier_exp(v)
        data = gemmlowp.mbqm(1, inv, inv_shift + 20)
        table.append(min(max(gemmlowp.mbqm(data, m, s - 20) + y_zp, -128), 127))
    return table


def lower_abs_int16(op: Operator, graph: Graph, func_name: str) -> Step:
    """ABS, int16x8: ``|x|`` (zero points 0), rescaled when the scales differ, as
    :func:`abs_table` computes for int8; 65536 inputs are too many for a table, so the kernel
    does the arithmetic."""
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if (x.dtype, y.dtype) != ("int16", "int16") or x.size != y.size:
        raise refuse(op, "int16 input needs an int16 output of the same size")
    m, s = quantize_multiplier(f32(f32(scale(x)) / f32(scale(y))))
    rescale = f32(scale(x)) != f32(scale(y))
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), "int16"), ("output", (y.size,), "int16"))
        v = scalar("value")
        with loop("i", x.size) as i:
            store(v, tirx.abs(i32(X[i])))
            if rescale:
                emit_multiply_by_quantized_multiplier(v, m, s)
            store(Y, tirx.Cast("int16", clamp(v[0], -32768, 32767)), i)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
        notes="int16x8",
    )


def int8_table(op: Operator, graph: Graph) -> tuple[Tensor, Tensor, Constant]:
    """The int8 operator as a 256-entry table (input value + 128 -> output), made with TFLite's
    reference arithmetic; the CPU and GPU kernels both gather from it."""
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.size != y.size:
        raise refuse(op, "input and output sizes differ")
    if op.opcode in _FIXED_OUTPUT and (scale(y), zero_point(y)) != _FIXED_OUTPUT[op.opcode]:
        want = _FIXED_OUTPUT[op.opcode]
        raise refuse(op, f"int8 {op.opcode} needs output scale {want[0]} and zero point {want[1]}")
    if op.opcode == "LOGISTIC":
        values = gemmlowp.logistic_table(scale(x), zero_point(x))
    elif op.opcode == "TANH":
        values = gemmlowp.tanh_table(scale(x), zero_point(x))
    elif op.opcode == "LEAKY_RELU":
        values = leaky_relu_table(op, scale(x), zero_point(x), scale(y), zero_point(y))
    elif op.opcode == "ABS":
        values = abs_table(scale(x), zero_point(x), scale(y), zero_point(y))
    elif op.opcode == "RSQRT":
        values = rsqrt_table(scale(x), zero_point(x), scale(y), zero_point(y))
    elif op.opcode in ("GELU", "ELU"):
        approximate = bool(op.options.get("approximate"))
        transform = _elu if op.opcode == "ELU" else (lambda v: _gelu(v, approximate))
        values = float_function_table(transform, scale(x), zero_point(x), scale(y),
                                      zero_point(y))
    else:
        values = gemmlowp.hard_swish_table(scale(x), zero_point(x), scale(y), zero_point(y))
    return x, y, Constant(f"l{op.index}_table", np.array(values, dtype=np.int8))


def lower_lookup(op: Operator, graph: Graph, func_name: str) -> Step:
    if graph.tensor(op.inputs[0]).dtype == "int16":
        if op.opcode == "ABS":
            return lower_abs_int16(op, graph, func_name)
        if op.opcode in ("LOGISTIC", "TANH"):
            return lower_sigmoid16(op, graph, func_name)
    x, y, table = int8_table(op, graph)
    with kernel(func_name) as k:
        X, T, Y = buffer_args(("input", (x.size,), "int8"), ("table", (256,), "int8"),
                              ("output", (y.size,), "int8"))
        with loop("i", x.size) as i:
            store(Y, T[i32(X[i]) + 128], i)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), table, TensorArg(y.index, writes=True)), macs=x.size,
        notes="256-entry table of TFLite's reference integer arithmetic",
    )
