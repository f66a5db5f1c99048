"""TRANSPOSE_CONV, int8 and int16x8 (``reference_integer_ops::TransposeConv``), NHWC.

TFLite scatters: each input pixel adds ``(x - zp) * w`` into every output it reaches, in an
int32 (int16x8: int64) scratch the size of the output, then requantizes each output per channel.
Integer sums do not depend on their order, so we gather instead: each output sums the input
pixels that reach it (``oy = iy * stride - pad + ky``, so ``iy = (oy + pad - ky) / stride``
when that divides) and is requantized at once. Same integers, no scratch, one pass.

The padding is ``ComputePaddingHeightWidth`` applied to the *output* size (the forward
convolution this one transposes). The output-shape operand is not read: the output tensor's
static shape is what we compile for (TFLite checks the two agree).
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.common import (
    bias_or_zeros,
    constant_data,
    quantized_tensor,
    refuse,
    scale,
    symmetric_weights,
    zero_point,
)
from edge_sdk.compiler.kernels.conv import store_requantized
from edge_sdk.compiler.kernels.fixedpoint import reduced_multiplier
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    i32,
    i64,
    in_range,
    kernel,
    loop,
    scalar,
    store,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, per_channel_multipliers, same_padding
from edge_sdk.ir import Graph, Operator


def lower_transpose_conv(op: Operator, graph: Graph, func_name: str) -> Step:
    x = quantized_tensor(op, graph, op.inputs[2], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if x.dtype != y.dtype:
        raise refuse(op, f"input is {x.dtype}, output {y.dtype}")
    wide = x.dtype == "int16"
    w = graph.tensor(op.inputs[1])
    symmetric_weights(op, w)
    weights = constant_data(op, w, "weights")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise refuse(op, "only 4-D NHWC input, filter and output are supported")
    n, ih, iw, ic = x.shape
    oc, kh, kw, fic = w.shape
    _, oh, ow, yc = y.shape
    if fic != ic or yc != oc or y.shape[0] != n:
        raise refuse(op, f"filter {w.shape} does not fit input {x.shape} and output {y.shape}")
    (sy, sx) = op.options["stride"]
    if op.options["padding"] == "SAME":
        ph, pw = same_padding(oh, kh, sy, 1)[1], same_padding(ow, kw, sx, 1)[1]
    else:
        ph = pw = 0
    bias = bias_or_zeros(op, graph, 3, oc, "int64" if wide else "int32")
    assert w.quant is not None  # the weights were checked quantized above
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), oc)
    if wide:
        mults = np.array([reduced_multiplier(int(m)) for m in mults], dtype=np.int32)
    act_min, act_max = activation_range(op.options.get("activation", "NONE"), scale(y),
                                        zero_point(y), y.dtype)
    prefix = f"l{op.index}"
    consts = (Constant(f"{prefix}_weights", weights.astype("int8")),
              Constant(f"{prefix}_bias", bias),
              Constant(f"{prefix}_multiplier", mults), Constant(f"{prefix}_shift", shifts))
    in_offset = -zero_point(x)
    wrap = i64 if wide else i32

    with kernel(func_name) as k:
        X, W, B, M, S, Y = buffer_args(
            ("input", x.shape, x.dtype), ("weights", w.shape, "int8"),
            ("bias", (oc,), str(bias.dtype)),
            ("multiplier", (oc,), "int32"), ("shift", (oc,), "int32"),
            ("output", y.shape, y.dtype))
        acc = scalar("acc", "int64" if wide else "int32")
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("oc", oc) as c:
            store(acc, wrap(B[c]))
            with loop("ky", kh) as ky, loop("kx", kw) as kx:
                ty, tx = oy + ph - ky, ox + pw - kx  # = input pixel * stride, when it divides
                iy, ix = tirx.floordiv(ty, sy), tirx.floordiv(tx, sx)
                reaches = tirx.all(tirx.floormod(ty, sy) == 0, tirx.floormod(tx, sx) == 0,
                                   ty >= 0, tx >= 0, in_range(iy, ih), in_range(ix, iw))
                with T.If(reaches), T.Then(), loop("ic", ic) as ci:
                    store(acc, acc[0] + wrap((i32(X[b, iy, ix, ci]) + in_offset)
                                             * i32(W[c, ky, kx, ci])))
            store_requantized(Y, acc, M[c], S[c], (act_min, act_max), zero_point(y), wide,
                              b, oy, ox, c)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(y.index, writes=True)),
        macs=n * ih * iw * ic * kh * kw * oc,
        notes="gathered per output (TFLite scatters into a scratch): same integers, no scratch",
    )
