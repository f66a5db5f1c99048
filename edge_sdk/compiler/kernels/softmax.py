"""SOFTMAX, int8 in and out, matching TFLite's reference kernel bit for bit, in integers only.

TFLite's reference int8 softmax (``reference_ops::Softmax``, which both LiteRT's ``BUILTIN_REF``
resolver and TFLite Micro run; CMSIS-NN's ``arm_softmax_s8`` computes the same) is gemmlowp fixed
point, not float:

1. ``diff = x - row_max`` (in [-255, 0]) is rescaled to Q5.26 by ``input_scale * beta`` and
   ``exp_on_negative_values`` turns it into ``exp(diff)`` in Q0.31; diffs below ``diff_min``
   count as zero;
2. the row's exps are summed in Q12.19 (each rounded down by 2^12);
3. ``GetReciprocal``: ``1 / sum`` by three Newton-Raphson steps, as a Q0.31 ``scale`` and a
   power-of-two ``bits_over_unit``;
4. ``output = round(scale * exp / 2^(bits_over_unit + 23)) - 128``: the output is always
   quantized with scale 1/256 and zero point -128 (TFLite's Prepare insists on both).

Step 1 depends on the diff alone, and a diff takes at most 256 values, so we evaluate it at
compile time (:mod:`edge_sdk.compiler.gemmlowp`) into a table of int32s, trimmed where the
exps reach zero. Steps 2-4 run on the device, once per row for the reciprocal and once per
element for the rest: no float at all, which a Cortex-M0+ or M3 (no FPU) appreciates.

One departure, on purpose: where a row's exps add up to more than 256 (more than 256 classes
within ~0.1 of the maximum's logit), TFLite shifts an int32 right by 32 or more, which C leaves
undefined; we shift in 64 bits and return the mathematically rounded result (0 or 1 above -128).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler import gemmlowp
from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import leading_zeros, saturating_shift_left
from edge_sdk.compiler.kernels.fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from edge_sdk.compiler.kernels.tir import (
    binder,
    buffer_args,
    i32,
    i64,
    kernel,
    loop,
    scalar,
    store,
    when,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

SCALED_DIFF_INTEGER_BITS = 5  # the exp's input: Q5.26
ACCUMULATION_INTEGER_BITS = 12  # the row sum: Q12.19
OUTPUT_SCALE, OUTPUT_ZERO_POINT = 1 / 256, -128


def softmax_scaling(input_scale: float, beta: float) -> tuple[int, int, int]:
    """``PreprocessSoftmaxScaling`` + ``CalculateInputRadius``: (multiplier, left shift,
    diff_min) that take an int8 difference to Q5.26."""
    real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:  # QuantizeMultiplierGreaterThanOne: a multiplier below one is out of range
        raise ValueError(f"softmax input scale {input_scale} x beta {beta} is too small")
    radius = math.floor(((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                        * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << shift))
    return multiplier, shift, -radius


def exp_table(input_scale: float, beta: float) -> np.ndarray:
    """``exp(-d)`` in Q0.31 for each difference ``d = row_max - x`` that can contribute,
    exactly as the reference evaluates it; stops before the first zero."""
    multiplier, shift, diff_min = softmax_scaling(input_scale, beta)
    values = []
    for d in range(256):
        if -d < diff_min:
            break
        scaled = gemmlowp.srdhm(gemmlowp._wrap32(-d * (1 << shift)), multiplier)
        e = gemmlowp.exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
        if e == 0:
            break
        values.append(e)
    return np.array(values, dtype=np.int32)


# --- the fixed-point arithmetic, as TIR expressions -------------------------------------------
# Pure expression builders, shared by the C kernel (which stores each intermediate in a local:
# ``bind(name, expr)``) and the GPU one (one stage per intermediate). Inlining them instead
# would copy each Newton step's input seven times into the next: ~1,000 copies by the end.

Bind = Callable[[str, Any], Any]


def rescaled_exp(e: Any) -> Any:
    """``Rescale<12>`` of a Q0.31 exp (>= 0): round half up by 2^12, without overflow."""
    return (e >> i32(12)) + ((e >> i32(11)) & i32(1))


def headroom(row_sum: Any) -> Any:
    """Leading zeros of the row sum, in [1, 12] since the sum is in [2^19, 2^31) (the maximum
    alone contributes 2^19): one plus the powers of two in 2^20..2^30 above it. Counted with
    compares because TVM's C codegen has no ``clz`` and the GPU languages spell it differently;
    it runs once per row."""
    return leading_zeros(row_sum, lowest=19)


def bits_over_unit(headroom_: Any) -> Any:
    return i32(ACCUMULATION_INTEGER_BITS) - headroom_


def half_denominator(row_sum: Any, headroom_: Any) -> Any:
    """``(1 + x) / 2`` in Q0.31, rounded half away from zero, where ``1 + x`` is the sum shifted
    up to its top bit (``x`` in [0, 1)); exact, since the shifted sum is even."""
    return i32((i64(row_sum) << i64(headroom_)) >> i64(1))


def newton_start(half_den: Any) -> Any:
    """gemmlowp's first guess at ``1 / half_den`` in Q2.29: ``48/17 - 32/17 * half_den``."""
    return i32(1515870810) + srdhm(half_den, i32(-1010580540))


def newton_product(r: Any, half_den: Any) -> Any:
    return srdhm(half_den, r)


def newton_correction(r: Any, product: Any) -> Any:
    return srdhm(r, i32(1 << 29) - product)


