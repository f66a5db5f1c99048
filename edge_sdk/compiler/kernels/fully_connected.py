"""FULLY_CONNECTED, int8 (``reference_integer_ops::FullyConnected``).

The input is flattened to ``[batches, depth]`` with ``depth`` the filter's second dimension.
Per-tensor weights fold the multiplier and shift into the code; per-channel weights read them
from tables, like the convolutions. Unlike the convolutions, TFLite requantizes FC outputs with a
single rounding step (see ``fixedpoint``).
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import (
    bias_or_zeros,
    constant_data,
    int8_tensor,
    refuse,
    scale,
    symmetric_weights,
    zero_point,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier_single_rounding as requantize,
)
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, i32, kernel, loop, scalar, store
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, per_channel_multipliers
from edge_sdk.frontend.tflite import Graph, Operator


def lower_fully_connected(op: Operator, graph: Graph, func_name: str) -> Step:
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
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), units)
    act_min, act_max = activation_range(op.options["activation"], scale(y), zero_point(y))
    out_offset = zero_point(y)
    prefix = f"l{op.index}"
    per_channel = w.quant.per_channel
    consts: list[Constant] = [
        Constant(f"{prefix}_weights", weights.astype("int8")),
        Constant(f"{prefix}_bias", bias),
    ]
    if per_channel:
        consts += [Constant(f"{prefix}_multiplier", mults), Constant(f"{prefix}_shift", shifts)]

    with kernel(func_name) as k:
        specs = [("input", (batches, depth), "int8"), ("weights", (units, depth), "int8"),
                 ("bias", (units,), "int32")]
        if per_channel:
            specs += [("multiplier", (units,), "int32"), ("shift", (units,), "int32")]
        X, W, B, *tables, Y = buffer_args(*specs, ("output", (batches, units), "int8"))
        acc = scalar("acc")
        with loop("b", batches) as b, loop("o", units) as o:
            store(acc, B[o])
            with loop("d", depth) as d:
                store(acc, acc[0] + i32(X[b, d]) * i32(W[o, d]))
            if per_channel:
                requantize(acc, tables[0][o], tables[1][o])
            else:
                requantize(acc, int(mults[0]), int(shifts[0]))
            store(Y, tirx.Cast("int8", clamp(acc[0] + out_offset, act_min, act_max)), b, o)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(y.index, writes=True)),
        macs=batches * units * depth,
    )
