"""Float32 kernels, for float models (Cortex-A and cores with an FPU).

Same loop nests and accumulation order as TFLite's reference float kernels (sum over
filter_y, filter_x, in_channel; bias after the sum; then the fused activation's clamp), so the
results agree with LiteRT to rounding (on the MLPerf Tiny float models: exactly). Hybrid models
(int8 weights in float layers) are refused, see ``_constant``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import (
    constant_data,
    quantized_tensor,
    refuse,
    symmetric_weights,
)
from edge_sdk.compiler.kernels.elementwise import _broadcast_strides
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    f32,
    float_clamp,
    i32,
    in_range,
    kernel,
    loop,
    loop_nest,
    output_nest,
    row_major_strides,
    scalar,
    store,
    strided_offset,
    thread_row_count,
    when,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import conv_geometry, same_padding
from edge_sdk.ir import Graph, Operator, Tensor

_CLAMPS: dict[str, tuple[float | None, float | None]] = {
    "NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def _activation(op: Operator, value):
    activation = op.options.get("activation", "NONE")
    if activation not in _CLAMPS:
        raise refuse(op, f"fused activation {activation}")
    return float_clamp(value, *_CLAMPS[activation])


def _float_tensor(op: Operator, graph: Graph, index: int, role: str) -> Tensor:
    t = graph.tensor(index)
    if t.dtype != "float32":
        raise refuse(op, f"{role} '{t.name}' is {t.dtype} in a float operator")
    return t


def _constant(op: Operator, t: Tensor, role: str) -> np.ndarray:
    """A float32 constant.

    Hybrid (dynamic-range quantized) layers — int8 weights, float activations — are refused:
    LiteRT quantizes their activations at run time, so a float evaluation would disagree with it
    by far more than rounding.
    """
    if t.data is None:
        raise refuse(op, f"{role} '{t.name}' is not a constant")
    if t.dtype != "float32":
        raise refuse(op, f"{role} '{t.name}' is {t.dtype} in a float layer (a hybrid, "
                         "dynamic-range quantized model); use its full-int8 version or "
                         "`edge-sdk quantize` it")
    return t.data.astype(np.float32)


def float_constant_or_zeros(op: Operator, graph: Graph, position: int, role: str,
                            size: int) -> np.ndarray:
    """A float32 constant input (hybrid int8 ones refused by ``_constant``), or zeros where
    the operator has none (an optional bias)."""
    if len(op.inputs) > position and op.inputs[position] >= 0:
        return _constant(op, graph.tensor(op.inputs[position]), role).reshape(-1)
    return np.zeros(size, np.float32)


def weighted_operands(op: Operator, graph: Graph) -> tuple[Tensor, Tensor, Tensor, np.ndarray]:
    """Input, output, weights tensor and weights of a convolution or fully connected layer,
    checked once for both: float32 layers take float32 constants and a fused activation we
    can apply; quantized ones an output of the input's type and symmetric int8 weights."""
    w = graph.tensor(op.inputs[1])
    if graph.tensor(op.inputs[0]).dtype == "float32":
        x = _float_tensor(op, graph, op.inputs[0], "input")
        y = _float_tensor(op, graph, op.outputs[0], "output")
        _activation(op, f32(0.0))  # refuse an activation we cannot apply now
        return x, y, w, _constant(op, w, "weights")
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if x.dtype != y.dtype:
        raise refuse(op, f"input is {x.dtype}, output {y.dtype}")
    symmetric_weights(op, w)
    return x, y, w, constant_data(op, w, "weights")


def _step(op, inputs, y, func, func_name, consts=(), macs=0) -> Step:
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=tuple(t.index for t in inputs), outputs=(y.index,), func=func,
        func_name=func_name,
        args=(*(TensorArg(t.index) for t in inputs), *consts, TensorArg(y.index, writes=True)),
        macs=macs, notes="float32",
    )


