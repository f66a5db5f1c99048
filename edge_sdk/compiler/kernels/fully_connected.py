"""FULLY_CONNECTED, int8 and int16x8 (``reference_integer_ops::FullyConnected``).

int16x8 (int16 activations with zero point 0, int8 weights, int64 or int32 bias) accumulates in
int64 and requantizes, like int8 FC in LiteRT, with one rounding and the full 31-bit multiplier
(measured: 0 of 6,300 outputs differ; the int64 form with a 16-bit multiplier, which the int16
convolutions use, gets 7 wrong). The product is formed in int64, exact while the accumulator
stays below 2^32 in magnitude (int16 x int8 over up to 1024 full-scale terms).

The input is flattened to ``[batches, depth]`` with ``depth`` the filter's second dimension.
Per-tensor weights fold the multiplier and shift into the code; per-channel weights read them
from tables, like the convolutions. Unlike the convolutions, TFLite requantizes FC outputs with a
single rounding step (see ``fixedpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import (
    bias_or_zeros,
    constant_data,
    int8_tensor,
    quantized_tensor,
    refuse,
    scale,
    symmetric_weights,
    zero_point,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier_single_rounding as requantize,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    multiply_by_quantized_multiplier_single_rounding,
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
from edge_sdk.compiler.quantization import activation_range, per_channel_multipliers
from edge_sdk.ir import Graph, Operator, Tensor


@dataclass(frozen=True)
class FullyConnectedPlan:
    """``Prepare`` for one int8 FULLY_CONNECTED, shared by the C and GPU kernel builders."""

    op: Operator
    x: Tensor
    y: Tensor
    batches: int
    units: int
    depth: int
    output_zp: int
    act: tuple[int, int]
    weights: Constant
    bias: Constant  # the input offset already folded in
    # Per-channel: (multiplier, shift) tables; per-tensor: the one pair, folded into the code.
    tables: tuple[Constant, Constant] | None
    multiplier: int
    shift: int

    @property
    def constants(self) -> tuple[Constant, ...]:
        return (self.weights, self.bias, *(self.tables or ()))

    def step(self, func: tirx.PrimFunc, func_name: str, notes: str = "",
             constants: tuple[Constant, ...] | None = None) -> Step:
        """The lowered layer; ``constants``: the kernel's tables when not the plan's own (the
        GPU's word-wise kernel takes the weights as int32 words)."""
        middle = self.constants if constants is None else constants
        return Step(
            op_index=self.op.index, opcode=self.op.opcode, layer=self.y.name, kind="kernel",
            inputs=(self.x.index,), outputs=(self.y.index,), func=func, func_name=func_name,
            args=(TensorArg(self.x.index), *middle, TensorArg(self.y.index, writes=True)),
            macs=self.batches * self.units * self.depth, notes=notes,
        )


def plan_fully_connected(op: Operator, graph: Graph) -> FullyConnectedPlan:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    w = graph.tensor(op.inputs[1])
    symmetric_weights(op, w)
    weights = constant_data(op, w, "weights")
    if op.options.get("weights_format", 0) != 0 or len(w.shape) != 2:
        raise refuse(op, "only the default 2-D weights format is supported")
    units, depth = w.shape
    if x.size % depth:
        raise refuse(op, f"input size {x.size} is not a multiple of the filter depth {depth}")
    batches = x.size // depth
    if y.size != batches * units:
        raise refuse(op, f"output shape {y.shape} does not match {batches}x{units}")

    bias = bias_or_zeros(op, graph, 2, units)
    # sum((x - zp) * w) = sum(x * w) - zp * sum(w): fold the offset into the bias.
    bias = (bias.astype(np.int64)
            - zero_point(x) * weights.astype(np.int64).sum(axis=1)).astype(np.int32)
    assert w.quant is not None  # the weights were checked quantized above
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), units)
    prefix = f"l{op.index}"
    tables = ((Constant(f"{prefix}_multiplier", mults), Constant(f"{prefix}_shift", shifts))
              if w.quant.per_channel else None)
    return FullyConnectedPlan(
        op=op, x=x, y=y, batches=batches, units=units, depth=depth, output_zp=zero_point(y),
        act=activation_range(op.options["activation"], scale(y), zero_point(y)),
        weights=Constant(f"{prefix}_weights", weights.astype("int8")),
        bias=Constant(f"{prefix}_bias", bias), tables=tables,
        multiplier=int(mults[0]), shift=int(shifts[0]),
    )


