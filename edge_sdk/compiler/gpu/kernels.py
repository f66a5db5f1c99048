"""Operators as TVM compute definitions (``te.compute``), for the GPU.

The microcontroller kernels are hand-built loop nests: right for a single core, but TVM's GPU
schedules (``dlight``) need a compute definition to split, bind and tile. These builders express
the *same* arithmetic, from the same ``Prepare`` plans (:func:`plan_conv2d` and friends), as
stages that the schedules can work on: an optional padding stage (inlined by every schedule), an
int32 reduction, and an elementwise requantization epilogue.

Integer sums give the same result in any order, so any schedule keeps INT8 bit-exact. The one
float sum in an INT8 graph, softmax's, must run in TFLite's order; :mod:`.schedule` keeps it
serial. Float models are exact up to summation order.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace
from functools import reduce

import numpy as np
from tvm import te, tirx

from edge_sdk.compiler import gemmlowp
from edge_sdk.compiler.kernels import reduce as reduction
from edge_sdk.compiler.kernels import resize, softmax
from edge_sdk.compiler.kernels.activation import prelu_plan
from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.conv import plan_conv2d
from edge_sdk.compiler.kernels.elementwise import LEFT_SHIFT, _broadcast_strides, add_multipliers
from edge_sdk.compiler.kernels.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single_rounding,
)
from edge_sdk.compiler.kernels.float32 import (
    _BINARY,
    _activation,
    _constant,
    _float_tensor,
    _step,
    _unary_params,
    prelu_operands,
    unary_value,
)
from edge_sdk.compiler.kernels.fully_connected import plan_fully_connected
from edge_sdk.compiler.kernels.layout import _step as _layout_step
from edge_sdk.compiler.kernels.layout import (
    concatenation_operands,
    pad_operands,
    transpose_operands,
)
from edge_sdk.compiler.kernels.lookup import int8_table
from edge_sdk.compiler.kernels.pooling import plan_pool2d
from edge_sdk.compiler.kernels.softmax import plan_softmax
from edge_sdk.compiler.kernels.tir import clamp, i32, strided_offset
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, conv_geometry
from edge_sdk.ir import Graph, Operator, Tensor

GpuLowering = Callable[[Operator, Graph, str], Step]


def _func(args: list, name: str) -> tirx.PrimFunc:
    return te.create_prim_func(args).with_attr("global_symbol", name)


def _round_half_away(p):
    """``roundf`` for p >= 0, exactly: ``p - trunc(p)`` is exact, so no ``p + 0.5`` rounding."""
    t = tirx.trunc(p)
    return tirx.Select(p - t >= tirx.FloatImm("float32", 0.5), t + tirx.FloatImm("float32", 1.0), t)


def _padded(x: te.Tensor, shape: tuple[int, ...], pad: tuple[int, int], out_hw: tuple[int, int],
            value) -> te.Tensor:
    """The input seen through the padding: ``value`` outside the image (a stage the schedules
    inline into the reduction)."""
    n, ih, iw, c = shape
    ph, pw = pad

    def read(b, y, x_, ch):
        iy, ix = y - ph, x_ - pw
        inside = tirx.all(iy >= 0, iy < ih, ix >= 0, ix < iw)
        return tirx.if_then_else(inside, x[b, iy, ix, ch], value)

    if ph == 0 and pw == 0 and out_hw[0] <= ih and out_hw[1] <= iw:
        return x
    return te.compute((n, *out_hw, c), read, name="padded")


def _needed(out: int, kernel: int, stride: int, dilation: int) -> int:
    return (out - 1) * stride + (kernel - 1) * dilation + 1


def _taps_inside(y, x, image: tuple[int, int], window: tuple[int, int],
                 stride: tuple[int, int], pad: tuple[int, int]):
    """Taps of the pooling window at output (y, x) that fall inside the image: the divisor of
    TFLite's average pool (padding excluded)."""
    y0, x0 = y * stride[0] - pad[0], x * stride[1] - pad[1]
    return ((tirx.min(i32(window[0]), image[0] - y0) - tirx.max(i32(0), -y0))
            * (tirx.min(i32(window[1]), image[1] - x0) - tirx.max(i32(0), -x0)))


# --- INT8 -------------------------------------------------------------------------------------

