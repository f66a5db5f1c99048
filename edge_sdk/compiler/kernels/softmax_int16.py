"""SOFTMAX, int16x8 (``reference_ops::SoftmaxInt16``), bit-exact, in integers.

Per row: each difference to the row maximum is scaled so that [-65535, 0] spans [-10, 0], and
``exp`` is read from a 513-entry table with linear interpolation between entries (the table is
TFLite's: ``exp`` sampled at 512 steps over [-10, 0] in Q0.15, each entry nudged by half the
interpolation error at its midpoint; made here at compile time, in double, as ``Prepare`` does).
The exps, summed in int32, are normalised to [1, 2) by their leading zeros; ``1 / (1 + x)`` comes
from a second such table over [0, 1]; each output is ``exp * reciprocal`` shifted back, in
[0, 32767] (TFLite fixes the output at scale 1/32768, zero point 0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import quantized_tensor, refuse, scale
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier,
    leading_zeros,
)
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    i64,
    kernel,
    loop,
    scalar,
    store,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.ir import Graph, Operator

LUT_SIZE = 513


def _round(x: float) -> float:
    """``TfLiteRound``: half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def interpolation_table(func, lo: float, hi: float, size: int = LUT_SIZE) -> np.ndarray:
    """``func`` over [lo, hi] in Q0.15 at ``size - 1`` steps, each entry biased by half the
    error linear interpolation would make at its midpoint; the last entry is ``func(hi)``."""
    step = (hi - lo) / (size - 1)
    table = []
    for i in range(size - 1):
        x = lo + i * step
        sample = _round(func(x) * 32768.0)
        interpolated = _round((func(x + step) * 32768.0 + sample) / 2.0)
        midpoint = _round(func(x + step / 2.0) * 32768.0)
        bias = _round((interpolated - midpoint) / 2.0)
        table.append(min(max(sample - bias, -32768.0), 32767.0))
    table.append(min(max(_round(func(hi) * 32768.0), -32768.0), 32767.0))
    return np.array(table, dtype=np.int16)


def _wrap16(v: Any) -> Any:
    return i32(tirx.Cast("int16", v))


def _lookup(v: Any, lut: tirx.Buffer) -> Any:
    """``generic_int16_table_lookup``: entry ``256 + v / 128``, interpolated by ``v % 128``."""
    index = i32(256) + (v >> i32(7))
    base = i32(lut[index])
    slope = _wrap16(i32(lut[index + 1]) - base)
    return _wrap16(base + ((slope * tirx.bitwise_and(v, i32(0x7F)) + i32(64)) >> i32(7)))


def lower_softmax_int16(op: Operator, graph: Graph, func_name: str) -> Step:
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if y.dtype != "int16" or x.shape != y.shape or not x.shape:
        raise refuse(op, "int16 input needs an int16 output of the same shape")
    if abs(scale(y) * 32768 - 1) > 1e-6:
        raise refuse(op, f"int16 output scale {scale(y)}; TFLite requires 1/32768")
    depth = x.shape[-1]
    outer = x.size // depth
    if depth >= 1 << 16:
        raise refuse(op, f"rows of {depth} values (the int32 sum of exps allows 65535)")
    multiplier, shift = quantize_multiplier(
        scale(x) * float(op.options.get("beta", 1.0)) / (10.0 / 65535.0))
    tables = (Constant(f"l{op.index}_exp_lut", interpolation_table(math.exp, -10.0, 0.0)),
              Constant(f"l{op.index}_one_over_one_plus_x_lut",
                       interpolation_table(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)))
    with kernel(func_name) as k:
        X, EXP, ONE, Y = buffer_args(
            ("input", (outer, depth), "int16"), ("exp_lut", (LUT_SIZE,), "int16"),
            ("one_over_one_plus_x_lut", (LUT_SIZE,), "int16"),
            ("output", (outer, depth), "int16"))
        row_max, total, diff = scalar("row_max"), scalar("sum_of_exps"), scalar("diff")
        headroom, recip = scalar("headroom_plus_one"), scalar("reciprocal")
        with loop("row", outer) as r:
            store(row_max, i32(-32768))
            with loop("c", depth) as c:
                store(row_max, tirx.max(row_max[0], i32(X[r, c])))
            store(total, i32(0))
            with loop("c", depth) as c:  # the exps wait in the output, as in TFLite
                store(diff, i32(X[r, c]) - row_max[0])
                emit_multiply_by_quantized_multiplier(diff, multiplier, shift)
                store(diff, clamp(diff[0] + i32(32767), -32768, 32767))
                store(Y, tirx.Cast("int16", _lookup(diff[0], EXP)), r, c)
                store(total, total[0] + i32(Y[r, c]))
            store(headroom, leading_zeros(total[0], lowest=14))
            shifted = i32(((i64(total[0]) << i64(headroom[0] - i32(1))) + i64(1 << 13))
                          >> i64(14))
            store(recip, clamp(shifted - i32((1 << 15) + (1 << 16)), -32768, 32767))
            store(recip, _lookup(recip[0], ONE))
            with loop("c", depth) as c:
                right = i64(31) - i64(headroom[0])
                product = i64(Y[r, c]) * i64(recip[0]) + (i64(1) << (right - i64(1)))
                store(Y, tirx.Cast("int16", clamp(i32(product >> right), 0, 32767)), r, c)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *tables, TensorArg(y.index, writes=True)), macs=2 * x.size,
        notes="int16x8: exp and 1/(1+x) by interpolated 513-entry tables, as TFLite",
    )
