"""MEAN, int8.

TFLite takes one of two reference paths. For a 4-D input averaged over H and W with
``keep_dims`` (global average pooling) it sums ``x - input_zp`` and requantizes the sum once,
with the element count folded into the multiplier: ``input_scale / (output_scale * count)``
(measured against ``BUILTIN_REF``; dividing after a separate requantization is 1 LSB off on a
quarter of the outputs). Other reductions take generic paths that we do
not implement yet; they are refused rather than approximated.
"""

from __future__ import annotations

from tvm import tirx

from edge_sdk.compiler.kernels.common import constant_data, int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    kernel,
    loop,
    scalar,
    store,
)
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.frontend.tflite import Graph, Operator


def lower_mean(op: Operator, graph: Graph, func_name: str) -> Step:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    axes = sorted(int(a) % max(len(x.shape), 1)
                  for a in constant_data(op, graph.tensor(op.inputs[1]), "axis").reshape(-1))
    if len(x.shape) != 4 or axes != [1, 2] or not op.options.get("keep_dims"):
        raise refuse(op, "only MEAN over axes [1, 2] of a 4-D tensor with keep_dims is supported")
    n, h, w, c = x.shape
    count = h * w
    m, s = quantize_multiplier(scale(x) / (scale(y) * count))

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", x.shape, "int8"), ("output", (n, c), "int8"))
        acc = scalar("acc")
        with loop("b", n) as b, loop("ch", c) as ch:
            store(acc, i32(0))
            with loop("iy", h) as iy, loop("ix", w) as ix:
                store(acc, acc[0] + i32(X[b, iy, ix, ch]) - zero_point(x))
            emit_multiply_by_quantized_multiplier(acc, m, s)
            store(Y, tirx.Cast("int8", clamp(acc[0] + zero_point(y), -128, 127)), b, ch)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
    )