def lower_pool(op: Operator, graph: Graph, func_name: str) -> Step:
    is_avg = op.opcode == "AVERAGE_POOL_2D"
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    n, ih, iw, c = x.shape
    fh, fw = op.options["filter"]
    stride = op.options["stride"]
    (oh, ow), (ph, pw) = conv_geometry(op.options["padding"], (ih, iw), (fh, fw), stride)
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", x.shape, "float32"), ("output", y.shape, "float32"))
        acc = scalar("acc", "float32")
        count = scalar("count")
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("ch", c) as ch:
            store(acc, f32(0.0) if is_avg else tirx.min_value("float32"))
            store(count, i32(0))
            with loop("fy", fh) as fy, loop("fx", fw) as fx:
                iy, ix = oy * stride[0] - ph + fy, ox * stride[1] - pw + fx
                with when(tirx.all(in_range(iy, ih), in_range(ix, iw))):
                    v = X[b, iy, ix, ch]
                    store(acc, acc[0] + v if is_avg else tirx.max(acc[0], v))
                    store(count, count[0] + 1)
            value = acc[0] / f32(count[0]) if is_avg else acc[0]
            store(Y, _activation(op, value), b, oy, ox, ch)
    return _step(op, [x], y, k.func, func_name, macs=n * oh * ow * c * fh * fw)


_BINARY = {
    "ADD": lambda a, b: a + b, "SUB": lambda a, b: a - b, "MUL": lambda a, b: a * b,
    "DIV": lambda a, b: a / b, "MAXIMUM": tirx.max, "MINIMUM": tirx.min,
    "SQUARED_DIFFERENCE": lambda a, b: (a - b) * (a - b),
}


def lower_binary(op: Operator, graph: Graph, func_name: str, threads: bool = False) -> Step:
    """A float binary operator with numpy broadcasting. ``threads``: as :func:`lower_unary`."""
    a = _float_tensor(op, graph, op.inputs[0], "first input")
    b = _float_tensor(op, graph, op.inputs[1], "second input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    consts = [t for t in (a, b) if t.is_constant]
    out_shape = tuple(y.shape) or (1,)
    sa, sb = _broadcast_strides(a.shape, out_shape), _broadcast_strides(b.shape, out_shape)
    args_in = [t for t in (a, b) if not t.is_constant]
    with kernel(func_name) as k:
        A, B, Y, *span = buffer_args(
            *[(f"input{i}", (t.size,), "float32") for i, t in enumerate((a, b))],
            ("output", (y.size,), "float32"), rows=threads)
        with output_nest(out_shape, span) as idx:
            va, vb = A[strided_offset(idx, sa)], B[strided_offset(idx, sb)]
            value = _BINARY[op.opcode](va, vb)
            store(Y, _activation(op, value), strided_offset(idx, row_major_strides(out_shape)))
    tables = {t.index: Constant(f"l{op.index}_operand{t.index}", _constant(op, t, "operand"))
              for t in consts}
    args = tuple(tables[t.index] if t.is_constant else TensorArg(t.index) for t in (a, b))
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=tuple(t.index for t in args_in), outputs=(y.index,), func=k.func,
                func_name=func_name, args=(*args, TensorArg(y.index, writes=True)),
                macs=y.size, notes="float32 cpu: rows over threads" if threads else "float32",
                row_phases=(thread_row_count(out_shape),) if threads else ())


def _unary_params(op: Operator, vectorized: bool = False) -> list[float]:
    """Float constants of a unary operator, passed in a table (C cannot spell every float);
    ``vectorized``: with :data:`EXP_CONSTANTS` after them where its value needs ``exp``."""
    if vectorized and op.opcode == "LOGISTIC":
        return [*_unary_params(op), *EXP_CONSTANTS]
    if op.opcode == "LEAKY_RELU":
        return [op.options.get("alpha", 0.2)]
    if op.opcode == "GELU":  # reference_ops::Gelu's constants, rounded to float32
        return [math.sqrt(2 / math.pi), 0.044715, -math.sqrt(0.5)]
    return []


# exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln(2) / 2: ln 2 in two parts (the first
# exact in float32, so n * ln2_high has no rounding error for |n| <= 2^7), and exp(r) by the
# minimax polynomial of Cephes' expf (Moshier, 1984), within 1-2 ulp of the C library's. The
# input is clamped first so that 2^n stays a normal float32 built from its exponent bits.
# They travel in the kernel's constant table (C cannot spell every float; see ``f32``):
# low, high, log2(e), ln2_high, ln2_low, then the polynomial's coefficients.
EXP_CONSTANTS = (-87.3, 88.3, 1.4426950408889634, 0.693359375, -2.12194440e-4,
                 1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                 1.6666665459e-1, 5.0000001201e-1)


def vector_exp(x, c):
    """``exp(x)`` in float32 arithmetic only (no call), so that LLVM vectorizes the loop
    around it; the C library's ``expf`` is a call per value. ``c(k)``: the k-th value of
    :data:`EXP_CONSTANTS`."""
    x = tirx.min(tirx.max(x, c(0)), c(1))
    n = tirx.floor(x * c(2) + tirx.FloatImm("float32", 0.5))  # 0.5 prints exactly
    r = x - n * c(3) - n * c(4)
    poly = c(5)
    for k in range(6, len(EXP_CONSTANTS)):
        poly = poly * r + c(k)
    scale = tirx.reinterpret("float32", tirx.shift_left(tirx.Cast("int32", n) + 127, 23))
    return (poly * r * r + r + f32(1.0)) * scale


def unary_value(op: Operator, v, p, intrinsics: bool = False, vectorized: bool = False):
    """The float unary operator's value at ``v`` (``p``: its parameter table). ``intrinsics``:
    TVM's math intrinsics (each backend spells them its own way: OpenCL C has no ``expf``)
    instead of the C library's float functions by name; None where the operator needs a
    function TVM has no intrinsic for (ELU's expm1, GELU's erfc). ``vectorized``: LOGISTIC's
    exponential by :func:`vector_exp` (the Linux CPU schedule, where vectors pay), its
    constants after the operator's own in ``p`` (see :func:`_unary_params`)."""
    def call(cname: str, intrinsic, x):
        if vectorized and cname == "expf":  # its constants follow the operator's own
            return vector_exp(x, lambda k: p[len(_unary_params(op)) + k])
        return intrinsic(x) if intrinsics else tirx.call_pure_extern("float32", cname, x)

    if op.opcode in ("RELU", "RELU6", "RELU_N1_TO_1"):
        return float_clamp(v, *_CLAMPS[op.opcode])
    if op.opcode == "LEAKY_RELU":  # reference_ops::LeakyRelu
        return tirx.Select(v > f32(0.0), v, v * p[0])
    if op.opcode == "ABS":
        return call("fabsf", tirx.abs, v)
    if op.opcode == "RSQRT":
        return f32(1.0) / call("sqrtf", tirx.sqrt, v)
    if op.opcode == "LOG":  # reference_ops: std::log (audio front ends' log-mel)
        return call("logf", tirx.log, v)
    if op.opcode == "LOGISTIC":
        return f32(1.0) / (f32(1.0) + call("expf", tirx.exp, f32(0.0) - v))
    if op.opcode == "TANH":
        return call("tanhf", tirx.tanh, v)
    if op.opcode == "HARD_SWISH":  # x * relu6(x + 3) / 6
        return v * tirx.min(tirx.max(v + f32(3.0), f32(0.0)), f32(6.0)) / f32(6.0)
    if intrinsics:
        return None
    if op.opcode == "ELU":  # x < 0 ? expm1(x) : x
        return tirx.Select(v < f32(0.0), tirx.call_pure_extern("float32", "expm1f", v), v)
    # GELU
    if op.options.get("approximate"):  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        inner = p[0] * (v + p[1] * v * v * v)
        return v / f32(2.0) * (f32(1.0) + tirx.call_pure_extern("float32", "tanhf", inner))
    # 0.5 x erfc(-x / sqrt(2))
    return v / f32(2.0) * tirx.call_pure_extern("float32", "erfcf", v * p[2])


