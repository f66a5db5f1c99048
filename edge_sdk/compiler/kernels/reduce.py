"""MEAN, int8.

TFLite's reference kernel picks its route by the literal axis values, rank and ``keep_dims``.
For a 4-D input averaged over axes (1, 2) or (2, 1) with ``keep_dims`` (global average pooling)
it sums ``x - input_zp`` and requantizes the sum once, with the element count divided into the
multiplier in integers (:func:`mean_multiplier`). Other reductions (other axes, negative axis
values, no ``keep_dims``) take generic routes that we do not implement yet; they are refused
rather than approximated.
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


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """``reference_integer_ops::Mean``'s multiplier: ``input_scale / output_scale`` quantized,
    then divided by the element count in integers, keeping up to 32 more bits of precision:
    ``m' = (m << r) / count`` and ``shift' = shift - r`` with ``r = min(floor(log2(count)), 32,
    31 + shift)``. Quantizing ``input_scale / (output_scale * count)`` directly rounds the
    multiplier differently (measured: 519 of 25,600 outputs off by one for a 7x7x1280 mean)."""
    m, s = quantize_multiplier(input_scale / output_scale)
    r = max(min(count.bit_length() - 1, 32, 31 + s), 0)
    return (m << r) // count, s - r


def lower_mean(op: Operator, graph: Graph, func_name: str) -> Step:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    # The literal values, as TFLite compares them: (-3, -2) takes another route there.
    axes = sorted(int(a) for a in constant_data(op, graph.tensor(op.inputs[1]), "axis").ravel())
    if len(x.shape) != 4 or axes != [1, 2] or not op.options.get("keep_dims"):
        raise refuse(op, "only MEAN over axes [1, 2] of a 4-D tensor with keep_dims is supported")
    n, h, w, c = x.shape
    m, s = mean_multiplier(scale(x), scale(y), h * w)

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
