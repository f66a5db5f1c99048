"""CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel weights (NHWC).

Semantics of ``reference_integer_ops::ConvPerChannel`` / ``DepthwiseConvPerChannel``: taps that
fall in the padding are skipped (equivalent to padding with the input zero point), the int32
accumulator sums ``(x - input_zp) * w``, the bias is added, then each output channel is
requantized with its own multiplier and shift and clamped to the fused activation's range.

Where it pays, we compute the same integer more cheaply: ``sum((x - zp) * w) = sum(x' * w) -
zp * sum(w)``, ``x'`` being the input with padding taps reading ``zp``; ``-zp * sum(w)`` per
output channel is folded into the bias at compile time and the inner loop is a plain int8 x int8
multiply-add. That form is used for depthwise convolutions and for convolutions that never read
padding (1x1, VALID); a padded regular convolution keeps the reference form (padding taps
skipped, offset added per tap), which measured cheaper there (ResNet-8 on the M4: 3% fewer
instructions than the folded form).

float32 layers (``reference_ops::Conv``/``DepthwiseConv``) are the same loops without offsets or
requantization: the sum starts at zero, taps in the padding are skipped, the bias is added after
the sum, then the fused activation's clamp, so results match LiteRT's reference kernels.

**What** a convolution computes is the plan's: :class:`ConvPlan` is TFLite's ``Prepare`` and
states the arithmetic once (``initial``, ``term``, ``padding_term``, ``emit_output``), for int8,
int16x8 and float32. **How** it runs is a schedule: :func:`lower_conv2d` below is the portable
one (any core); the Linux CPU, Cortex-M DSP, Helium and GPU kernel sets have theirs
(:mod:`.cpu`, :mod:`.dsp`, :mod:`.mve`, ``gpu.kernels``), reading the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.common import (
    bias_or_zeros,
    refuse,
    scale,
    zero_point,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    reduced_multiplier,
)
from edge_sdk.compiler.kernels.float32 import (
    _activation,
    float_constant_or_zeros,
    weighted_operands,
)
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    f32,
    i32,
    i64,
    in_range,
    kernel,
    loop,
    scalar,
    store,
    when,
)
from edge_sdk.compiler.program import Constant, KernelArg, Step, TensorArg
from edge_sdk.compiler.quantization import (
    activation_range,
    conv_geometry,
    per_channel_multipliers,
)
from edge_sdk.ir import Graph, Operator, Tensor


@dataclass(frozen=True)
class ConvPlan:
    """TFLite's ``Prepare`` for one int8 convolution: geometry, offsets, tables, chosen form.

    Computed once and read by both kernel builders (the C loop nest here, the GPU compute
    definition in :mod:`edge_sdk.compiler.gpu.kernels`), so they cannot disagree.
    """

    op: Operator
    x: Tensor
    y: Tensor
    depthwise: bool
    mult: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]
    fold: bool  # the input offset is folded into the bias (padding taps read the zero point)
    input_zp: int
    output_zp: int
    act: tuple[int, int]
    weights: Constant
    bias: Constant
    multiplier: Constant  # per output channel; empty for float32
    shift: Constant

    @property
    def dtype(self) -> str:
        """The activations' type: int8, int16 or float32."""
        return self.x.dtype

    @property
    def accumulator(self) -> str:
        return {"int8": "int32", "int16": "int64"}.get(self.dtype, "float32")

    @property
    def constants(self) -> tuple[Constant, ...]:
        if self.dtype == "float32":
            return (self.weights, self.bias)
        return (self.weights, self.bias, self.multiplier, self.shift)

    # -- the arithmetic, stated once ------------------------------------------------------

    def _wrap(self, value: Any) -> Any:
        return i64(value) if self.dtype == "int16" else i32(value)

    def initial(self, bias: Any) -> Any:
        """Where an output's sum starts, given its channel's bias (a load): the folded bias,
        else zero (the reference form and float32 add the bias after the sum)."""
        if self.dtype == "float32":
            return f32(0.0)
        return bias if self.fold else self._wrap(0)

    def term(self, x: Any, w: Any) -> Any:
        """One tap of the sum for an input value inside the image: ``x * w`` (folded form,
        float32) or ``(x - input_zp) * w`` (the reference form), in the accumulator's type."""
        if self.dtype == "float32":
            return x * w
        value = i32(x) if self.fold else i32(x) + (-self.input_zp)
        return self._wrap(value * i32(w))

    def padding_term(self, w: Any) -> Any | None:
        """A tap in the padding, in the folded form: it reads the input zero point. None where
        such a tap adds nothing (float32: padding is zero)."""
        if self.dtype == "float32":
            return None
        return self._wrap(self.input_zp * i32(w))

    def emit_output(self, Y: tirx.Buffer, index: tuple, acc: tirx.Buffer, c: Any,
                    B: tirx.Buffer, M: tirx.Buffer | None, S: tirx.Buffer | None,
                    at: Any = 0) -> None:
        """``Y[index] = out(acc[at])`` for output channel ``c``: the bias where it was not the
        start, then requantization per channel and the activation's clamp (integers), or the
        fused activation (float32)."""
        if self.dtype == "float32":
            store(Y, _activation(self.op, acc[at] + B[c]), *index)
            return
        assert at == 0, "integer outputs are requantized in place in acc[0]"
        assert M is not None and S is not None
        if not self.fold:
            store(acc, acc[0] + B[c])
        store_requantized(Y, acc, M[c], S[c], self.act, self.output_zp, self.dtype == "int16",
                          *index)

    def folded_bias(self) -> np.ndarray:
        """The bias with ``-input_zp * sum(w)`` folded in (int64), whether or not this plan's
        portable kernel folds it: the SIMD kernels read padding taps as the input's zero point
        (from a padded copy or a gather), which makes folding right for every convolution."""
        bias = self.bias.array.astype(np.int64)
        if self.fold:
            return bias
        return folded_bias(bias, self.weights.array, self.input_zp, self.depthwise)

    def weights_by_channel(self) -> np.ndarray:
        """The weights as one row per output channel (OHWI, or 1HWO transposed)."""
        w = self.weights.array
        oc = self.y.shape[3]
        return w.reshape(-1, oc).T if self.depthwise else w.reshape(oc, -1)

    @property
    def macs(self) -> int:
        n, oh, ow, oc = self.y.shape
        return n * oh * ow * oc * self.kernel[0] * self.kernel[1] * (
            1 if self.depthwise else self.x.shape[3])

    def step(self, func: tirx.PrimFunc, func_name: str, notes: str = "",
             constants: tuple[KernelArg, ...] | None = None) -> Step:
        """The lowered layer; ``constants``: what the kernel takes between its input and output
        when not the plan's own tables (SIMD kernels repack them, some add scratch)."""
        middle = self.constants if constants is None else constants
        return Step(
            op_index=self.op.index, opcode=self.op.opcode, layer=self.y.name, kind="kernel",
            inputs=(self.x.index,), outputs=(self.y.index,), func=func, func_name=func_name,
            args=(TensorArg(self.x.index), *middle, TensorArg(self.y.index, writes=True)),
            macs=self.macs, notes=notes,
        )

    def interior(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Output rows ``[y0, y1)`` and columns ``[x0, x1)`` whose every tap is inside the
        image: kernels run those without bounds tests."""
        _, ih, iw, _ = self.x.shape
        _, oh, ow, _ = self.y.shape
        (kh, kw), (sy, sx), (dy, dx), (py, px) = self.kernel, self.stride, self.dilation, self.pad
        return ((-(-py // sy), min(oh, (ih - 1 - (kh - 1) * dy + py) // sy + 1)),
                (-(-px // sx), min(ow, (iw - 1 - (kw - 1) * dx + px) // sx + 1)))


def folded_bias(bias: np.ndarray, weights: np.ndarray, input_zp: int,
                depthwise: bool) -> np.ndarray:
    """``bias - input_zp * sum(w)`` per output channel, in the bias's type: the folded form's
    bias (see the module docstring). Weights are OHWI, or 1HWO for a depthwise layer."""
    oc = len(bias)
    taps = (weights.astype(np.int64).reshape(-1, oc).sum(axis=0) if depthwise
            else weights.astype(np.int64).reshape(oc, -1).sum(axis=1))
    return (bias.astype(np.int64) - input_zp * taps).astype(bias.dtype)


def plan_conv2d(op: Operator, graph: Graph) -> ConvPlan:
    """The plan of an int8, int16x8 or float32 convolution (its input's type decides)."""
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    x, y, w, weights = weighted_operands(op, graph)
    floating = x.dtype == "float32"
    wide = x.dtype == "int16"  # int16x8: int64 bias and accumulator
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise refuse(op, "only 4-D NHWC input and filter are supported")
    n, ih, iw, ic = x.shape
    mult = 1
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

    reads_padding = (ph > 0 or pw > 0 or (oh - 1) * stride[0] + (kh - 1) * dilation[0] >= ih
                     or (ow - 1) * stride[1] + (kw - 1) * dilation[1] >= iw)
    prefix = f"l{op.index}"
    if floating:
        fbias = float_constant_or_zeros(op, graph, 2, "bias", oc)
        none = Constant(f"{prefix}_none", np.zeros(0, np.int32))
        return ConvPlan(
            op=op, x=x, y=y, depthwise=depthwise, mult=mult, kernel=(kh, kw),
            stride=tuple(stride), dilation=tuple(dilation), pad=(ph, pw),
            fold=depthwise or not reads_padding, input_zp=0, output_zp=0, act=(0, 0),
            weights=Constant(f"{prefix}_weights", weights), bias=Constant(f"{prefix}_bias", fbias),
            multiplier=none, shift=none,
        )
    bias = bias_or_zeros(op, graph, 2, oc, "int64" if wide else "int32")
    reads_padding = (ph > 0 or pw > 0 or (oh - 1) * stride[0] + (kh - 1) * dilation[0] >= ih
                     or (ow - 1) * stride[1] + (kw - 1) * dilation[1] >= iw)
    fold = depthwise or not reads_padding
    if fold:  # move the input offset into the bias (see the module docstring)
        bias = folded_bias(bias, weights, zero_point(x), depthwise)
    assert w.quant is not None  # symmetric_weights checked it
    mults, shifts = per_channel_multipliers(scale(x), w.quant.scale, scale(y), oc)
    if wide:
        mults = np.array([reduced_multiplier(int(m)) for m in mults], dtype=np.int32)
    return ConvPlan(
        op=op, x=x, y=y, depthwise=depthwise, mult=mult, kernel=(kh, kw),
        stride=tuple(stride), dilation=tuple(dilation), pad=(ph, pw), fold=fold,
        input_zp=zero_point(x), output_zp=zero_point(y),
        act=activation_range(op.options["activation"], scale(y), zero_point(y), y.dtype),
        weights=Constant(f"{prefix}_weights", weights.astype("int8")),
        bias=Constant(f"{prefix}_bias", bias),
        multiplier=Constant(f"{prefix}_multiplier", mults),
        shift=Constant(f"{prefix}_shift", shifts),
    )


def store_requantized(Y: tirx.Buffer, acc: tirx.Buffer, multiplier, shift,
                      act: tuple[int, int], output_zp: int, wide: bool, *index) -> None:
    """A convolution's epilogue: requantize the accumulator per output channel, clamp, store.
    int8: the int32 double-rounding multiply plus the output zero point; int16x8 (``wide``):
    the int64 accumulator through TFLite's int64 multiply (zero point 0)."""
    if wide:
        result = multiply_by_quantized_multiplier_int64(acc[0], multiplier, shift)
        store(Y, tirx.Cast(Y.dtype, clamp(result, *act)), *index)
    else:
        emit_multiply_by_quantized_multiplier(acc, multiplier, shift)
        store(Y, tirx.Cast(Y.dtype, clamp(acc[0] + output_zp, *act)), *index)


def lower_conv2d(op: Operator, graph: Graph, func_name: str) -> Step:
    """The portable schedule: one output at a time, its sum in a scalar, taps in TFLite's
    order (filter row, filter column, input channel); int8, int16x8 and float32."""
    p = plan_conv2d(op, graph)
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = p.kernel
    (stride, dilation), (ph, pw) = (p.stride, p.dilation), p.pad
    floating = p.dtype == "float32"
    with kernel(func_name) as k:
        specs = [("input", x.shape, x.dtype), ("weights", p.weights.array.shape, p.weights.dtype),
                 ("bias", (oc,), p.bias.dtype)]
        if not floating:
            specs += [("multiplier", (oc,), "int32"), ("shift", (oc,), "int32")]
        X, W, B, *tables, Y = buffer_args(*specs, ("output", y.shape, y.dtype))
        M, S = tables if tables else (None, None)
        acc = scalar("acc", p.accumulator)
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("oc", oc) as c:
            store(acc, p.initial(B[c]))
            with loop("ky", kh) as ky, loop("kx", kw) as kx:
                iy = oy * stride[0] - ph + ky * dilation[0]
                ix = ox * stride[1] - pw + kx * dilation[1]
                inside = tirx.all(in_range(iy, ih), in_range(ix, iw))
                if p.depthwise:
                    tap = (X[b, iy, ix, tirx.floordiv(c, p.mult)], W[0, ky, kx, c])
                    padding = p.padding_term(W[0, ky, kx, c])
                    if padding is None:  # padding adds nothing: skip it
                        with when(inside):
                            store(acc, acc[0] + p.term(*tap))
                    else:  # one test per tap: the input inside the image, the zero point outside
                        with T.If(inside):
                            with T.Then():
                                store(acc, acc[0] + p.term(*tap))
                            with T.Else():
                                store(acc, acc[0] + padding)
                elif p.fold:  # never reads padding: no test at all
                    with loop("ic", ic) as ci:
                        store(acc, acc[0] + p.term(X[b, iy, ix, ci], W[c, ky, kx, ci]))
                else:  # the reference form: skip padding taps
                    with when(inside), loop("ic", ic) as ci:
                        store(acc, acc[0] + p.term(X[b, iy, ix, ci], W[c, ky, kx, ci]))
            p.emit_output(Y, (b, oy, ox, c), acc, c, B, M, S)

    return p.step(k.func, func_name, "float32" if floating else "")