# Regular convolutions whose input depth is a multiple of 4 sum four taps per instruction:
# ``edge_dp4a(a, b, c)``, the dot product of two int32 words read as four signed bytes each, plus
# ``c`` (CUDA's ``dp4a``, sm_61 and later; OpenCL C gets the same function written out, see
# :data:`..build.DOT4_DEFINITIONS`). The input and weights are read as int32 words, a quarter of
# the loads, and the sum is a quarter as long. Bit-exact on PoCL; off until a GPU run shows it
# faster (`benchmarks/gpu_cuda.py --prepare-only --schedule DOT4=True`).
DOT4 = False


def _word_of(value: int) -> int:
    """An int8 value repeated in the four bytes of an int32 word (a padding word)."""
    return int(np.full(4, value, np.int8).view(np.int32)[0])


def _as_words(weights: Constant) -> Constant:
    """int8 weights whose last axis is a multiple of 4 as int32 words: the same bytes, a
    quarter of the last axis (see :data:`DOT4`)."""
    return Constant(weights.name, np.ascontiguousarray(weights.array).view(np.int32))


def _dot4(a, b):
    """The int32 sum of the four byte products of words ``a`` and ``b`` (see :data:`DOT4`)."""
    return tirx.call_pure_extern("int32", "edge_dp4a", a, b, tirx.const(0, "int32"))