def lower_unary(op: Operator, graph: Graph, func_name: str, threads: bool = False) -> Step:
    """A float unary operator, value by value. ``threads``: the Linux CPU schedule, whose
    rows (:func:`~.tir.thread_rows`) the thread pool shares (see ``Step.row_phases``) and
    whose exponentials are vectorized (:func:`vector_exp`)."""
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    params = _unary_params(op, vectorized=threads)
    consts = (Constant(f"l{op.index}_params", np.array(params, np.float32)),) if params else ()
    rows = thread_row_count(tuple(y.shape)) if threads else 1
    per_row = y.size // rows

    with kernel(func_name) as k:
        specs = [("input", (x.size,), "float32"),
                 *([("params", (len(params),), "float32")] if consts else []),
                 ("output", (y.size,), "float32")]
        bufs = buffer_args(*specs, rows=threads)
        span = bufs[len(specs):]
        X, Y = bufs[0], bufs[len(specs) - 1]
        table = bufs[1] if consts else None
        if threads:
            with loop("row", span[2], span[1]) as row, loop("i", per_row) as i:
                store(Y, unary_value(op, X[row * per_row + i], table, vectorized=True),
                      row * per_row + i)
        else:
            with loop("i", x.size) as i:
                store(Y, unary_value(op, X[i], table), i)
    step = _step(op, [x], y, k.func, func_name, consts, macs=x.size)
    return replace(step, row_phases=(rows,), notes="float32 cpu: rows over threads") \
        if threads else step


def lower_lrn(op: Operator, graph: Graph, func_name: str) -> Step:
    """LOCAL_RESPONSE_NORMALIZATION as TFLite's reference kernel computes it: per position and
    channel c, ``x * pow(bias + alpha * sum(x[c-r .. c+r]^2), -beta)`` over the channels that
    exist. Float only in TFLite; an int8 model keeps it between DEQUANTIZE and QUANTIZE."""
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    depth = x.shape[-1]
    outer = x.size // depth
    radius = int(op.options["radius"])
    params = np.array([op.options["bias"], op.options["alpha"], -op.options["beta"]],
                      np.float32)
    with kernel(func_name) as k:
        X, P, Y = buffer_args(("input", (outer, depth), "float32"), ("params", (3,), "float32"),
                              ("output", (outer, depth), "float32"))
        acc = scalar("sqr_sum", "float32")
        with loop("i", outer) as i, loop("c", depth) as c:
            store(acc, f32(0.0))
            with loop("j", 2 * radius + 1) as j:
                ch = c - radius + j
                with when(in_range(ch, depth)):
                    store(acc, acc[0] + X[i, ch] * X[i, ch])
            factor = tirx.call_pure_extern("float32", "powf", P[0] + P[1] * acc[0], P[2])
            store(Y, X[i, c] * factor, i, c)
    return _step(op, [x], y, k.func, func_name, (Constant(f"l{op.index}_params", params),),
                 macs=x.size * (2 * radius + 1))


def lower_softmax(op: Operator, graph: Graph, func_name: str) -> Step:
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    depth = x.shape[-1]
    outer = x.size // depth
    beta = float(np.float32(op.options.get("beta", 1.0)))
    if beta != 1.0:
        raise refuse(op, "float softmax with beta != 1")
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (outer, depth), "float32"),
                           ("output", (outer, depth), "float32"))
        mx, total = scalar("max_val", "float32"), scalar("sum", "float32")
        with loop("i", outer) as i:
            store(mx, X[i, 0])
            with loop("j", depth) as j:
                store(mx, tirx.max(mx[0], X[i, j]))
            store(total, f32(0.0))
            with loop("j", depth) as j:
                e = tirx.call_pure_extern("float32", "expf", X[i, j] - mx[0])
                store(Y, e, i, j)
                store(total, total[0] + e)
            with loop("j", depth) as j:
                store(Y, Y[i, j] / total[0], i, j)
    return _step(op, [x], y, k.func, func_name, macs=x.size)


