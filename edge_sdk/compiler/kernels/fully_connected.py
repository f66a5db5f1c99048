"""FULLY_CONNECTED, int8, int16x8 and float32: what it computes, stated once.

**What.** ``y[b, o] = out(start + sum_d x[b, d] * w[o, d])`` with the terms of TFLite's reference
kernels (``reference_integer_ops::FullyConnected``, ``reference_ops::FullyConnected``).
:class:`FullyConnectedPlan` is TFLite's ``Prepare`` and states that arithmetic once, for every
kernel set: ``initial`` (where the sum starts), ``term`` (one product, in the accumulator's
type) and ``emit_output`` (what a finished sum becomes).

- int8: the sum starts at the bias with the input offset folded in (``sum((x - zp) w) = sum(x w)
  - zp sum(w)``) and is requantized with a *single* rounding, as TFLite's interpreter does (see
  ``fixedpoint``); per-tensor weights fold the multiplier and shift into the code, per-channel
  weights read them from tables.
- int16x8 (int16 activations with zero point 0, int8 weights, int64 bias): the sum is int64,
  exact while it stays below 2^32 in magnitude (int16 x int8 over up to 1024 full-scale terms),
  and is requantized with one rounding and the full 31-bit multiplier (measured: 0 of 6,300
  outputs differ; the int64 form with a 16-bit multiplier, which the int16 convolutions use,
  gets 7 wrong).
- float32: the sum starts at zero and the bias is added after it, then the fused activation's
  clamp: the order of TFLite's reference kernel, so results agree with LiteRT to rounding.

**How.** A schedule decides the loop order, the blocking and which micro-kernel forms the sum:
:func:`lower_fully_connected` here is the portable one (one unit at a time, any core); the Linux
CPU's (:func:`.cpu.lower_fully_connected_cpu`) puts units in vector lanes and takes int8 and
float32; the Cortex-M DSP's and Helium's (:mod:`.dsp`, :mod:`.mve`) compute four units per call of
a micro-kernel of ``edge_dsp.h``/``edge_mve.h``, which forms the same integer sum, and requantize
in SMMULR/SMMLA form where ``dsp.fast_requant`` proves that equal to :meth:`emit_output`'s.

The input is flattened to ``[batches, depth]`` with ``depth`` the filter's second dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import (
    bias_or_zeros,
    refuse,
    scale,
    zero_point,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier_single_rounding as requantize,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    multiply_by_quantized_multiplier_single_rounding,
)
from edge_sdk.compiler.kernels.float32 import (
    _activation,
    float_constant_or_zeros,
    weighted_operands,
)
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    f32,
    i32,
    i64,
    kernel,
    loop,
    scalar,
    store,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, per_channel_multipliers
from edge_sdk.ir import Graph, Operator, Tensor

# The accumulator of each activation type.
ACCUMULATOR = {"int8": "int32", "int16": "int64", "float32": "float32"}


@dataclass(frozen=True)
class FullyConnectedPlan:
    """``Prepare`` for one FULLY_CONNECTED, shared by every kernel set (C, Linux CPU, Cortex-M
    SIMD, GPU), and the layer's arithmetic: what each of them computes."""

    op: Operator
    x: Tensor
    y: Tensor
    batches: int
    units: int
    depth: int
    output_zp: int
    act: tuple[int, int]  # the integer output range; float32: unused (the op's activation)
    weights: Constant
    bias: Constant  # int8: the input offset already folded in; int16: int64; float32
    # Per-channel (and int16): (multiplier, shift) tables; per-tensor int8: the one pair,
    # folded into the code.
    tables: tuple[Constant, Constant] | None
    multiplier: int
    shift: int

    @property
    def dtype(self) -> str:
        """The activations' type: int8, int16 or float32."""
        return self.x.dtype

    @property
    def accumulator(self) -> str:
        return ACCUMULATOR[self.dtype]

    @property
    def requantizes(self) -> bool:
        """The output is an integer made from the sum (int8, int16), not the sum itself."""
        return self.dtype != "float32"

    @property
    def constants(self) -> tuple[Constant, ...]:
        return (self.weights, self.bias, *(self.tables or ()))

    @property
    def macs(self) -> int:
        return self.batches * self.units * self.depth

    # -- the arithmetic, stated once ------------------------------------------------------

    def initial(self, bias: Any) -> Any:
        """Where unit ``o``'s sum starts, given its bias ``bias`` (a load): int8 sums start at
        the folded bias; int16 and float32 add the bias after the sum, as TFLite does."""
        if self.dtype == "int8":
            return bias
        return f32(0.0) if self.dtype == "float32" else i64(0)

    def term(self, x: Any, w: Any) -> Any:
        """One product of the sum, in the accumulator's type."""
        if self.dtype == "float32":
            return x * w
        widen = i32 if self.dtype == "int8" else i64
        return widen(x) * widen(w)

    def emit_output(self, Y: tirx.Buffer, index: tuple, acc: tirx.Buffer, at: Any, o: Any,
                    B: tirx.Buffer, tables: list[tirx.Buffer]) -> None:
        """``Y[index] = out(acc[at])`` for unit ``o``: int8 requantizes ``acc[at]`` in place
        (single rounding), adds the output zero point and clamps; int16 adds the bias, then
        the same in int64; float32 adds the bias and applies the fused activation."""
        if self.dtype == "float32":
            store(Y, _activation(self.op, acc[at] + B[o]), *index)
        elif self.dtype == "int16":
            assert self.tables is not None  # int16 always reads tables
            value = multiply_by_quantized_multiplier_single_rounding(
                acc[at] + B[o], tables[0][o], tables[1][o])
            store(Y, tirx.Cast("int16", clamp(value, *self.act)), *index)
        else:
            mult, shift = ((tables[0][o], tables[1][o]) if tables
                           else (self.multiplier, self.shift))
            requantize(acc, mult, shift, at)
            store(Y, tirx.Cast("int8", clamp(acc[at] + self.output_zp, *self.act)), *index)

    # -- the lowered layer ----------------------------------------------------------------

    def step(self, func: tirx.PrimFunc, func_name: str, notes: str = "",
             constants: tuple[Constant, ...] | None = None) -> Step:
        """The lowered layer; ``constants``: the kernel's tables when not the plan's own
        (schedules that repack the weights, the GPU's word-wise kernel)."""
        middle = self.constants if constants is None else constants
        return Step(
            op_index=self.op.index, opcode=self.op.opcode, layer=self.y.name, kind="kernel",
            inputs=(self.x.index,), outputs=(self.y.index,), func=func, func_name=func_name,
            args=(TensorArg(self.x.index), *middle, TensorArg(self.y.index, writes=True)),
            macs=self.macs, notes=notes,
        )


