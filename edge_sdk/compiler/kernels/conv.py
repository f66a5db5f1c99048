"""CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel weights (NHWC).

Semantics of ``reference_integer_ops::ConvPerChannel`` / ``DepthwiseConvPerChannel``: taps that
fall in the padding are skipped (equivalent to padding with the input zero point), the int32
accumulator sums ``(x - input_zp) * w``, the bias is added, then each output channel is
requantized with its own multiplier and shift and clamped to the fused activation's range.
"""

from __future__ import annotations

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
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    in_range,
    kernel,
    loop,
    scalar,
    store,
    when,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import (
    activation_range,
    conv_geometry,
    per_channel_multipliers,
)
from edge_sdk.frontend.tflite import Graph, Operator


def lower_conv2d(op: Operator, graph: Graph, func_name: str) -> Step:
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    w = graph.tensor(op.inputs[1])
    symmetric_weights(op, w)
    weights = constant_data(op, w, "weights")
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise refuse(op, "only 4-D NHWC input and filter are supported")
    n, ih, iw, ic = x.shape
    if depthwise:
        _, kh, kw, oc = w.shape
        mult = op.options["depth_multiplier"] or oc // ic
        if oc != ic * mult:
            raise refuse(op, f"filter has {oc} channels, input {ic} x multiplier {mult}")
    else:
        oc, kh, kw, fic = w.shape
        if fic != ic:
            raise refuse(op, "grouped convolution (filter depth != input depth)")
    stride, dilation = op.options["stride"], op.options["dilation"]
    (oh, ow), (ph, pw) = conv_geometry(op.options["padding"], (ih, iw), (kh, kw), stride, dilation)
    if tuple(y.shape) != (n, oh, ow, oc):
        raise refuse(op, f"output shape {y.shape} does not match computed {(n, oh, ow, oc)}")

    bias = bias_or_zeros(op, graph, 2, oc)
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), oc)
    act_min, act_max = activation_range(op.options["activation"], scale(y), zero_point(y))
    in_offset, out_offset = -zero_point(x), zero_point(y)
    prefix = f"l{op.index}"
    consts = (
        Constant(f"{prefix}_weights", weights.astype("int8")),
        Constant(f"{prefix}_bias", bias),
        Constant(f"{prefix}_multiplier", mults),
        Constant(f"{prefix}_shift", shifts),
    )

    with kernel(func_name) as k:
        X, W, B, M, S, Y = buffer_args(
            ("input", x.shape, "int8"),
            ("weights", w.shape, "int8"),
            ("bias", (oc,), "int32"),
            ("multiplier", (oc,), "int32"),
            ("shift", (oc,), "int32"),
            ("output", y.shape, "int8"),
        )
        acc = scalar("acc")
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("oc", oc) as c:
            store(acc, i32(0))
            with loop("ky", kh) as ky, loop("kx", kw) as kx:
                iy = oy * stride[0] - ph + ky * dilation[0]
                ix = ox * stride[1] - pw + kx * dilation[1]
                with when(tirx.all(in_range(iy, ih), in_range(ix, iw))):
                    if depthwise:
                        ci = tirx.floordiv(c, mult)
                        store(acc, acc[0] + (i32(X[b, iy, ix, ci]) + in_offset)
                              * i32(W[0, ky, kx, c]))
                    else:
                        with loop("ic", ic) as ci:
                            store(acc, acc[0] + (i32(X[b, iy, ix, ci]) + in_offset)
                                  * i32(W[c, ky, kx, ci]))
            store(acc, acc[0] + B[c])
            emit_multiply_by_quantized_multiplier(acc, M[c], S[c])
            store(Y, tirx.Cast("int8", clamp(acc[0] + out_offset, act_min, act_max)), b, oy, ox, c)

    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(y.index, writes=True)), macs=macs,
    )