def prelu_operands(op: Operator, graph: Graph) -> tuple[Tensor, Tensor, np.ndarray, list[int]]:
    """Float PRELU's input, output, alpha (flat) and alpha's strides over the output, checked:
    the kernels read the input at the output's index, so an input broadcast to a larger output
    is refused. (The CPU and GPU kernels both use it.)"""
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    if tuple(x.shape) != tuple(y.shape):
        raise refuse(op, "input and output shapes differ")
    alpha_t = graph.tensor(op.inputs[1])
    alpha = _constant(op, alpha_t, "alpha").reshape(-1)
    try:
        strides = _broadcast_strides(alpha_t.shape, tuple(y.shape) or (1,))
    except ValueError as err:
        raise refuse(op, str(err)) from None
    return x, y, alpha, strides


def lower_prelu(op: Operator, graph: Graph, func_name: str) -> Step:
    """``x >= 0 ? x : x * alpha``, ``alpha`` a constant broadcast over the input."""
    x, y, alpha, strides = prelu_operands(op, graph)
    shape = tuple(y.shape) or (1,)
    consts = (Constant(f"l{op.index}_alpha", alpha),)
    with kernel(func_name) as k:
        X, A, Y = buffer_args(("input", (x.size,), "float32"), ("alpha", (alpha.size,), "float32"),
                              ("output", (y.size,), "float32"))
        with loop_nest(shape) as idx:
            flat = strided_offset(idx, row_major_strides(shape))
            v = X[flat]
            store(Y, tirx.Select(v >= f32(0.0), v, v * A[strided_offset(idx, strides)]), flat)
    return _step(op, [x], y, k.func, func_name, consts, macs=y.size)


def lower_transpose_conv(op: Operator, graph: Graph, func_name: str) -> Step:
    """TRANSPOSE_CONV in float, gathered per output like the integer kernel but summing in the
    order TFLite's scatter does (input row, column, then channel, ascending), bias last, so
    the float sums round the same."""
    x = _float_tensor(op, graph, op.inputs[2], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    w = _constant(op, graph.tensor(op.inputs[1]), "weights")
    n, ih, iw, ic = x.shape
    oc, kh, kw, _ = w.shape
    _, oh, ow, _ = y.shape
    sy, sx = op.options["stride"]
    if op.options["padding"] == "SAME":
        ph, pw = same_padding(oh, kh, sy, 1)[1], same_padding(ow, kw, sx, 1)[1]
    else:
        ph = pw = 0
    b_idx = op.inputs[3] if len(op.inputs) > 3 else -1
    bias = (_constant(op, graph.tensor(b_idx), "bias").reshape(-1) if b_idx >= 0
            else np.zeros(oc, np.float32))
    consts = (Constant(f"l{op.index}_weights", w), Constant(f"l{op.index}_bias", bias))
    with kernel(func_name) as k:
        X, W, B, Y = buffer_args(("input", x.shape, "float32"), ("weights", w.shape, "float32"),
                                 ("bias", (oc,), "float32"), ("output", y.shape, "float32"))
        acc = scalar("acc", "float32")
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("oc", oc) as c:
            store(acc, f32(0.0))
            with loop("kyr", kh) as kyr, loop("kxr", kw) as kxr:
                ky, kx = (kh - 1) - kyr, (kw - 1) - kxr  # descending taps: ascending input
                ty, tx = oy + ph - ky, ox + pw - kx
                iy, ix = tirx.floordiv(ty, sy), tirx.floordiv(tx, sx)
                reaches = tirx.all(tirx.floormod(ty, sy) == 0, tirx.floormod(tx, sx) == 0,
                                   ty >= 0, tx >= 0, in_range(iy, ih), in_range(ix, iw))
                with when(reaches), loop("ic", ic) as ci:
                    store(acc, acc[0] + X[b, iy, ix, ci] * W[c, ky, kx, ci])
            store(Y, _activation(op, acc[0] + B[c]), b, oy, ox, c)
    return _step(op, [x], y, k.func, func_name, consts, n * ih * iw * ic * kh * kw * oc)