def _shape(op: Operator, x: Tensor, y: Tensor, w_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(batches, units, depth)``, or a refusal where the tensors do not fit together."""
    if op.options.get("weights_format", 0) != 0 or len(w_shape) != 2:
        raise refuse(op, "only the default 2-D weights format is supported")
    units, depth = w_shape
    if x.size % depth:
        raise refuse(op, f"input size {x.size} is not a multiple of the filter depth {depth}")
    batches = x.size // depth
    if y.size != batches * units:
        raise refuse(op, f"output shape {y.shape} does not match {batches}x{units}")
    return batches, units, depth


def plan_fully_connected(op: Operator, graph: Graph) -> FullyConnectedPlan:
    """The plan of an int8, int16x8 or float32 FULLY_CONNECTED (its input's type decides)."""
    x, y, w, weights = weighted_operands(op, graph)
    batches, units, depth = _shape(op, x, y, w.shape)
    if x.dtype == "float32":
        return _plan_float(op, graph, x, y, weights, (batches, units, depth))
    assert w.quant is not None  # the weights were checked quantized above
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), units)
    prefix = f"l{op.index}"
    tables: tuple[Constant, Constant] | None
    if x.dtype == "int16":
        bias = bias_or_zeros(op, graph, 2, units, "int64")
        tables = (Constant(f"{prefix}_multiplier", mults), Constant(f"{prefix}_shift", shifts))
    else:
        bias = bias_or_zeros(op, graph, 2, units)
        # sum((x - zp) * w) = sum(x * w) - zp * sum(w): fold the offset into the bias.
        bias = (bias.astype(np.int64)
                - zero_point(x) * weights.astype(np.int64).sum(axis=1)).astype(np.int32)
        tables = ((Constant(f"{prefix}_multiplier", mults), Constant(f"{prefix}_shift", shifts))
                  if w.quant.per_channel else None)
    return FullyConnectedPlan(
        op=op, x=x, y=y, batches=batches, units=units, depth=depth, output_zp=zero_point(y),
        act=activation_range(op.options["activation"], scale(y), zero_point(y), y.dtype),
        weights=Constant(f"{prefix}_weights", weights.astype("int8")),
        bias=Constant(f"{prefix}_bias", bias), tables=tables,
        multiplier=int(mults[0]), shift=int(shifts[0]),
    )


def _plan_float(op: Operator, graph: Graph, x: Tensor, y: Tensor, w: np.ndarray,
                shape: tuple[int, int, int]) -> FullyConnectedPlan:
    batches, units, depth = shape
    bias = float_constant_or_zeros(op, graph, 2, "bias", units)
    prefix = f"l{op.index}"
    return FullyConnectedPlan(
        op=op, x=x, y=y, batches=batches, units=units, depth=depth, output_zp=0, act=(0, 0),
        weights=Constant(f"{prefix}_weights", w), bias=Constant(f"{prefix}_bias", bias),
        tables=None, multiplier=0, shift=0,
    )


NOTES = {"int8": "", "int16": "int16x8", "float32": "float32"}


def lower_fully_connected(op: Operator, graph: Graph, func_name: str) -> Step:
    """The portable schedule: one unit at a time, its sum in a scalar, in TFLite's order."""
    p = plan_fully_connected(op, graph)
    with kernel(func_name) as k:
        specs = [("input", (p.batches, p.depth), p.dtype),
                 ("weights", (p.units, p.depth), p.weights.dtype),
                 ("bias", (p.units,), p.bias.dtype)]
        if p.tables:
            specs += [("multiplier", (p.units,), "int32"), ("shift", (p.units,), "int32")]
        X, W, B, *tables, Y = buffer_args(*specs, ("output", (p.batches, p.units), p.dtype))
        acc = scalar("acc", p.accumulator)
        with loop("b", p.batches) as b, loop("o", p.units) as o:
            store(acc, p.initial(B[o]))
            with loop("d", p.depth) as d:
                store(acc, acc[0] + p.term(X[b, d], W[o, d]))
            p.emit_output(Y, (b, o), acc, 0, o, B, tables)
    return p.step(k.func, func_name, NOTES[p.dtype])
