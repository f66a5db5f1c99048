"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED for Linux CPUs (``isa="cpu*"``): one
schedule per op family for int8 and float32 layers.

Same integers as the portable kernels (:mod:`.conv`, :mod:`.fully_connected`), laid out for a
vector unit and TVM's LLVM backend (NEON on the Pi boards, AVX2 on the x86-64 stand-in):

- **Output channels are the vector lanes.** Weights are repacked at compile time into blocks of
  ``LANES`` output channels (``[block][tap][in channel][lane]``, zero-padded), so the inner step
  is one broadcast input value times one contiguous row of weights, added to ``LANES`` int32
  accumulators. A regular convolution computes a tile of neighbouring output pixels at once, so
  each row of weights loaded serves four pixels. Depthwise convolutions put channels in the
  lanes too: one input row of channels times one row of weights per tap.
- **No bounds tests in the loops.** A convolution that reads padding (or a depthwise one whose
  channels are not a whole number of blocks) first copies its input into a scratch buffer with
  the padding filled with the input zero point; the input offset is folded into the bias
  (``sum((x - zp) w) = sum(x w) - zp sum(w)``), so the inner loop is a plain multiply-add.
- The accumulators stay in registers (the vector loops have constant indices after unrolling);
  the epilogue requantizes each channel exactly as TFLite does, scalar, and stores the lanes
  that are real channels.

Float32 layers take the same schedules with float lanes: each output is the same sum as the
portable kernel's, in the same order over taps and channels, from zero, with the bias added
last. LLVM does not reassociate it, but fuses each multiply-add into one FMA where the CPU has
it: outputs then differ from LiteRT's reference kernels in the last bits (measured: under 4e-6
absolute on sums of 45-90 terms of magnitude ~1; the requirement is 1e-5), where the portable C
kernels, built without contraction, match it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.conv import ConvPlan, plan_conv2d
from edge_sdk.compiler.kernels.fixedpoint import (
    F64_EXACT_LIMIT,
    emit_multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_f64,
)
from edge_sdk.compiler.kernels.fully_connected import plan_fully_connected
from edge_sdk.compiler.kernels.schedule import Schedule, Tuning, default_schedule, layer_key
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    f32,
    i32,
    kernel,
    loop,
    scalar,
    store,
    when,
)
from edge_sdk.compiler.program import Constant, Scratch, Step
from edge_sdk.compiler.quantization import accumulator_bound
from edge_sdk.ir import Graph, Operator


def schedule_for(op: Operator, graph: Graph, isa: str, channels: int, width: int,
                 tuning: Tuning | None) -> Schedule:
    """The tuned schedule of this layer where ``tuning`` has one (and it fits this kernel
    set), else the default."""
    tuned = tuning.schedule(layer_key(op, graph, isa)) if tuning else None
    if tuned is not None and tuned.lanes % width == 0:
        return tuned
    return default_schedule(op.opcode, channels)


def for_each_tile(extent: int, size: int, body, name: str) -> None:
    """``body(start, count)`` over ``[0, extent)``: whole tiles of ``size``, then what is left
    one at a time (``count`` is a Python int, so each tile's code is unrolled)."""
    full = extent // size
    if full:
        with loop(f"{name}_tile", full) as t:
            body(t * size, size)
    if extent % size:
        with loop(name, extent, full * size) as i:
            body(i, 1)