def newton_update(r: Any, correction: Any) -> Any:
    return r + saturating_shift_left(correction, 2)


def newton_step(r: Any, half_den: Any, bind: Bind) -> Any:
    """One Newton-Raphson step: ``r + r * (1 - half_den * r)`` (Q2.29), its two products
    named (TVM's simplifier takes seconds over the step written as one expression)."""
    product = bind("half_den_times_r", newton_product(r, half_den))
    correction = bind("correction", newton_correction(r, product))
    return newton_update(r, correction)


def final_scale(r: Any) -> Any:
    """``1 / (1 + x)`` in Q0.31 from the Q2.29 reciprocal of half of it."""
    return saturating_shift_left(r, 1)


NEWTON_STEPS = 3


def reciprocal(row_sum: Any, headroom_: Any, bind: Bind) -> Any:
    """``GetReciprocal(row_sum, 12)``: the Q0.31 ``scale`` with
    ``1 / sum ~= scale * 2^-bits_over_unit(headroom)`` (gemmlowp's
    ``one_over_one_plus_x_for_x_in_0_1``, three Newton-Raphson steps)."""
    half_den = bind("half_denominator", half_denominator(row_sum, headroom_))
    r = bind("reciprocal", newton_start(half_den))
    for _ in range(NEWTON_STEPS):
        r = bind("reciprocal", newton_step(r, half_den, bind))
    return bind("scale", final_scale(r))


def normalised(e: Any, scale_q31: Any, bits: Any) -> Any:
    """The int8 output for an exp ``e``: ``round(scale * e / 2^(bits_over_unit + 23)) - 128``,
    clamped; the product is >= 0, so rounding half away from zero is rounding half up."""
    product = i64(srdhm(scale_q31, e))
    exponent = i64(bits) + i64(31 - 8)
    rounded = i32((product + (i64(1) << (exponent - i64(1)))) >> exponent)
    return tirx.Cast("int8", tirx.min(rounded + i32(OUTPUT_ZERO_POINT), i32(127)))


# --- the plan and the C kernel ----------------------------------------------------------------

@dataclass(frozen=True)
class SoftmaxPlan:
    """``SoftmaxPrepare`` for int8: the exp table; rows of ``depth`` elements."""

    op: Operator
    x: Tensor
    y: Tensor
    outer: int
    depth: int
    table: Constant

    @property
    def table_size(self) -> int:
        return int(self.table.array.size)

    def step(self, func: tirx.PrimFunc, func_name: str, notes: str = "") -> Step:
        return Step(
            op_index=self.op.index, opcode=self.op.opcode, layer=self.y.name, kind="kernel",
            inputs=(self.x.index,), outputs=(self.y.index,), func=func, func_name=func_name,
            args=(TensorArg(self.x.index), self.table, TensorArg(self.y.index, writes=True)),
            macs=self.x.size,
            notes=notes or f"fixed point, as TFLite's reference; {self.table_size}-entry exp table",
        )


def plan_softmax(op: Operator, graph: Graph) -> SoftmaxPlan:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.shape != y.shape or not x.shape:
        raise refuse(op, "input and output shapes differ")
    if zero_point(y) != OUTPUT_ZERO_POINT or abs(scale(y) - OUTPUT_SCALE) > 1e-3 * OUTPUT_SCALE:
        raise refuse(op, f"int8 output quantized with scale {scale(y)} and zero point "
                         f"{zero_point(y)}; TFLite requires 1/256 and -128 (re-convert the model)")
    depth = x.shape[-1]
    try:
        table = exp_table(scale(x), float(op.options.get("beta", 1.0)))
    except ValueError as e:
        raise refuse(op, str(e)) from None
    return SoftmaxPlan(op=op, x=x, y=y, outer=x.size // depth, depth=depth,
                       table=Constant(f"l{op.index}_exp_q31", table))


def lower_softmax(op: Operator, graph: Graph, func_name: str) -> Step:
    if graph.tensor(op.inputs[0]).dtype == "int16":
        from edge_sdk.compiler.kernels.softmax_int16 import lower_softmax_int16

        return lower_softmax_int16(op, graph, func_name)
    p = plan_softmax(op, graph)
    outer, depth, n = p.outer, p.depth, p.table_size
    with kernel(func_name) as k:
        X, E, Y = buffer_args(
            ("input", (outer, depth), "int8"),
            ("exp_q31", (n,), "int32"),
            ("output", (outer, depth), "int8"),
        )
        row_max = scalar("row_max")
        row_sum = scalar("row_sum")
        diff = scalar("diff")
        bind = binder()

        with loop("i", outer) as i:
            store(row_max, i32(-128))
            with loop("j", depth) as j:
                store(row_max, tirx.max(row_max[0], i32(X[i, j])))
            store(row_sum, i32(0))
            with loop("j", depth) as j:
                store(diff, row_max[0] - i32(X[i, j]))
                with when(diff[0] < i32(n)):
                    store(row_sum, row_sum[0] + rescaled_exp(E[diff[0]]))
            leading = bind("headroom", headroom(row_sum[0]))
            scale_q31 = reciprocal(row_sum[0], leading, bind)
            with loop("j", depth) as j:
                store(diff, row_max[0] - i32(X[i, j]))
                store(Y, tirx.Cast("int8", i32(OUTPUT_ZERO_POINT)), i, j)
                with when(diff[0] < i32(n)):
                    store(Y, normalised(E[diff[0]], scale_q31, bits_over_unit(leading)), i, j)
    return p.step(k.func, func_name)
