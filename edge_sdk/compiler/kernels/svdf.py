"""SVDF (a fully connected layer factored into a feature and a time filter, with memory):
float32 and int8 (``reference_ops::EvalFloatSVDF``/``EvalIntegerSVDF``).

Per inference: the state, ``(batch, filters, memory)``, shifts one step to the left; each
filter's newest entry becomes its feature dot product with the input; each filter's time dot
product runs over its memory; the filters of a unit (``rank`` of them) add up; bias and the
fused activation follow. The state is a variable tensor, kept in the arena between inferences
like an LSTM's.

int8: int8 input and feature weights, int16 state and time weights (state zero point 0), int32
bias. The feature product (of ``x - input_zp``) is requantized into the int16 state by
``input_scale * feature_scale / state_scale``; the time products sum in int32 and are
requantized to the output by ``state_scale * time_scale / output_scale`` (both products in
float32, as ``Prepare``). TFLite's integer kernel clamps to the int8 range and ignores the fused
activation; so do we.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    float_clamp,
    i32,
    kernel,
    loop,
    scalar,
    store,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import f32 as float32
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

_FLOAT_CLAMPS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0),
                 "RELU_N1_TO_1": (-1.0, 1.0)}


def lower_svdf(op: Operator, graph: Graph, func_name: str) -> Step:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    w_feature, w_time = graph.tensor(op.inputs[1]), graph.tensor(op.inputs[2])
    bias = graph.tensor(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    state = graph.tensor(op.inputs[4])
    if not state.is_variable:
        raise refuse(op, f"state '{state.name}' is not a variable tensor")
    for t, role in ((w_feature, "feature weights"), (w_time, "time weights"), (bias, "bias")):
        if t is not None and t.data is None:
            raise refuse(op, f"{role} '{t.name}' are not constants")
    rank = int(op.options.get("rank", 1))
    if len(x.shape) != 2 or len(w_feature.shape) != 2 or len(w_time.shape) != 2:
        raise refuse(op, "input and weights must be 2-D")
    batch, n_input = x.shape
    filters, memory = w_time.shape
    if rank < 1 or filters % rank or w_feature.shape != (filters, n_input):
        raise refuse(op, f"feature weights {list(w_feature.shape)}, time weights "
                         f"{list(w_time.shape)} and rank {rank} do not fit together")
    units = filters // rank
    if state.size != batch * filters * memory or y.size != batch * units:
        raise refuse(op, "state or output size does not match the weights")
    if x.dtype == "float32":
        return _svdf(op, x, y, w_feature, w_time, bias, state, rank, func_name, None)
    if x.dtype != "int8":
        raise refuse(op, f"{x.dtype} input (int8 and float32 are supported)")
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if (w_feature.dtype, w_time.dtype, state.dtype) != ("int8", "int16", "int16") or (
            bias is not None and bias.dtype != "int32") or zero_point(state) != 0:
        raise refuse(op, "int8 SVDF needs int8 feature weights, int16 time weights and state "
                         "(zero point 0) and an int32 bias")
    scale_1 = quantize_multiplier(
        float32(float32(scale(x) * scale(w_feature)) / scale(state)))
    scale_2 = quantize_multiplier(
        float32(float32(scale(state) * scale(w_time)) / scale(y)))
    return _svdf(op, x, y, w_feature, w_time, bias, state, rank, func_name, (scale_1, scale_2))


def _svdf(op: Operator, x: Tensor, y: Tensor, w_feature: Tensor, w_time: Tensor,
          bias: Tensor | None, state: Tensor, rank: int, func_name: str,
          requant: tuple[tuple[int, int], tuple[int, int]] | None) -> Step:
    integer = requant is not None
    batch, n_input = x.shape
    filters, memory = w_time.shape
    units = filters // rank
    acc_dtype = "int32" if integer else "float32"
    bias_data = (np.asarray(bias.data).reshape(-1) if bias is not None
                 else np.zeros(units, np.int32 if integer else np.float32))
    consts = (Constant(f"l{op.index}_weights_feature", np.asarray(w_feature.data)),
              Constant(f"l{op.index}_weights_time", np.asarray(w_time.data)),
              Constant(f"l{op.index}_bias", bias_data.astype(acc_dtype)))
    with kernel(func_name) as k:
        X, WF, WT, B, S, Y = buffer_args(
            ("input", (batch, n_input), x.dtype), ("weights_feature", (filters, n_input),
                                                   w_feature.dtype),
            ("weights_time", (filters, memory), w_time.dtype), ("bias", (units,), acc_dtype),
            ("state", (batch, filters, memory), state.dtype), ("output", (batch, units), y.dtype))
        acc, total = scalar("acc", acc_dtype), scalar("unit_sum", acc_dtype)
        zero = tirx.const(0, acc_dtype)

        def widen(v: Any) -> Any:
            return i32(v) if integer else v

        with loop("b", batch) as b:
            # The memory moves one step left; the newest slot is written below.
            with loop("f", filters) as f, loop("m", memory - 1) as m:
                store(S, S[b, f, m + 1], b, f, m)
            with loop("f", filters) as f:
                store(acc, zero)
                with loop("i", n_input) as i:
                    inp = i32(X[b, i]) - i32(zero_point(x)) if integer else X[b, i]
                    store(acc, acc[0] + widen(WF[f, i]) * inp)
                if requant is not None:
                    emit_multiply_by_quantized_multiplier(acc, *requant[0])
                    store(S, tirx.Cast("int16", clamp(acc[0], -32768, 32767)), b, f, memory - 1)
                else:
                    store(S, acc[0], b, f, memory - 1)
            with loop("u", units) as u:
                store(total, zero)
                with loop("r", rank) as r:
                    store(acc, zero)
                    with loop("m", memory) as m:
                        f_index = u * rank + r
                        store(acc, acc[0] + widen(WT[f_index, m]) * widen(S[b, f_index, m]))
                    store(total, total[0] + acc[0])
                store(total, total[0] + B[u])
                store(Y, _output(op, total, y, requant), b, u)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index, state.index), outputs=(y.index, state.index), func=k.func,
        func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(state.index, writes=True),
              TensorArg(y.index, writes=True)),
        macs=batch * filters * (n_input + memory),
        notes=f"rank {rank}, memory {memory}; state kept in the arena between inferences",
    )


def _output(op: Operator, total: tirx.Buffer, y: Tensor, requant) -> Any:
    if requant is not None:
        emit_multiply_by_quantized_multiplier(total, *requant[1])
        return tirx.Cast("int8", clamp(total[0] + i32(zero_point(y)), -128, 127))
    activation = op.options.get("activation", "NONE")
    if activation not in _FLOAT_CLAMPS:
        raise refuse(op, f"fused activation {activation}")
    lo, hi = _FLOAT_CLAMPS[activation]
    return float_clamp(total[0], lo, hi)
