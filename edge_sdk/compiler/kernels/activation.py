"""Element-wise int8 -> int8 operators: RELU, RELU6, RELU_N1_TO_1, QUANTIZE (requantize), PRELU.

``QuantizedReluX`` rescales from the input to the output quantization with a multiplier that
``ReluPrepare`` computes as a *float* division (``input_scale / output_scale``), then clamps to
the activation's range. ``Requantize`` (QUANTIZE int8 -> int8) divides in double.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.common import (
    constant_data,
    int8_tensor,
    quantized_tensor,
    refuse,
    scale,
    zero_point,
)
from edge_sdk.compiler.kernels.elementwise import _broadcast_strides
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    kernel,
    loop,
    loop_nest,
    row_major_strides,
    scalar,
    store,
    strided_offset,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, f32, quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

_RELU_KIND = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}


def _requantizable(op: Operator, graph: Graph, index: int, role: str) -> Tensor:
    """int8/int16 activations; for QUANTIZE also uint8 (a model's uint8 input or output, as
    microWakeWord's streaming models have) and, as input, a quantized int32 tensor."""
    t = graph.tensor(index)
    if op.opcode == "QUANTIZE" and (t.dtype == "uint8" or (role == "input" and t.dtype == "int32")
                                    ) and t.quant is not None and not t.quant.per_channel:
        return t
    return quantized_tensor(op, graph, index, role)


def lower_rescale(op: Operator, graph: Graph, func_name: str) -> Step:
    """QUANTIZE between integer types (``Requantize``: int8/int16/int32 in, int8/int16 out) and
    the RELUs."""
    x = _requantizable(op, graph, op.inputs[0], "input")
    out = graph.tensor(op.outputs[0])
    wide = (op.opcode == "QUANTIZE" and out.dtype == "int32" and x.dtype == "int16"
            and out.quant is not None and not out.quant.per_channel)
    # int16 -> int32 (SEANet-style int16 models widen before a 32-bit ADD; LiteRT has no int8
    # -> int32): TFLite's Requantize with the int32 range as the clamp.
    y = out if wide else _requantizable(op, graph, op.outputs[0], "output")
    if x.size != y.size:
        raise refuse(op, "input and output sizes differ")
    if op.opcode == "QUANTIZE":
        m, s = quantize_multiplier(scale(x) / scale(y))
        lo, hi = ((-(2**31), 2**31 - 1) if wide else (0, 255) if y.dtype == "uint8"
                  else activation_range("NONE", scale(y), zero_point(y), y.dtype))
    else:
        if x.dtype != y.dtype:
            raise refuse(op, f"input is {x.dtype}, output {y.dtype}")
        m, s = quantize_multiplier(f32(f32(scale(x)) / f32(scale(y))))
        lo, hi = activation_range(_RELU_KIND[op.opcode], scale(y), zero_point(y), y.dtype)

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), x.dtype), ("output", (y.size,), y.dtype))
        acc = scalar("acc")
        with loop("i", x.size) as i:
            store(acc, i32(X[i]) - zero_point(x))
            emit_multiply_by_quantized_multiplier(acc, m, s)
            store(Y, tirx.Cast(y.dtype, clamp(acc[0] + zero_point(y), lo, hi)), i)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
    )


def prelu_plan(op: Operator, graph: Graph) -> tuple:
    """PRELU's ``Prepare``, for the CPU and GPU kernels: (input, output, the alpha constant
    with its zero point removed (int16), alpha's strides over the output, the (multiplier,
    shift) of the positive side, then of the negative side)."""
    x = int8_tensor(op, graph, op.inputs[0], "input")
    alpha = int8_tensor(op, graph, op.inputs[1], "alpha")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    data = constant_data(op, alpha, "alpha")
    if tuple(x.shape) != tuple(y.shape):
        raise refuse(op, "input and output shapes differ")
    try:
        alpha_strides = _broadcast_strides(alpha.shape, tuple(y.shape))
    except ValueError as err:
        raise refuse(op, str(err)) from None
    positive = quantize_multiplier(f32(f32(scale(x)) / f32(scale(y))))
    negative = quantize_multiplier(f32(f32(f32(scale(x)) * f32(scale(alpha))) / f32(scale(y))))
    alpha_values = Constant(f"l{op.index}_alpha",
                            (data.astype(np.int32) - zero_point(alpha)).astype(np.int16))
    return x, y, alpha_values, alpha_strides, positive, negative


def lower_prelu(op: Operator, graph: Graph, func_name: str) -> Step:
    """PRELU, int8 (``reference_ops::BroadcastPrelu4DSlow``): ``x`` rescaled by
    ``input_scale / output_scale`` where ``x - zp >= 0``, else ``(x - zp) * (alpha - alpha_zp)``
    by ``input_scale * alpha_scale / output_scale`` (``PreluPrepare`` forms both in float).
    ``alpha`` is a constant broadcast over the input (typically one value per channel)."""
    x, y, alpha_values, alpha_strides, (m1, s1), (m2, s2) = prelu_plan(op, graph)
    shape = tuple(y.shape) or (1,)
    with kernel(func_name) as k:
        X, Al, Y = buffer_args(("input", (x.size,), "int8"),
                               ("alpha", (alpha_values.array.size,), "int16"),
                               ("output", (y.size,), "int8"))
        acc = scalar("acc")
        with loop_nest(shape) as idx:
            flat = strided_offset(idx, row_major_strides(shape))
            store(acc, i32(X[flat]) - zero_point(x))
            with T.If(acc[0] >= 0):
                with T.Then():
                    emit_multiply_by_quantized_multiplier(acc, m1, s1)
                with T.Else():
                    store(acc, acc[0] * i32(Al[strided_offset(idx, alpha_strides)]))
                    emit_multiply_by_quantized_multiplier(acc, m2, s2)
            store(Y, tirx.Cast("int8", clamp(acc[0] + zero_point(y), -128, 127)), flat)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), alpha_values, TensorArg(y.index, writes=True)), macs=y.size,
        notes="alpha stored with its zero point removed",
    )


def lower_leaky_relu_int16(op: Operator, graph: Graph, func_name: str) -> Step:
    """LEAKY_RELU, int16 (``QuantizeLeakyRelu<int16_t>``): the int8 version's arithmetic per
    element (a 65,536-entry table would not pay for itself)."""
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if x.size != y.size:
        raise refuse(op, "input and output sizes differ")
    alpha = f32(op.options.get("alpha", 0.2))
    m1, s1 = quantize_multiplier(f32(f32(scale(x)) / f32(scale(y))))
    m2, s2 = quantize_multiplier(f32(f32(f32(scale(x)) * alpha) / f32(scale(y))))
    lo, hi = activation_range("NONE", scale(y), zero_point(y), y.dtype)
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), x.dtype), ("output", (y.size,), y.dtype))
        acc = scalar("acc")
        with loop("i", x.size) as i:
            store(acc, i32(X[i]) - zero_point(x))
            with T.If(acc[0] >= 0):
                with T.Then():
                    emit_multiply_by_quantized_multiplier(acc, m1, s1)
                with T.Else():
                    emit_multiply_by_quantized_multiplier(acc, m2, s2)
            store(Y, tirx.Cast(y.dtype, clamp(acc[0] + zero_point(y), lo, hi)), i)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
    )
