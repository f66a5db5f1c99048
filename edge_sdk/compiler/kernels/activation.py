"""Element-wise int8 -> int8 operators: RELU, RELU6, RELU_N1_TO_1 and QUANTIZE (requantize).

``QuantizedReluX`` rescales from the input to the output quantization with a multiplier that
``ReluPrepare`` computes as a *float* division (``input_scale / output_scale``), then clamps to
the activation's range. ``Requantize`` (QUANTIZE int8 -> int8) divides in double.
"""

from __future__ import annotations

from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, i32, kernel, loop, scalar, store
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, f32, quantize_multiplier
from edge_sdk.frontend.tflite import Graph, Operator

_RELU_KIND = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}


def lower_rescale(op: Operator, graph: Graph, func_name: str) -> Step:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.size != y.size:
        raise refuse(op, "input and output sizes differ")
    if op.opcode == "QUANTIZE":
        m, s = quantize_multiplier(scale(x) / scale(y))
        lo, hi = -128, 127
    else:
        m, s = quantize_multiplier(f32(f32(scale(x)) / f32(scale(y))))
        lo, hi = activation_range(_RELU_KIND[op.opcode], scale(y), zero_point(y))

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), "int8"), ("output", (y.size,), "int8"))
        acc = scalar("acc")
        with loop("i", x.size) as i:
            store(acc, i32(X[i]) - zero_point(x))
            emit_multiply_by_quantized_multiplier(acc, m, s)
            store(Y, tirx.Cast("int8", clamp(acc[0] + zero_point(y), lo, hi)), i)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
    )