def lower_fully_connected_int16(op: Operator, graph: Graph, func_name: str) -> Step:
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if y.dtype != "int16":
        raise refuse(op, f"int16 input with {y.dtype} output")
    w = graph.tensor(op.inputs[1])
    symmetric_weights(op, w)
    weights = constant_data(op, w, "weights")
    if op.options.get("weights_format", 0) != 0 or len(w.shape) != 2:
        raise refuse(op, "only the default 2-D weights format is supported")
    units, depth = w.shape
    if x.size % depth or y.size != (x.size // depth) * units:
        raise refuse(op, f"input {list(x.shape)} and output {list(y.shape)} do not match "
                         f"{units}x{depth} weights")
    batches = x.size // depth
    bias = bias_or_zeros(op, graph, 2, units, "int64")
    assert w.quant is not None  # the weights were checked quantized above
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), units)
    act = activation_range(op.options["activation"], scale(y), 0, "int16")
    prefix = f"l{op.index}"
    consts = (Constant(f"{prefix}_weights", weights.astype("int8")),
              Constant(f"{prefix}_bias", bias), Constant(f"{prefix}_multiplier", mults),
              Constant(f"{prefix}_shift", shifts))
    with kernel(func_name) as k:
        X, W, B, M, S, Y = buffer_args(
            ("input", (batches, depth), "int16"), ("weights", (units, depth), "int8"),
            ("bias", (units,), "int64"), ("multiplier", (units,), "int32"),
            ("shift", (units,), "int32"), ("output", (batches, units), "int16"))
        acc = scalar("acc", "int64")
        with loop("b", batches) as b, loop("o", units) as o:
            store(acc, i64(0))
            with loop("d", depth) as d:
                store(acc, acc[0] + i64(X[b, d]) * i64(W[o, d]))
            store(acc, acc[0] + B[o])  # TFLite adds the bias after the sum
            result = multiply_by_quantized_multiplier_single_rounding(acc[0], M[o], S[o])
            store(Y, tirx.Cast("int16", clamp(result, *act)), b, o)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(y.index, writes=True)),
        macs=batches * units * depth, notes="int16x8",
    )


def lower_fully_connected(op: Operator, graph: Graph, func_name: str) -> Step:
    if graph.tensor(op.inputs[0]).dtype == "int16":
        return lower_fully_connected_int16(op, graph, func_name)
    p = plan_fully_connected(op, graph)
    batches, units, depth = p.batches, p.units, p.depth
    act_min, act_max = p.act
    with kernel(func_name) as k:
        specs = [("input", (batches, depth), "int8"), ("weights", (units, depth), "int8"),
                 ("bias", (units,), "int32")]
        if p.tables:
            specs += [("multiplier", (units,), "int32"), ("shift", (units,), "int32")]
        X, W, B, *tables, Y = buffer_args(*specs, ("output", (batches, units), "int8"))
        acc = scalar("acc")
        with loop("b", batches) as b, loop("o", units) as o:
            store(acc, B[o])
            with loop("d", depth) as d:
                store(acc, acc[0] + i32(X[b, d]) * i32(W[o, d]))
            if tables:
                requantize(acc, tables[0][o], tables[1][o])
            else:
                requantize(acc, p.multiplier, p.shift)
            store(Y, tirx.Cast("int8", clamp(acc[0] + p.output_zp, act_min, act_max)), b, o)
    return p.step(k.func, func_name)