def _blocks(n: int, lanes: int) -> int:
    return -(-n // lanes)


def _padded(values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, values.dtype)
    out[: values.size] = values
    return out


def _vector(extent: int):
    return T.vectorized(0, extent)


class _Source:
    """Where a convolution reads its input: the input itself, or a copy in scratch
    (``rows x cols x channels`` per batch, taps starting at row/column 0) with zero points
    where a tap falls in the padding, channels padded to ``channels``, widened to ``dtype``."""

    def __init__(self, p: ConvPlan, channels: int, dtype: str = "int8",
                 always: bool = False) -> None:
        n, ih, iw, ic = p.x.shape
        _, oh, ow, _ = p.y.shape
        (kh, kw), (sy, sx), (dy, dx) = p.kernel, p.stride, p.dilation
        self.rows = (oh - 1) * sy + (kh - 1) * dy + 1
        self.cols = (ow - 1) * sx + (kw - 1) * dx + 1
        self.channels = channels
        self.batches = n
        self.dtype = dtype
        self.offset = p.pad
        reads_padding = any(p.pad) or self.rows > ih or self.cols > iw
        self.copy = always or reads_padding or channels != ic
        self.scratch = (Scratch(f"l{p.op.index}_padded_input",
                                (n * self.rows * self.cols * channels,), dtype)
                        if self.copy else None)

    @property
    def total_rows(self) -> int:
        return self.batches * self.rows

    def fill(self, X: tirx.Buffer, P: tirx.Buffer, p: ConvPlan, begin, end) -> None:
        """Copy rows ``[begin, end)`` (over all batches) of the input into the scratch, zero
        points where a tap falls outside it."""
        _, ih, iw, ic = p.x.shape
        ph, pw = self.offset
        zp = tirx.const(p.input_zp, self.dtype)
        with loop("row", end, begin) as t, loop("c", self.cols) as c:
            b, r = tirx.floordiv(t, self.rows), tirx.floormod(t, self.rows)
            iy, ix = r - ph, c - pw
            base = ((b * self.rows + r) * self.cols + c) * self.channels
            # Whole pixels at a time, so each branch is a plain (vectorizable) copy or fill.
            with T.If(tirx.all(iy >= 0, iy < ih, ix >= 0, ix < iw)):
                with T.Then():
                    with loop("ch", ic) as ch:
                        store(P, tirx.Cast(self.dtype, X[b, iy, ix, ch]), base + ch)
                    if self.channels > ic:
                        with loop("pad", self.channels, ic) as ch:
                            store(P, zp, base + ch)
                with T.Else(), loop("ch", self.channels) as ch:
                    store(P, zp, base + ch)


def _int8_term(x: Any, w: Any) -> Any:
    return i32(x) * i32(w)


@dataclass(frozen=True)
class DotStep:
    """How a vector unit multiplies ``group`` input channels by a row of weights and adds the
    products into int32 lanes: one channel at a time (any target: LLVM widens and multiplies),
    pairs of int16 (x86 AVX2 ``vpmaddwd``), quads of int8 (Arm ``sdot``) or quads of unsigned
    x signed bytes (x86 VNNI ``vpdpbusd``, AVX-512 VNNI or AVX-VNNI). Exact in every form: the
    products and their sums are the same integers.

    ``vpdpbusd`` reads the input bytes as *unsigned*: each input word gets its sign bits
    flipped (``x ^ 0x80`` is ``x + 128`` as an unsigned byte, one XOR per word) and the kernel's
    bias gives the difference back, ``-input_shift * sum(w)`` per output channel, folded at
    compile time (:func:`shifted_bias`). The sum ``sum((x + 128) w) - 128 sum(w)`` is the same
    integer; :func:`fits_shifted` checks that no partial sum can leave int32 on the way."""

    name: str
    group: int             # input channels per step
    dtype: str             # element type of the packed weights and the input copy
    intrinsic: str | None  # LLVM intrinsic of one step, None for plain vector arithmetic
    width: int             # int32 lanes one intrinsic call produces
    input_shift: int = 0   # added to every input byte (vpdpbusd: 128, see above)

    def word(self, values: list) -> tirx.PrimExpr:
        """``group`` int8 values as the one int32 :meth:`update` takes: two int16 halves
        (``vpmaddwd``) or four bytes (``sdot``), first value lowest, as memory holds them."""
        if self.group == 1:
            return values[0]
        bits = 32 // self.group
        mask = (1 << bits) - 1
        word = tirx.bitwise_and(i32(values[0]), i32(mask))
        for k, v in enumerate(values[1:], start=1):
            part = i32(v) << i32(bits * k) if k == self.group - 1 else (
                tirx.bitwise_and(i32(v), i32(mask)) << i32(bits * k))
            word = tirx.bitwise_or(word, part)
        return word

    def update(self, acc: tirx.Buffer, at: int, lanes: int, W: tirx.Buffer, wbase,
               word, term: Callable[[Any, Any], Any] = _int8_term) -> None:
        """``acc[at : at + lanes] += x-group . W[wbase ...]``: ``word`` is the input group as
        one int32 (two int16 or four int8) for the intrinsic forms, one value otherwise, which
        ``term`` multiplies by each weight (the op's own product: int8 widened to int32, or
        float32)."""
        if self.intrinsic is None:
            with _vector(lanes) as v:
                store(acc, acc[at + v] + term(word, W[wbase + v]), at + v)
            return
        per_word = 4 // np.dtype(self.dtype).itemsize
        elems = self.width * per_word
        if self.input_shift:
            word = tirx.bitwise_xor(word, i32(SIGN_BITS))
        xs = tirx.reinterpret(f"{self.dtype}x{elems}", tirx.Broadcast(word, self.width))
        for h in range(lanes // self.width):
            part = tirx.Ramp(at + h * self.width, 1, self.width)
            ws = W[tirx.Ramp(wbase + h * elems, 1, elems)]
            if self.name == "sdot":
                total = tirx.call_llvm_pure_intrin(f"int32x{self.width}", self.intrinsic,
                                                   acc[part], ws, xs)
            elif self.name == "vpdpbusd":
                total = tirx.call_llvm_pure_intrin(f"int32x{self.width}", self.intrinsic,
                                                   acc[part], *_vnni_operands(xs, ws))
            else:
                total = acc[part] + tirx.call_llvm_pure_intrin(f"int32x{self.width}",
                                                               self.intrinsic, xs, ws)
            T.buffer_store(acc, total, [part])


# The sign bit of each byte of a word: XOR flips int8 x into the unsigned byte x + 128.
SIGN_BITS = int(np.full(4, 0x80, np.uint8).view(np.int32)[0])


def _vnni_operands(xs: tirx.PrimExpr, ws: tirx.PrimExpr) -> tuple[tirx.PrimExpr, ...]:
    """``vpdpbusd``'s byte operands as LLVM declares them: vectors of bytes from LLVM 22 on,
    vectors of int32 words before."""
    from tvm.target import codegen

    if codegen.llvm_version_major() >= 22:
        return xs, ws
    return (tirx.reinterpret("int32x8", xs), tirx.reinterpret("int32x8", ws))


DOT_STEPS = {
    "cpu": DotStep("scalar", 1, "int8", None, 1),
    "cpu-avx2": DotStep("vpmaddwd", 2, "int16", "llvm.x86.avx2.pmadd.wd", 8),
    "cpu-vnni": DotStep("vpdpbusd", 4, "int8", "llvm.x86.avx512.vpdpbusd.256", 8,
                        input_shift=128),
    "cpu-dotprod": DotStep("sdot", 4, "int8", "llvm.aarch64.neon.sdot", 4),
}


def shifted_bias(bias: np.ndarray, weights_by_channel: np.ndarray, shift: int) -> np.ndarray:
    """``bias - shift * sum(w)`` per output channel (int32): what a step that adds ``shift``
    to every input (``vpdpbusd``) must start from to give the same sum."""
    sums = weights_by_channel.astype(np.int64).sum(axis=1)
    return (bias.astype(np.int64) - shift * sums[: len(bias)]).astype(np.int32)


def fits_shifted(bias: np.ndarray, weights_by_channel: np.ndarray, shift: int) -> bool:
    """May a step that adds ``shift`` to every int8 input keep every partial sum in int32?
    It starts at ``bias - shift * sum(w)`` and adds products of inputs up to ``127 + shift``."""
    w = weights_by_channel.astype(np.int64)
    worst = (np.abs(bias.astype(np.int64)) + shift * np.abs(w.sum(axis=1))
             + (127 + shift) * np.abs(w).sum(axis=1))
    return bool(worst.max(initial=0) < 2**31)


def dot_step(isa: str, bias: np.ndarray, weights_by_channel: np.ndarray) -> DotStep:
    """The kernel set's int8 dot-product step for one layer: VNNI's where its shifted partial
    sums fit in int32 (every real layer; a pathological one takes AVX2's exact step)."""
    dot = DOT_STEPS[isa]
    if dot.input_shift and not fits_shifted(bias, weights_by_channel, dot.input_shift):
        return DOT_STEPS["cpu-avx2"]
    return dot
# Float32 layers on every Linux kernel set: one value times a row of weights (FMA where the CPU
# has it).
FLOAT_STEP = DotStep("scalar", 1, "float32", None, 1)


@contextmanager
def copy_then_compute(copy: bool, phase, fill: Callable[[], None]) -> Iterator[None]:
    """The two phases of a kernel whose rows are split over threads: phase 0 runs ``fill``
    (the padded input copy) where there is a copy, the last phase is the body of the ``with``
    (the computing phase, over the rows ``[begin, end)`` the kernel was given)."""
    if not copy:
        yield
        return
    with T.If(phase == 0):
        with T.Then():
            fill()
        with T.Else():
            yield


def select_conv(p: ConvPlan) -> str | None:
    """The Linux CPU convolution variant for ``p`` (int8 or float32), or None for the portable
    kernel."""
    if p.dtype not in ("int8", "float32"):
        return None
    if p.depthwise:
        return "depthwise" if p.mult == 1 else None
    return "conv"


def lower_conv2d_cpu(op: Operator, graph: Graph, func_name: str, scratch: bool = True,
                     isa: str = "cpu", tuning: Tuning | None = None) -> Step | None:
    """The Linux CPU convolution for ``op`` (:func:`select_conv`), or None."""
    p = plan_conv2d(op, graph)
    variant = select_conv(p)
    if variant is None:
        return None
    if variant == "depthwise":
        return _depthwise(p, func_name, schedule_for(op, graph, isa, p.y.shape[3], 1, tuning))
    if p.dtype == "int8":  # checked with the bias the kernel starts from (see _Outputs)
        start, _, _ = requant_tables(p, p.folded_bias().astype(np.int32))
        dot = dot_step(isa, start, p.weights_by_channel())
    else:
        dot = FLOAT_STEP
    return _conv(p, func_name, dot, schedule_for(op, graph, isa, p.y.shape[3], dot.width,
                                                 tuning))


def _requantize_store(Y, acc, value, p, index, channel, flat) -> None:
    store(value, acc[index])
    emit_multiply_by_quantized_multiplier(value, p[0][channel], p[1][channel])
    store(Y, tirx.Cast("int8", clamp(value[0] + p[2], *p[3])), flat)


def requant_tables(p: ConvPlan, bias: np.ndarray
                   ) -> tuple[np.ndarray, Constant, Constant]:
    """Bias and per-channel (multiplier, shift) for the kernel, with every channel whose
    weights are all zero (pruned channels; converters give them huge biases) rewritten to the
    same constant output in small numbers: bias ``r = MultiplyByQuantizedMultiplier(bias, m,
    s)`` (limited to +-512, which clamps to int8 alike) with multiplier 2^30 and shift 1,
    which gives back exactly ``r``. That keeps such channels from defeating the
    double-precision requantization's bound."""
    from edge_sdk.compiler import gemmlowp

    dead = np.flatnonzero(~p.weights_by_channel().any(axis=1))
    if dead.size == 0:
        return bias, p.multiplier, p.shift
    bias, mult, shift = bias.copy(), p.multiplier.array.copy(), p.shift.array.copy()
    for c in dead:
        # The output clamps r + zero point into int8: r beyond +-512 clamps the same way.
        r = gemmlowp.mbqm(int(bias[c]), int(mult[c]), int(shift[c]))
        bias[c] = min(max(r, -512), 512)
        mult[c], shift[c] = 1 << 30, 1
    prefix = f"l{p.op.index}"
    return (bias, Constant(f"{prefix}_multiplier_cpu", mult),
            Constant(f"{prefix}_shift_cpu", shift))


def _epilogue(Y, acc, at: int, lanes: int, nb, channels: int, rq, first_out, value,
              vector: bool) -> None:
    """Requantize ``acc[at : at + lanes]`` (output channels ``nb * lanes ...``) and store them
    at ``Y[first_out + lane]``. ``vector``: every lane is a real channel and the accumulator
    bound allows the double-precision product, so the whole block is one vector expression."""
    M, S, zp, act = rq
    if vector:
        with _vector(lanes) as v:
            c = nb * lanes + v
            scaled = multiply_by_quantized_multiplier_f64(acc[at + v], M[c], S[c])
            store(Y, tirx.Cast("int8", clamp(scaled + zp, *act)), first_out + c)
        return
    with loop("lane", lanes) as v, when(nb * lanes + v < channels):
        c = nb * lanes + v
        _requantize_store(Y, acc, value, rq, at + v, c, first_out + c)


class _Outputs:
    """How a convolution schedule finishes its accumulators, from the plan: int8 requantizes
    with the kernel's tables (dead channels rewritten, see :func:`requant_tables`), in one
    vector expression where the bound allows it; float32 adds the bias and applies the fused
    activation. ``bias`` is what the accumulators start from (int8: the folded bias; float32:
    zero, the bias comes last as in TFLite)."""

    def __init__(self, p: ConvPlan, lanes: int, channels: int, input_shift: int = 0) -> None:
        self.p = p
        self.lanes = lanes
        self.floating = p.dtype == "float32"
        prefix = f"l{p.op.index}"
        if self.floating:
            self.bias = p.bias
            self.tables: tuple[Constant, ...] = ()
            self.vector = False
            return
        folded, mult, shift = requant_tables(p, p.folded_bias().astype(np.int32))
        start = (shifted_bias(folded, p.weights_by_channel(), input_shift) if input_shift
                 else folded)
        self.bias = Constant(f"{prefix}_bias_folded", _padded(start, channels))
        self.tables = (mult, shift)
        oc = p.y.shape[3]
        self.vector = oc % lanes == 0 and accumulator_bound(p.weights_by_channel(), folded,
                                                            shift.array) <= F64_EXACT_LIMIT

    @property
    def specs(self) -> list[tuple[str, tuple[int, ...], str]]:
        oc = self.p.y.shape[3]
        return [("bias", self.bias.array.shape, self.bias.dtype),
                *((name, (oc,), "int32") for name in ("multiplier", "shift")
                  if not self.floating)]

    def start(self, B: tirx.Buffer, index) -> tirx.PrimExpr:
        return f32(0.0) if self.floating else B[index]

    def emit(self, Y, B, tables, acc, at: int, nb, first_out, value) -> None:
        """Finish ``acc[at : at + lanes]`` (output channels ``nb * lanes ...``) into
        ``Y[first_out + channel]``."""
        p, lanes, oc = self.p, self.lanes, self.p.y.shape[3]
        if self.floating:
            with loop("lane", lanes) as v, when(nb * lanes + v < oc):
                c = nb * lanes + v
                p.emit_output(Y, (first_out + c,), acc, c, B, None, None, at=at + v)
            return
        _epilogue(Y, acc, at, lanes, nb, oc, (*tables, p.output_zp, p.act), first_out, value,
                  self.vector)

    @property
    def note(self) -> str:
        return ", vector requantization" if self.vector else ""


def _conv(p: ConvPlan, func_name: str, dot: DotStep, sched: Schedule) -> Step:
    """A regular convolution: a tile of ``pixels`` neighbouring outputs of one row at a time,
    ``lanes`` output channels per vector, one input group times one row of packed weights
    per step (the kernel set's dot-product step)."""
    n, ih, iw, ic = p.x.shape
    _, oh, ow, oc = p.y.shape
    (kh, kw), (sy, sx), (dy, dx) = p.kernel, p.stride, p.dilation
    lanes, pixels = sched.lanes, sched.pixels
    blocks = _blocks(oc, lanes)
    g = dot.group
    groups = _blocks(ic, g)
    # [block][ky][kx][channel group][lane][channel in group]
    w = np.zeros((blocks * lanes, kh, kw, groups * g), dot.dtype)
    w[:oc, :, :, :ic] = p.weights.array
    packed = np.ascontiguousarray(
        w.reshape(blocks, lanes, kh, kw, groups, g).transpose(0, 2, 3, 4, 1, 5)).reshape(-1)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_packed", packed)
    out = _Outputs(p, lanes, blocks * lanes, dot.input_shift)
    # The copy widens int8 to the step's type where the step reads wider values (vpmaddwd).
    src = _Source(p, groups * g, dot.dtype, always=dot.dtype != p.dtype)
    rows, cols, chans = (src.rows, src.cols, src.channels) if src.copy else (ih, iw, ic)
    term = p.term if out.floating else _int8_term

    with kernel(func_name) as k:
        specs = [("input", p.x.shape, p.dtype), ("weights", packed.shape, dot.dtype),
                 *out.specs]
        if src.copy:
            specs.append(("padded", (n * rows * cols * chans,), dot.dtype))
        X, W, B, *rest, Y, phase, begin, end = buffer_args(
            *specs, ("output", (n * oh * ow * oc,), p.dtype), rows=True)
        tables, pad = rest[:len(out.tables)], rest[len(out.tables):]
        compute = copy_then_compute(src.copy, phase,
                                    lambda: src.fill(X, pad[0], p, begin, end))
        # The input (or its copy) seen as int32 words: one word is one group of channels.
        data = pad[0] if src.copy else X
        source = (T.decl_buffer((n * rows * cols * groups,), "int32", data=data.data)
                  if g > 1 else T.decl_buffer((n * rows * cols * chans,), data.dtype,
                                              data=data.data))

        def read(b, y, x, c):
            return source[((b * rows + y) * cols + x) * groups + c]
        acc = T.alloc_buffer((pixels * lanes,), p.accumulator)
        value = None if out.floating else scalar("value")

        def tile(b, oy, ox0, count):
            with loop("block", blocks) as nb:
                for r in range(count):
                    with _vector(lanes) as v:
                        store(acc, out.start(B, nb * lanes + v), r * lanes + v)
                with loop("ky", kh) as ky, loop("kx", kw) as kx, loop("group", groups) as cg:
                    wbase = (((nb * kh + ky) * kw + kx) * groups + cg) * lanes * g
                    for r in range(count):
                        word = read(b, oy * sy + ky * dy, (ox0 + r) * sx + kx * dx, cg)
                        dot.update(acc, r * lanes, lanes, W, wbase, word, term)
                for r in range(count):
                    out.emit(Y, B, tables, acc, r * lanes, nb,
                             ((b * oh + oy) * ow + ox0 + r) * oc, value)

        with compute, loop("row", end, begin) as t:
            b, oy = tirx.floordiv(t, oh), tirx.floormod(t, oh)
            for_each_tile(ow, pixels, lambda ox, count: tile(b, oy, ox, count), "ox")

    consts = (weights, out.bias, *out.tables, *((src.scratch,) if src.copy else ()))
    kind = "float32 cpu" if out.floating else "cpu"
    step = p.step(k.func, func_name,
                  notes=f"{kind} ({dot.name}): {lanes} channels x {pixels} pixels per tile"
                        + (", padded copy" if src.copy else "") + out.note, constants=consts)
    return replace(step, row_phases=(*((src.total_rows,) if src.copy else ()), n * oh))


def _depthwise(p: ConvPlan, func_name: str, sched: Schedule) -> Step:
    """A depthwise convolution (multiplier 1): channels in the vector lanes, one input row of
    channels times one row of weights per tap, taps unrolled."""
    n, ih, iw, ic = p.x.shape
    _, oh, ow, oc = p.y.shape
    (kh, kw), (sy, sx), (dy, dx) = p.kernel, p.stride, p.dilation
    lanes = sched.lanes
    blocks = _blocks(ic, lanes)
    channels = blocks * lanes
    w = np.zeros((kh, kw, channels), p.weights.dtype)
    w[:, :, :oc] = p.weights.array.reshape(kh, kw, oc)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_padded", w.reshape(-1))
    out = _Outputs(p, lanes, channels)
    src = _Source(p, channels, p.dtype)
    rows, cols = (src.rows, src.cols) if src.copy else (ih, iw)
    term = p.term if out.floating else _int8_term

    with kernel(func_name) as k:
        specs = [("input", p.x.shape, p.dtype), ("weights", (kh, kw, channels), p.dtype),
                 *out.specs]
        if src.copy:
            specs.append(("padded", (n * rows * cols * channels,), p.dtype))
        X, W, B, *rest, Y, phase, begin, end = buffer_args(
            *specs, ("output", (n * oh * ow * oc,), p.dtype), rows=True)
        tables, pad = rest[:len(out.tables)], rest[len(out.tables):]
        compute = copy_then_compute(src.copy, phase,
                                    lambda: src.fill(X, pad[0], p, begin, end))
        if src.copy:
            source = pad[0]

            def read(b, y, x, c):
                return source[((b * rows + y) * cols + x) * channels + c]
        else:
            def read(b, y, x, c):
                return X[b, y, x, c]
        acc = T.alloc_buffer((lanes,), p.accumulator)
        value = None if out.floating else scalar("value")
        with compute, loop("row", end, begin) as t, loop("ox", ow) as ox, \
                loop("block", blocks) as nb:
            b, oy = tirx.floordiv(t, oh), tirx.floormod(t, oh)
            with _vector(lanes) as v:
                store(acc, out.start(B, nb * lanes + v), v)
            for ky in range(kh):
                for kx in range(kw):
                    with _vector(lanes) as v:
                        c = nb * lanes + v
                        xv = read(b, oy * sy + ky * dy, ox * sx + kx * dx, c)
                        store(acc, acc[v] + term(xv, W[ky, kx, c]), v)
            out.emit(Y, B, tables, acc, 0, nb, ((b * oh + oy) * ow + ox) * oc, value)

    consts = (weights, out.bias, *out.tables, *((src.scratch,) if src.copy else ()))
    kind = "float32 cpu" if out.floating else "cpu"
    step = p.step(k.func, func_name, notes=f"{kind}: {lanes} channels per vector"
                  + (", padded copy" if src.copy else "") + out.note, constants=consts)
    return replace(step, row_phases=(*((src.total_rows,) if src.copy else ()), n * oh))


# A fully connected layer shares its tiles over the threads from this many MACs: below, waking
# the pool costs more than the layer (ad01's 640x128 layers, 82 K MACs, about a microsecond
# each: the whole model went from 2.5 to 3.2 us at 2 threads when they were shared).
THREAD_MIN_MACS = 1 << 19


def lower_fully_connected_cpu(op: Operator, graph: Graph, func_name: str,
                              scratch: bool = True, isa: str = "cpu",
                              tuning: Tuning | None = None) -> Step | None:
    """FULLY_CONNECTED's Linux CPU schedule, int8 and float32 (:mod:`.fully_connected` says
    what it computes): units in the vector lanes, weights packed ``[block][depth group][lane]
    [value in group]``, ``tile_blocks`` blocks of lanes per pass so each input group is built
    once for all of them; int8 groups feed the kernel set's dot-product step."""
    del scratch  # never needs any
    p = plan_fully_connected(op, graph)
    if p.dtype not in ("int8", "float32"):
        return None
    dot = (dot_step(isa, p.bias.array, p.weights.array) if p.dtype == "int8"
           else FLOAT_STEP)
    batches, units, depth = p.batches, p.units, p.depth
    sched = schedule_for(op, graph, isa, units, dot.width, tuning)
    lanes, tile_blocks = sched.lanes, sched.blocks
    blocks = _blocks(units, lanes)
    g = dot.group
    groups = _blocks(depth, g)
    w = np.zeros((blocks * lanes, groups * g), dot.dtype)
    w[:units, :depth] = p.weights.array
    packed = np.ascontiguousarray(
        w.reshape(blocks, lanes, groups, g).transpose(0, 2, 1, 3)).reshape(-1)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_packed", packed)
    start = (shifted_bias(p.bias.array, p.weights.array, dot.input_shift) if dot.input_shift
             else p.bias.array)
    bias = Constant(f"{prefix}_bias_padded", _padded(start, blocks * lanes))
    # Threads share (batch, tile) rows where the layer is worth waking them for.
    full = blocks // tile_blocks
    tiles = full + blocks % tile_blocks
    threads = batches * tiles >= 2 and batches * units * depth >= THREAD_MIN_MACS
    with kernel(func_name) as k:
        specs = [("input", (batches, depth), p.dtype), ("weights", packed.shape, dot.dtype),
                 ("bias", (blocks * lanes,), bias.dtype)]
        if p.tables:
            specs += [("multiplier", (units,), "int32"), ("shift", (units,), "int32")]
        bufs = buffer_args(*specs, ("output", (batches, units), p.dtype), rows=threads)
        X, W, B = bufs[:3]
        tables, Y = bufs[3:len(specs)], bufs[len(specs)]
        span = bufs[len(specs) + 1:]
        acc = T.alloc_buffer((tile_blocks * lanes,), p.accumulator)
        # Requantization runs in place: on a scalar copy, not in the vector accumulators.
        value = scalar("value") if p.requantizes else None

        def tile(b, nb0, count):
            """Blocks ``nb0 .. nb0 + count`` together: each input group is built once for
            all of them."""
            for j in range(count):
                with _vector(lanes) as v:
                    store(acc, p.initial(B[(nb0 + j) * lanes + v]), j * lanes + v)
            with loop("group", groups) as cg:
                # Past the depth the packed weights are zero: any in-bounds value will do.
                word = dot.word([X[b, cg] if g == 1 else X[b, tirx.min(cg * g + j, depth - 1)]
                                 for j in range(g)])
                for j in range(count):
                    dot.update(acc, j * lanes, lanes, W,
                               ((nb0 + j) * groups + cg) * lanes * g, word, p.term)
            for j in range(count):
                with loop("lane", lanes) as v, when((nb0 + j) * lanes + v < units):
                    o = (nb0 + j) * lanes + v
                    if value is None:
                        p.emit_output(Y, (b, o), acc, j * lanes + v, o, B, tables)
                    else:
                        store(value, acc[j * lanes + v])
                        p.emit_output(Y, (b, o), value, 0, o, B, tables)

        if threads:  # a row is one tile of one batch; the blocks left over are a row each
            with loop("row", span[2], span[1]) as row:
                b, t = tirx.floordiv(row, tiles), tirx.floormod(row, tiles)
                if tiles == full:
                    tile(b, t * tile_blocks, tile_blocks)
                elif full == 0:
                    tile(b, t, 1)
                else:
                    with T.If(t < full):
                        with T.Then():
                            tile(b, t * tile_blocks, tile_blocks)
                        with T.Else():
                            tile(b, full * tile_blocks + t - full, 1)
        else:
            with loop("b", batches) as b:
                for_each_tile(blocks, tile_blocks, lambda nb, count: tile(b, nb, count),
                              "block")
    kind = "cpu" if p.dtype == "int8" else "float32 cpu"
    step = p.step(k.func, func_name,
                  f"{kind} ({dot.name}): {lanes} units per vector, {tile_blocks} blocks per tile"
                  + (", tiles over threads" if threads else ""),
                  constants=(weights, bias, *(p.tables or ())))
    return replace(step, row_phases=(batches * tiles,)) if threads else step