def conv2d(op: Operator, graph: Graph, name: str) -> Step:
    """CONV_2D and DEPTHWISE_CONV_2D, int8 and float32: one compute definition over the
    plan's geometry, with the arithmetic of the layer's type (int8: input offset, bias,
    requantization; float32: bias after the sum, fused activation). The GPU schedules
    (:mod:`.schedule`) decide how it runs."""
    p = plan_conv2d(op, graph)
    floating = p.dtype == "float32"
    n, ih, iw, ic = p.x.shape
    _, oh, ow, oc = p.y.shape
    (kh, kw), (sy, sx), (dy, dx) = p.kernel, p.stride, p.dilation
    # Four-tap words (DOT4) read every four input channels as one int32 word. Their sum is the
    # folded form (no per-tap offset): where the CPU's plan kept the reference form, the bias
    # is folded here. Every buffer is a GPU allocation of its own, so words are aligned.
    words = DOT4 and not floating and not p.depthwise and ic % 4 == 0
    if words and not p.fold:
        p = replace(p, fold=True, bias=Constant(p.bias.name,
                                                 p.folded_bias().astype(p.bias.array.dtype)))
    x_shape: tuple[int, ...]
    if words:
        x_shape = (n, ih, iw, ic // 4)
        X = te.placeholder(x_shape, "int32", name="input")
        W = te.placeholder((oc, kh, kw, ic // 4), "int32", name="weights")
        pad_value = tirx.const(_word_of(p.input_zp), "int32")
    else:
        x_shape = p.x.shape
        X = te.placeholder(x_shape, p.dtype, name="input")
        W = te.placeholder(p.weights.array.shape, p.weights.dtype, name="weights")
        pad_value = tirx.const(0.0 if floating else p.input_zp, p.dtype)
    B = te.placeholder((oc,), p.bias.dtype, name="bias")
    tables = [] if floating else [te.placeholder((oc,), "int32", name=nm)
                                  for nm in ("multiplier", "shift")]
    hw = (max(_needed(oh, kh, sy, dy), ih + p.pad[0]), max(_needed(ow, kw, sx, dx), iw + p.pad[1]))
    Xp = _padded(X, x_shape, p.pad, hw, pad_value)
    ky, kx = te.reduce_axis((0, kh), "ky"), te.reduce_axis((0, kw), "kx")
    # Folded form: padding reads the zero point and the offset lives in the bias. Reference
    # form (raw bias): subtract the offset per tap, so padding contributes exactly zero.
    # float32: padding is zero and there is no offset.
    offset = 0 if p.fold else p.input_zp

    def tap(v):
        if floating:
            return v
        return v.astype("int32") - offset if offset else v.astype("int32")

    def weight(v):
        return v if floating else v.astype("int32")

    if p.depthwise:
        acc = te.compute((n, oh, ow, oc), lambda b, y, x, c: te.sum(
            tap(Xp[b, y * sy + ky * dy, x * sx + kx * dx, tirx.floordiv(c, p.mult)])
            * weight(W[0, ky, kx, c]), axis=[ky, kx]), name="acc")
    elif words:
        cw = te.reduce_axis((0, ic // 4), "cw")
        acc = te.compute((n, oh, ow, oc), lambda b, y, x, c: te.sum(
            _dot4(Xp[b, y * sy + ky * dy, x * sx + kx * dx, cw], W[c, ky, kx, cw]),
            axis=[ky, kx, cw]), name="acc")
    else:
        ci = te.reduce_axis((0, ic), "ci")
        acc = te.compute((n, oh, ow, oc), lambda b, y, x, c: te.sum(
            tap(Xp[b, y * sy + ky * dy, x * sx + kx * dx, ci])
            * weight(W[c, ky, kx, ci]), axis=[ky, kx, ci]), name="acc")
    if floating:
        Y = te.compute((n, oh, ow, oc), lambda b, y, x, c: _activation(
            op, acc[b, y, x, c] + B[c]), name="output")
        return p.step(_func([X, W, B, Y], name), name, "float32")
    lo, hi = p.act
    M, S = tables
    Y = te.compute((n, oh, ow, oc), lambda b, y, x, c: clamp(
        multiply_by_quantized_multiplier(acc[b, y, x, c] + B[c], M[c], S[c]) + p.output_zp,
        lo, hi).astype("int8"), name="output")
    constants = (_as_words(p.weights), *p.constants[1:]) if words else None
    return p.step(_func([X, W, B, M, S, Y], name), name, constants=constants)


def fully_connected(op: Operator, graph: Graph, name: str) -> Step:
    """FULLY_CONNECTED, int8 and float32: one compute definition over the plan (see
    :func:`conv2d`)."""
    p = plan_fully_connected(op, graph)
    floating = p.dtype == "float32"
    X = te.placeholder((p.batches, p.depth), p.dtype, name="input")
    W = te.placeholder((p.units, p.depth), p.weights.dtype, name="weights")
    B = te.placeholder((p.units,), p.bias.dtype, name="bias")
    tables = [te.placeholder((p.units,), "int32", name=nm) for nm in ("multiplier", "shift")
              ] if p.tables else []
    constants = None
    if DOT4 and not floating and p.depth % 4 == 0:  # four taps per word (see DOT4); the bias
        X = te.placeholder((p.batches, p.depth // 4), "int32", name="input")  # is folded
        W = te.placeholder((p.units, p.depth // 4), "int32", name="weights")
        d = te.reduce_axis((0, p.depth // 4), "dw")
        acc = te.compute((p.batches, p.units), lambda b, o: te.sum(_dot4(X[b, d], W[o, d]),
                                                                  axis=d), name="acc")
        constants = (_as_words(p.weights), *p.constants[1:])
    elif floating:
        d = te.reduce_axis((0, p.depth), "d")
        acc = te.compute((p.batches, p.units), lambda b, o: te.sum(X[b, d] * W[o, d], axis=d),
                         name="acc")
    else:
        d = te.reduce_axis((0, p.depth), "d")
        acc = te.compute((p.batches, p.units), lambda b, o: te.sum(
            X[b, d].astype("int32") * W[o, d].astype("int32"), axis=d), name="acc")
    if floating:
        Y = te.compute((p.batches, p.units), lambda b, o: _activation(op, acc[b, o] + B[o]),
                       name="output")
        return p.step(_func([X, W, B, Y], name), name, "float32")
    lo, hi = p.act

    def requant(b, o):
        m, s = (tables[0][o], tables[1][o]) if tables else (p.multiplier, p.shift)
        v = multiply_by_quantized_multiplier_single_rounding(acc[b, o] + B[o], m, s)
        return clamp(v + p.output_zp, lo, hi).astype("int8")

    Y = te.compute((p.batches, p.units), requant, name="output")
    return p.step(_func([X, W, B, *tables, Y], name), name, constants=constants)


def pool2d_int8(op: Operator, graph: Graph, name: str) -> Step:
    p = plan_pool2d(op, graph)
    n, ih, iw, c = p.x.shape
    _, oh, ow, _ = p.y.shape
    (fh, fw), (sy, sx), (ph, pw) = p.filter, p.stride, p.pad
    X = te.placeholder(p.x.shape, "int8", name="input")
    hw = (max(_needed(oh, fh, sy, 1), ih + ph), max(_needed(ow, fw, sx, 1), iw + pw))
    Xp = _padded(X, p.x.shape, p.pad, hw, tirx.const(0 if p.is_avg else -128, "int8"))
    fy, fx = te.reduce_axis((0, fh), "fy"), te.reduce_axis((0, fw), "fx")
    lo, hi = p.act
    if p.is_avg:
        acc = te.compute((n, oh, ow, c), lambda b, y, x, ch: te.sum(
            Xp[b, y * sy + fy, x * sx + fx, ch].astype("int32"), axis=[fy, fx]), name="acc")

        def average(b, y, x, ch):
            y0, x0 = y * sy - ph, x * sx - pw  # taps inside the image: the reference's count
            count = ((tirx.min(i32(fh), ih - y0) - tirx.max(i32(0), -y0))
                     * (tirx.min(i32(fw), iw - x0) - tirx.max(i32(0), -x0)))
            s, half = acc[b, y, x, ch], tirx.truncdiv(count, 2)
            v = tirx.Select(s > 0, tirx.truncdiv(s + half, count), tirx.truncdiv(s - half, count))
            return clamp(v, lo, hi).astype("int8")

        Y = te.compute((n, oh, ow, c), average, name="output")
    else:
        acc = te.compute((n, oh, ow, c), lambda b, y, x, ch: te.max(
            Xp[b, y * sy + fy, x * sx + fx, ch].astype("int32"), axis=[fy, fx]), name="acc")
        Y = te.compute((n, oh, ow, c), lambda b, y, x, ch: clamp(
            acc[b, y, x, ch], lo, hi).astype("int8"), name="output")
    return p.step(_func([X, Y], name), name)


def _broadcast(op: Operator, a: Tensor, b: Tensor, y: Tensor):
    out_shape = tuple(y.shape) or (1,)
    try:
        sa, sb = _broadcast_strides(a.shape, out_shape), _broadcast_strides(b.shape, out_shape)
    except ValueError as err:
        raise refuse(op, str(err)) from None

    return (out_shape, lambda idx: strided_offset(list(idx), sa),
            lambda idx: strided_offset(list(idx), sb))


def add_int8(op: Operator, graph: Graph, name: str) -> Step:
    a = int8_tensor(op, graph, op.inputs[0], "first input")
    b = int8_tensor(op, graph, op.inputs[1], "second input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if a.is_constant or b.is_constant:
        raise refuse(op, "constant input")
    out_shape, off_a, off_b = _broadcast(op, a, b, y)
    (m1, s1), (m2, s2), (mo, so) = add_multipliers(a, b, y)
    lo, hi = activation_range(op.options["activation"], scale(y), zero_point(y))
    A = te.placeholder((a.size,), "int8", name="input1")
    Bt = te.placeholder((b.size,), "int8", name="input2")
    # Each input's rescaling to the common scale depends on its int8 value alone: two 256-entry
    # tables made at compile time leave one fixed-point multiply per element. (Written as one
    # expression, the three nested multiplies repeat their operands so often that TVM's
    # simplifier and dlight ran for minutes, in effect forever, when the input scales differ.)
    tables = tuple(Constant(f"l{op.index}_{which}_rescaled", np.array(
        [gemmlowp.mbqm((q - zero_point(t)) * (1 << LEFT_SHIFT), m, s) for q in range(-128, 128)],
        np.int32)) for which, t, (m, s) in (("input1", a, (m1, s1)), ("input2", b, (m2, s2))))
    TA = te.placeholder((256,), "int32", name="input1_rescaled")
    TB = te.placeholder((256,), "int32", name="input2_rescaled")

    def body(*idx):
        v = (TA[A[off_a(idx)].astype("int32") + 128] + TB[Bt[off_b(idx)].astype("int32") + 128])
        v = multiply_by_quantized_multiplier(v, mo, so)
        return clamp(v + zero_point(y), lo, hi).astype("int8")

    Y = te.compute(out_shape, body, name="output")
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=(a.index, b.index), outputs=(y.index,),
                func=_func([A, Bt, TA, TB, Y], name), func_name=name,
                args=(TensorArg(a.index), TensorArg(b.index), *tables,
                      TensorArg(y.index, writes=True)), macs=y.size)


def softmax_int8(op: Operator, graph: Graph, name: str) -> Step:
    """The fixed-point softmax of :mod:`..kernels.softmax`, as four stages: row maxima, row sums
    of the tabled exps, each row's reciprocal, and the normalised outputs. The stages between
    are the function's own buffers: :func:`..schedule.one_thread_per_row` keeps them in each
    thread's registers, so the layer is one launch with no scratch in device memory."""
    p = plan_softmax(op, graph)
    n = p.table_size
    X = te.placeholder((p.outer, p.depth), "int8", name="input")
    E = te.placeholder((n,), "int32", name="exp_q31")
    j = te.reduce_axis((0, p.depth), "j")
    mx = te.compute((p.outer,), lambda i: te.max(X[i, j].astype("int32"), axis=j), name="row_max")

    def exp_of(i, k):
        diff = mx[i] - X[i, k].astype("int32")
        return diff < n, E[tirx.min(diff, n - 1)]

    def row_sum(i):
        inside, e = exp_of(i, j2)
        return te.sum(tirx.Select(inside, softmax.rescaled_exp(e), i32(0)), axis=j2)

    j2 = te.reduce_axis((0, p.depth), "j2")
    total = te.compute((p.outer,), row_sum, name="row_sum")
    # The reciprocal, one stage per Newton-Raphson step (row vectors in device memory).
    rows = (p.outer,)
    half_den = te.compute(rows, lambda i: softmax.half_denominator(
        total[i], softmax.headroom(total[i])), name="row_half_denominator")
    steps = [te.compute(rows, lambda i: softmax.newton_start(half_den[i]), name="row_recip0")]

    def newton(prev: te.Tensor, k: int) -> list[te.Tensor]:
        product = te.compute(rows, lambda i: softmax.newton_product(prev[i], half_den[i]),
                             name=f"row_product{k}")
        correction = te.compute(rows, lambda i: softmax.newton_correction(prev[i], product[i]),
                                name=f"row_correction{k}")
        return [product, correction, te.compute(
            rows, lambda i: softmax.newton_update(prev[i], correction[i]), name=f"row_recip{k}")]

    for k in range(softmax.NEWTON_STEPS):
        steps.extend(newton(steps[-1], k + 1))
    scale_q31 = te.compute(rows, lambda i: softmax.final_scale(steps[-1][i]), name="row_scale")

    def normalise(i, k):
        inside, e = exp_of(i, k)
        bits = softmax.bits_over_unit(softmax.headroom(total[i]))
        return tirx.Select(inside, softmax.normalised(e, scale_q31[i], bits),
                           tirx.const(softmax.OUTPUT_ZERO_POINT, "int8"))

    Y = te.compute((p.outer, p.depth), normalise, name="output")
    return p.step(_func([X, E, Y], name), name)


# --- float32 ----------------------------------------------------------------------------------

def _float_io(op: Operator, graph: Graph) -> tuple[Tensor, Tensor]:
    return (_float_tensor(op, graph, op.inputs[0], "input"),
            _float_tensor(op, graph, op.outputs[0], "output"))


def pool2d_float(op: Operator, graph: Graph, name: str) -> Step:
    is_avg = op.opcode == "AVERAGE_POOL_2D"
    x, y = _float_io(op, graph)
    n, ih, iw, c = x.shape
    fh, fw = op.options["filter"]
    sy, sx = op.options["stride"]
    (oh, ow), (ph, pw) = conv_geometry(op.options["padding"], (ih, iw), (fh, fw), (sy, sx))
    X = te.placeholder(x.shape, "float32", name="input")
    hw = (max(_needed(oh, fh, sy, 1), ih + ph), max(_needed(ow, fw, sx, 1), iw + pw))
    fill = 0.0 if is_avg else float(np.finfo(np.float32).min)
    Xp = _padded(X, x.shape, (ph, pw), hw, tirx.const(fill, "float32"))
    fy, fx = te.reduce_axis((0, fh), "fy"), te.reduce_axis((0, fw), "fx")
    reducer = te.sum if is_avg else te.max
    acc = te.compute((n, oh, ow, c), lambda b, yy, xx, ch: reducer(
        Xp[b, yy * sy + fy, xx * sx + fx, ch], axis=[fy, fx]), name="acc")

    def finish(b, yy, xx, ch):
        if not is_avg:
            return _activation(op, acc[b, yy, xx, ch])
        count = _taps_inside(yy, xx, (ih, iw), (fh, fw), (sy, sx), (ph, pw))
        return _activation(op, acc[b, yy, xx, ch] / count.astype("float32"))

    Y = te.compute((n, oh, ow, c), finish, name="output")
    return _step(op, [x], y, _func([X, Y], name), name, macs=n * oh * ow * c * fh * fw)


def binary_float(op: Operator, graph: Graph, name: str) -> Step:
    """ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE on float32, broadcasting, with
    the CPU kernels' expressions (``float32._BINARY``) and fused activation; a constant operand
    travels as a table. One IEEE operation per element (two for SQUARED_DIFFERENCE): exact."""
    a = _float_tensor(op, graph, op.inputs[0], "first input")
    b = _float_tensor(op, graph, op.inputs[1], "second input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    if a.is_constant and b.is_constant:
        raise refuse(op, "two constant inputs")
    out_shape, off_a, off_b = _broadcast(op, a, b, y)
    A = te.placeholder((a.size,), "float32", name="input1")
    Bt = te.placeholder((b.size,), "float32", name="input2")
    Y = te.compute(out_shape, lambda *idx: _activation(
        op, _BINARY[op.opcode](A[off_a(idx)], Bt[off_b(idx)])), name="output")
    args = tuple(Constant(f"l{op.index}_operand{t.index}", _constant(op, t, "operand"))
                 if t.is_constant else TensorArg(t.index) for t in (a, b))
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=tuple(t.index for t in (a, b) if not t.is_constant),
                outputs=(y.index,), func=_func([A, Bt, Y], name), func_name=name,
                args=(*args, TensorArg(y.index, writes=True)), macs=y.size, notes="float32")


def unary_float(op: Operator, graph: Graph, name: str) -> Step:
    """RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, ABS, RSQRT, LOG, LOGISTIC, TANH, HARD_SWISH on
    float32:
    the CPU kernels' expressions (``float32.unary_value``) with TVM's math intrinsics, which
    each GPU API spells its own way (``expf`` in CUDA, ``exp`` in OpenCL C). The clamps are
    exact; the GPU's exp, tanh and sqrt are within a few ulp of the C library's, so those match
    LiteRT within rounding, not bit for bit. A parameter table only where the operator has
    parameters (LEAKY_RELU's alpha)."""
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    params = _unary_params(op)
    X = te.placeholder((x.size,), "float32", name="input")
    P = te.placeholder((len(params),), "float32", name="params") if params else None
    Y = te.compute((y.size,), lambda i: unary_value(op, X[i], P, intrinsics=True), name="output")
    if not params:
        return _step(op, [x], y, _func([X, Y], name), name, macs=y.size)
    consts = (Constant(f"l{op.index}_params", np.array(params, np.float32)),)
    return _step(op, [x], y, _func([X, P, Y], name), name, consts, macs=y.size)


def softmax_float(op: Operator, graph: Graph, name: str) -> Step:
    x, y = _float_io(op, graph)
    if float(np.float32(op.options.get("beta", 1.0))) != 1.0:
        raise refuse(op, "float softmax with beta != 1")
    depth = x.shape[-1]
    outer = x.size // depth
    X = te.placeholder((outer, depth), "float32", name="input")
    j = te.reduce_axis((0, depth), "j")
    mx = te.compute((outer,), lambda i: te.max(X[i, j], axis=j), name="row_max")
    j2 = te.reduce_axis((0, depth), "j2")
    total = te.compute((outer,), lambda i: te.sum(tirx.exp(X[i, j2] - mx[i]), axis=j2),
                       name="row_sum")
    Y = te.compute((outer, depth), lambda i, k: tirx.exp(X[i, k] - mx[i]) / total[i],
                   name="output")
    return _step(op, [x], y, _func([X, Y], name), name, macs=x.size)


# --- moves and clamps: the same definitions for int8 and float32 -------------------------------

def pad(op: Operator, graph: Graph, name: str) -> Step:
    """PAD / PADV2 with a constant fill: each output element reads its input element, or the
    fill outside it (the zero point in int8, as TFLite's kernel; PADV2's value where given)."""
    x, y, before, fill = pad_operands(op, graph)
    X = te.placeholder(x.shape, x.dtype, name="input")

    def read(*idx):
        src = [i - b for i, b in zip(idx, before, strict=True)]
        inside = tirx.all(*[tirx.all(v >= 0, v < d) for v, d in zip(src, x.shape, strict=True)])
        return tirx.if_then_else(inside, X[tuple(src)], tirx.const(fill, y.dtype))

    Y = te.compute(tuple(y.shape), read, name="output")
    return _layout_step(op, y, _func([X, Y], name), name, [x])


def reduce_mean_sum(op: Operator, graph: Graph, name: str) -> Step:
    """MEAN and SUM over any axes, int8 and float32: the CPU kernel's arithmetic (the int32 sum
    of ``x - zero_point`` requantized once, TFLite's ``QuantizedMeanOrSum``; float: the sum,
    then one division by the count). Integers are exact; a float sum the GPU schedule splits
    over threads adds in another order, within rounding of LiteRT's."""
    x, y, axes, kept, count, out_shape = reduction.reduce_operands(op, graph)
    if x.dtype not in ("int8", "float32"):
        raise refuse(op, f"{x.dtype} MEAN/SUM on a GPU")
    X = te.placeholder(tuple(x.shape), x.dtype, name="input")
    rs = [te.reduce_axis((0, x.shape[a]), f"r{a}") for a in axes]

    def source(kept_idx):
        idx, k, r = [], iter(kept_idx), iter(rs)
        for a in range(len(x.shape)):
            idx.append(next(r) if a in axes else next(k))
        return X[tuple(idx)]

    if x.dtype == "float32":
        acc = te.compute(out_shape, lambda *o: te.sum(source(o[:len(kept)]), axis=rs),
                         name="acc")
        is_mean = op.opcode == "MEAN"
        if is_mean and count > 1 << 24:
            raise refuse(op, f"a mean over {count} elements (more than float32 counts exactly)")
        Y = te.compute(out_shape, lambda *o: acc[o] / tirx.const(float(count), "float32")
                       if is_mean else acc[o], name="output")
    else:
        zp_in = zero_point(x)
        acc = te.compute(out_shape, lambda *o: te.sum(
            source(o[:len(kept)]).astype("int32") - i32(zp_in), axis=rs), name="acc")
        m, s = reduction.requantize_constants(op, x, y, count)
        Y = te.compute(out_shape, lambda *o: clamp(
            multiply_by_quantized_multiplier(acc[o], i32(m), i32(s)) + i32(zero_point(y)),
            -128, 127).astype("int8"), name="output")
    return _layout_step(op, y, _func([X, Y], name), name, [x])


def transpose(op: Operator, graph: Graph, name: str) -> Step:
    """TRANSPOSE (every PyTorch-exported NCHW model has one at its input): each output element
    reads the input element its permutation names; any element type, exact."""
    x, y, perm = transpose_operands(op, graph)
    X = te.placeholder(tuple(x.shape), x.dtype, name="input")

    def read(*idx):
        src = [0] * len(perm)
        for out_axis, in_axis in enumerate(perm):
            src[in_axis] = idx[out_axis]
        return X[tuple(src)]

    Y = te.compute(tuple(y.shape), read, name="output")
    return _layout_step(op, y, _func([X, Y], name), name, [x])


def concatenation(op: Operator, graph: Graph, name: str) -> Step:
    """CONCATENATION of inputs quantized alike (TFLite requantizes otherwise: refused here):
    each output element reads the input whose slice of the axis holds it."""
    y, xs, axis = concatenation_operands(op, graph)
    Xs = [te.placeholder(x.shape, x.dtype, name=f"input{n}") for n, x in enumerate(xs)]
    starts = np.cumsum([0] + [x.shape[axis] for x in xs])

    def read(*idx):
        def at(n):
            return Xs[n][tuple(i - int(starts[n]) if k == axis else i
                               for k, i in enumerate(idx))]
        value = at(len(xs) - 1)
        for n in range(len(xs) - 2, -1, -1):
            value = tirx.if_then_else(idx[axis] < int(starts[n + 1]), at(n), value)
        return value

    Y = te.compute(tuple(y.shape), read, name="output")
    return _layout_step(op, y, _func([*Xs, Y], name), name, xs)


def prelu_float(op: Operator, graph: Graph, name: str) -> Step:
    """PRELU on float32: ``x >= 0 ? x : x * alpha``, alpha a constant broadcast over the
    output; exact (one multiply)."""
    x, y, alpha, strides = prelu_operands(op, graph)
    shape = tuple(y.shape) or (1,)
    X = te.placeholder(shape, "float32", name="input")
    A = te.placeholder((alpha.size,), "float32", name="alpha")

    def leaky(*idx):
        v = X[idx]
        return tirx.Select(v >= tirx.FloatImm("float32", 0.0), v,
                           v * A[strided_offset(idx, strides)])

    Y = te.compute(shape, leaky, name="output")
    return _step(op, [x], y, _func([X, A, Y], name), name,
                 (Constant(f"l{op.index}_alpha", alpha),), macs=y.size)


def prelu_int8(op: Operator, graph: Graph, name: str) -> Step:
    """PRELU on int8, :func:`..kernels.activation.prelu_plan`'s arithmetic: ``x - zp`` rescaled
    on its own where it is >= 0, else times ``alpha - alpha_zp`` and rescaled by the other
    multiplier; both double-rounding, as ``BroadcastPrelu4DSlow``."""
    x, y, alpha, strides, (m1, s1), (m2, s2) = prelu_plan(op, graph)
    shape = tuple(y.shape) or (1,)
    X = te.placeholder(shape, "int8", name="input")
    A = te.placeholder((alpha.array.size,), "int16", name="alpha")

    def leaky(*idx):
        v = X[idx].astype("int32") - zero_point(x)
        scaled = tirx.Select(
            v >= 0, multiply_by_quantized_multiplier(v, m1, s1),
            multiply_by_quantized_multiplier(v * A[strided_offset(idx, strides)].astype("int32"),
                                             m2, s2))
        return clamp(scaled + zero_point(y), -128, 127).astype("int8")

    Y = te.compute(shape, leaky, name="output")
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=(x.index,), outputs=(y.index,), func=_func([X, A, Y], name),
                func_name=name, args=(TensorArg(x.index), alpha, TensorArg(y.index, writes=True)),
                macs=y.size, notes="alpha stored with its zero point removed")


def resize_nearest(op: Operator, graph: Graph, name: str) -> Step:
    """RESIZE_NEAREST_NEIGHBOR (int8, float32): a gather through the row and column tables of
    :mod:`..kernels.resize` (TFLite's ``GetNearestNeighbor``, evaluated at compile time)."""
    x, y = resize._tensors(op, graph)
    consts = resize.nearest_tables(op, x, y)
    X = te.placeholder(x.shape, x.dtype, name="input")
    R, C = (te.placeholder(t.array.shape, "int32", name=nm)
            for nm, t in zip(("rows", "cols"), consts, strict=True))
    Y = te.compute(tuple(y.shape), lambda b, oy, ox, ch: X[b, R[oy], C[ox], ch], name="output")
    return resize._step(op, x, y, _func([X, R, C, Y], name), name, consts,
                        "input row/column tables")


def resize_bilinear(op: Operator, graph: Graph, name: str) -> Step:
    """RESIZE_BILINEAR with :mod:`..kernels.resize`'s tables: float32 as TFLite's four
    ``value * wy * wx`` terms added left to right (no contraction: exact to LiteRT); int8 as
    ``ResizeBilinearInteger``, weights in 1/1024ths, the sum in 64 bits divided by 2^20
    rounding half away from zero."""
    x, y = resize._tensors(op, graph)
    integer = x.dtype != "float32"
    consts = resize.bilinear_tables(op, x, y)
    X = te.placeholder(x.shape, x.dtype, name="input")
    T = [te.placeholder(t.array.shape, str(t.array.dtype), name=nm)
         for nm, t in zip(resize.BILINEAR_TABLES, consts, strict=True)]
    Y0, Y1, WY0, WY1, X0, X1, WX0, WX1 = T

    def interpolate(b, oy, ox, ch):
        taps = [(X[b, Y0[oy], X0[ox], ch], WY0[oy], WX0[ox]),
                (X[b, Y1[oy], X0[ox], ch], WY1[oy], WX0[ox]),
                (X[b, Y0[oy], X1[ox], ch], WY0[oy], WX1[ox]),
                (X[b, Y1[oy], X1[ox], ch], WY1[oy], WX1[ox])]
        if not integer:  # TFLite's expression, term by term and left to right
            return reduce(operator.add, [v * wy * wx for v, wy, wx in taps])
        total = reduce(operator.add, [v.astype("int64") * wy.astype("int64") * wx.astype("int64")
                                      for v, wy, wx in taps])
        rounding = tirx.Select(total > tirx.const(0, "int64"), tirx.const(1 << 19, "int64"),
                               tirx.const(-(1 << 19), "int64"))
        return tirx.truncdiv(total + rounding, tirx.const(1 << 20, "int64")).astype(y.dtype)

    Y = te.compute(tuple(y.shape), interpolate, name="output")
    return resize._step(op, x, y, _func([X, *T, Y], name), name, consts,
                        "interpolation tables per row/column" + (" (1/1024ths)" if integer else ""))


def lookup_int8(op: Operator, graph: Graph, name: str) -> Step:
    """LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, ABS, RSQRT, GELU, ELU on int8: a gather from
    :func:`..kernels.lookup.int8_table` (TFLite's reference arithmetic on every int8 value, at
    compile time), exact."""
    x, y, table = int8_table(op, graph)
    X = te.placeholder((x.size,), "int8", name="input")
    T = te.placeholder((256,), "int8", name="table")
    Y = te.compute((y.size,), lambda i: T[X[i].astype("int32") + 128], name="output")
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=(x.index,), outputs=(y.index,), func=_func([X, T, Y], name),
                func_name=name, args=(TensorArg(x.index), table, TensorArg(y.index, writes=True)),
                macs=y.size, notes="256-entry table of TFLite's reference integer arithmetic")
