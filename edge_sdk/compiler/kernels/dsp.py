"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED for Cortex-M cores with the DSP extension.

Same integers as the portable kernels (same ``Prepare`` plans), computed with dual 16-bit
multiply-accumulates (SMLAD: two MACs per instruction). Specialised per layer at compile time:

- **Weights** are sign-extended to 16 bits and reordered into the exact order the inner loop
  reads (``pack_q15``), so nothing is unpacked at run time. This doubles their flash.
- **Convolutions** (any kernel size, stride, dilation, padding) gather two output pixels at a
  time into a small im2col scratch in the arena (q15 pairs; padding taps read the input zero
  point, whose contribution is folded into the bias), then ``edge_gemm_2x2`` computes two pixels
  x two output channels per pass: each loaded value feeds two SMLADs.
- **Depthwise** convolutions with channels in fours: one word load brings four channels, SXTB16
  splits them, SMLABB/SMLATT accumulate; interior pixels take a branch-free path, border pixels
  test each tap.
- **Fully connected**: four output rows at a time share each expanded input word.
- **Requantization** uses SMMULR/SMMLA (``edge_requant_dr``/``_sr``) where the compile-time
  bounds allow it (right shift 1..31, accumulator below 2^30), else TFLite's 64-bit form.

Anything outside these shapes (odd channel counts for depthwise, depth multipliers, FC depths not
a multiple of four) returns ``None`` and keeps the portable kernel, which is always correct.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib.resources import files

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.gemmlowp import mbqm
from edge_sdk.compiler.kernels.common import scale, zero_point
from edge_sdk.compiler.kernels.conv import ConvPlan, plan_conv2d
from edge_sdk.compiler.kernels.elementwise import (
    LEFT_SHIFT,
    add_multipliers,
    binary_operands,
    lower_add,
)
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier,
    emit_multiply_by_quantized_multiplier_single_rounding,
)
from edge_sdk.compiler.kernels.fully_connected import FullyConnectedPlan, plan_fully_connected
from edge_sdk.compiler.kernels.tir import (
    i32,
    in_range,
    kernel,
    local_array,
    loop,
    loop_nest,
    row_major_strides,
    store,
    strided_offset,
    when,
)
from edge_sdk.compiler.program import Constant, Scratch, Step, TensorArg
from edge_sdk.compiler.quantization import accumulator_bound, activation_range
from edge_sdk.ir import Graph, Operator

# The C side of these kernels, printed once into every model compiled for a DSP core.
MICROKERNELS = files("edge_sdk.compiler.kernels").joinpath("edge_dsp.h").read_text(encoding="utf-8")

# For k = 4g + j the q15 slot is 4g + _SLOT[j]: SXTB16 yields (x0, x2), its rotation (x1, x3).
_SLOT = (0, 2, 1, 3)


def pack_q15(w: np.ndarray) -> np.ndarray:
    """``[..., K]`` int8 -> int32 words of q15 pairs in SXTB16 order, K padded with zeros to 4."""
    k = w.shape[-1]
    kp = -(-k // 4) * 4
    padded = np.zeros((*w.shape[:-1], kp), dtype=np.int16)
    padded[..., :k] = w
    groups = padded.reshape(*w.shape[:-1], kp // 4, 4)[..., [0, 2, 1, 3]]
    return np.ascontiguousarray(groups).reshape(*w.shape[:-1], kp).view(np.int32)


def _slot(col: int, k: int) -> int:
    """Where value k of pixel ``col`` goes in the two-pixel im2col scratch (int16 index)."""
    return (k // 4) * 8 + col * 4 + _SLOT[k % 4]


def call(name: str, *args) -> tirx.PrimExpr:
    return T.call_extern("int32", name, *args)


def fast_requant(mults: np.ndarray, shifts: np.ndarray, acc_bound: int, double: bool) -> bool:
    """May ``edge_requant_dr`` (double) / ``edge_requant_sr`` (single rounding) be used?

    Both need a right shift (1..31; single rounding 2..31) and a positive multiplier; double
    rounding doubles the accumulator, so it must stay below 2^30."""
    right = -shifts.astype(np.int64)
    if np.any(mults <= 0) or np.any(right < (1 if double else 2)) or np.any(right > 31):
        return False
    return not double or acc_bound < (1 << 30)


def emit_requant_store(acc, j: int, dst, index, mult, shift, fast: bool, double: bool,
                       output_zp: int, act: tuple[int, int]) -> None:
    """Requantize ``acc[j]`` with TFLite's rounding and store it as int8 at ``dst[index]``
    (multiplier and shift as TFLite has them: ints, or loads from per-channel tables).

    Each accumulator slot is requantized in place: TVM's C printer reuses a ``min``/``max``
    operand by its text, so one scratch scalar shared by several outputs would read stale values.
    """
    if fast:
        e = i32(0) - shift
        if double:
            store(acc, call("edge_requant_dr", acc[j], mult, e, i32(1) << (e - 1)), j)
        else:
            store(acc, call("edge_requant_sr", acc[j], mult, e - 1, i32(1) << (e - 2)), j)
    else:
        emit = (emit_multiply_by_quantized_multiplier if double
                else emit_multiply_by_quantized_multiplier_single_rounding)
        emit(acc, mult, shift, at=j)
    store(dst, tirx.Cast("int8", call("edge_clamp_s8", acc[j] + output_zp, *act)), index)


@dataclass(frozen=True)
class Requantization:
    """How one layer turns int32 accumulators into int8 outputs, decided at compile time.

    Fast form: per output channel one row ``(multiplier, right shift, rounding constant)`` read
    by ``edge_requant_dr``/``edge_requant_sr`` (SMMULR/SMMLA), with the output zero point folded
    into the rounding constant where that cannot overflow (``zp << e`` is a multiple of ``2^e``,
    so adding it before the shift adds ``zp`` after it). Per-tensor layers get the three numbers
    as constants in the code. Otherwise TFLite's 64-bit arithmetic from the multiplier and shift
    tables. Either way: ``edge_clamp_s8`` (SSAT, plus one compare for a narrower activation).
    """

    double: bool
    fast: bool
    folded: bool
    zp: int
    act: tuple[int, int]
    rows: np.ndarray = field(repr=False)  # [channels, 3] int32: fast form
    mults: np.ndarray = field(repr=False)  # TFLite's per-channel (multiplier, shift): slow form
    shifts: np.ndarray = field(repr=False)
    per_tensor: bool
    prefix: str

    @staticmethod
    def plan(prefix: str, mults: np.ndarray, shifts: np.ndarray, zp: int, act: tuple[int, int],
             double: bool, acc_bound: int, channels: int) -> Requantization:
        per_tensor = len(mults) == 1
        pad = 0 if per_tensor else channels - len(mults)
        mults = np.concatenate([mults, np.full(pad, 1 << 30)]).astype(np.int64)
        shifts = np.concatenate([shifts, np.full(pad, -2)]).astype(np.int64)
        fast = fast_requant(mults, shifts, acc_bound, double)
        e = -shifts
        if fast and double:  # (x + (x >> 31) + 2^(e-1) [+ zp << e]) >> e, |x| <= acc_bound
            shift, rounding, room = e, 1 << (e - 1), acc_bound + 1
        elif fast:  # SMMLA(acc, m, 2^(e-2) [+ zp << (e-1)]) >> (e-1), |high word| < 2^31 / 2
            shift, rounding, room = e - 1, 1 << (e - 2), 1 << 30
        else:
            shift, rounding, room = e, np.zeros_like(e), 0
        with_zp = rounding + (zp << shift) if fast else rounding
        folded = bool(fast and np.all(np.abs(with_zp) + room < (1 << 31)))
        rows = np.stack([mults, shift, with_zp if folded else rounding], axis=1).astype(np.int32)
        return Requantization(double, fast, folded, zp, act, rows, mults.astype(np.int32),
                              shifts.astype(np.int32), per_tensor, prefix)

    @property
    def constants(self) -> tuple[Constant, ...]:
        """The tables the kernel takes (after its bias), in parameter order."""
        if self.per_tensor:
            return ()
        if self.fast:
            return (Constant(f"{self.prefix}_requant", self.rows.reshape(-1)),)
        return (Constant(f"{self.prefix}_multiplier", self.mults),
                Constant(f"{self.prefix}_shift", self.shifts))

    @property
    def params(self) -> list[tuple[str, str]]:
        return [(c.name.removeprefix(f"{self.prefix}_"), "int32") for c in self.constants]

    def declare(self, handles: list) -> list[tirx.Buffer]:
        return [T.decl_buffer((c.array.size,), "int32", data=h)
                for c, h in zip(self.constants, handles, strict=True)]

    def emit(self, tables: list[tirx.Buffer], acc, j: int, dst, index, c) -> None:
        """``dst[index] = requantize(acc[j])`` for output channel ``c``."""
        if not self.fast:
            mult, shift = ((int(self.mults[0]), int(self.shifts[0])) if self.per_tensor
                           else (tables[0][c], tables[1][c]))
            emit_requant_store(acc, j, dst, index, mult, shift, False, self.double, self.zp,
                               self.act)
            return
        if self.per_tensor:
            m, shift, rounding = (int(v) for v in self.rows[0])
        else:
            q = tables[0]
            m, shift, rounding = q[c * 3], q[c * 3 + 1], q[c * 3 + 2]
        helper = "edge_requant_dr" if self.double else "edge_requant_sr"
        value = call(helper, acc[j], m, shift, rounding)
        if not self.folded:
            value = value + self.zp
        store(dst, tirx.Cast("int8", call("edge_clamp_s8", value, *self.act)), index)

    @property
    def note(self) -> str:
        if not self.fast:
            return "64-bit requantization"
        how = "SMMULR" if self.double else "SMMLA"
        return f"{how} requantization{', zero point folded' if self.folded else ''}"


def _conv_tables(p: ConvPlan, channels: int, bias: np.ndarray, weights_oc_k: np.ndarray
                 ) -> tuple[Constant, Requantization]:
    """The bias (padded to ``channels``) and the requantization of a convolution."""
    prefix = f"l{p.op.index}"
    padded = np.concatenate([bias, np.zeros(channels - len(bias), np.int64)]).astype(np.int32)
    rq = Requantization.plan(prefix, p.multiplier.array, p.shift.array, p.output_zp, p.act,
                             True, accumulator_bound(weights_oc_k, bias), channels)
    return Constant(f"{prefix}_bias", padded), rq


def channels_in_fours(p: ConvPlan) -> bool:
    """Input channels a multiple of four: one word load brings four of them."""
    return p.x.shape[3] % 4 == 0


def one_channel_per_input(p: ConvPlan) -> bool:
    """A depthwise convolution with depth multiplier 1."""
    return p.mult == 1


def select_conv(p: ConvPlan, scratch: bool) -> str | None:
    """The DSP convolution variant for ``p``, or None for the portable kernel. ``scratch=False``
    forbids the im2col buffer (the compiler asks for that where the buffer would make the
    arena larger)."""
    if p.depthwise:
        return "depthwise" if one_channel_per_input(p) and channels_in_fours(p) else None
    if scratch:
        return "im2col"
    return "direct" if channels_in_fours(p) else None


def lower_conv2d_dsp(op: Operator, graph: Graph, func_name: str,
                     scratch: bool = True) -> Step | None:
    """The DSP convolution for ``op`` (:func:`select_conv`), or None."""
    p = plan_conv2d(op, graph)
    variant = select_conv(p, scratch)
    if variant is None:
        return None
    build = {"depthwise": _depthwise, "im2col": _conv_im2col, "direct": _conv_direct}[variant]
    return build(p, func_name)


def _conv_direct(p: ConvPlan, func_name: str) -> Step:
    """Convolution without scratch: per pixel, four output channels at a time, each tap's input
    channels read in place by ``edge_fc_4rows``; padding taps read a ``const`` row of zero
    points in flash."""
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = p.kernel
    taps = kh * kw
    w = p.weights.array.reshape(oc, taps * ic)
    bias = p.folded_bias()
    blocks = -(-oc // 4)
    wpad = np.zeros((blocks * 4, taps, ic), np.int8)
    wpad[:oc] = w.reshape(oc, taps, ic)
    # [oc block][tap][ic/4][row 4][2 words]: what edge_fc_4rows reads, one tap per call.
    packed = pack_q15(wpad).reshape(blocks, 4, taps, ic // 4, 2).transpose(0, 2, 3, 1, 4)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_q15", np.ascontiguousarray(packed).reshape(-1))
    bias_c, rq = _conv_tables(p, blocks * 4, bias, w)
    padded = not p.fold  # some tap reads padding (regular convolutions fold only otherwise)
    zp_row = Constant(f"{prefix}_zero_points", np.full(ic, p.input_zp, np.int8))
    per_tap = (ic // 4) * 8

    with kernel(func_name) as kf:
        specs = [("input", "int8"), ("weights", "int32"), ("bias", "int32"), *rq.params]
        if padded:
            specs.append(("zero_points", "int8"))
        handles = [T.arg(nm, T.handle(dt)) for nm, dt in (*specs, ("output", "int8"))]
        X = T.decl_buffer((n * ih * iw * ic,), "int8", data=handles[0])
        W = T.decl_buffer((packed.size,), "int32", data=handles[1])
        B = T.decl_buffer((blocks * 4,), "int32", data=handles[2])
        tables = rq.declare(handles[3:3 + len(rq.params)])
        Z = T.decl_buffer((ic,), "int8", data=handles[-2]) if padded else None
        Y = T.decl_buffer((n * oh * ow * oc,), "int8", data=handles[-1])
        acc = local_array("acc", 4)
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, \
                loop("blk", blocks) as blk:
            for r in range(4):
                store(acc, B[blk * 4 + r], r)
            with loop("ky", kh) as ky, loop("kx", kw) as kx:
                iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0]
                ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1]
                wrow = tirx.address_of(W[(blk * taps + ky * kw + kx) * per_tap])

                def tap(row) -> None:
                    T.evaluate(call("edge_fc_4rows", row, wrow, ic // 4,
                                    tirx.address_of(acc[0])))

                inside_row = tirx.address_of(X[((b * ih + iy) * iw + ix) * ic])
                if Z is None:
                    tap(inside_row)
                else:
                    with T.If(tirx.all(in_range(iy, ih), in_range(ix, iw))):
                        with T.Then():
                            tap(inside_row)
                        with T.Else():
                            tap(tirx.address_of(Z[0]))
            for r in range(4):
                c = blk * 4 + r
                with when(c < oc) if oc % 4 else nullcontext():
                    rq.emit(tables, acc, r, Y, ((b * oh + oy) * ow + ox) * oc + c, c)
    notes = ("DSP without im2col (no free arena for it at this layer): 4 channels x 4 inputs per "
             f"pass (edge_fc_4rows) per tap; {rq.note}")
    return p.step(kf.func, func_name, notes,
                  (weights, bias_c, *rq.constants, *((zp_row,) if padded else ())))


def _conv_im2col(p: ConvPlan, func_name: str) -> Step:
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = p.kernel
    w = p.weights.array.reshape(oc, kh * kw * ic)
    k = w.shape[1]
    kp = -(-k // 8) * 8  # the micro-kernel takes eight values per pass
    oc2 = -(-oc // 2)
    bias = p.folded_bias()
    wpad = np.zeros((oc2 * 2, kp), np.int8)
    wpad[:oc, :k] = w
    # [oc pair][K/4][row 2][2 words]: the order edge_gemm_2x2 reads.
    packed = pack_q15(wpad).reshape(oc2, 2, kp // 4, 2).transpose(0, 2, 1, 3)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_q15", np.ascontiguousarray(packed).reshape(-1))
    bias_c, rq = _conv_tables(p, oc2 * 2, bias, w)
    scratch = Scratch(f"{prefix}_im2col", (kp,), "int32")  # 2 pixels x kp q15 values
    npix = oh * ow
    zp_pair = (p.input_zp & 0xFFFF) | ((p.input_zp & 0xFFFF) << 16)
    if zp_pair >= 1 << 31:
        zp_pair -= 1 << 32
    vector_taps = ic % 4 == 0

    with kernel(func_name) as kf:
        handles = [T.arg(name, T.handle(dt)) for name, dt in (
            ("input", "int8"), ("weights", "int32"), ("bias", "int32"), *rq.params,
            ("im2col", "int32"), ("output", "int8"))]
        hx, hw, hb, ha, hy = (handles[0], handles[1], handles[2], handles[-2], handles[-1])
        X = T.decl_buffer((n * ih * iw * ic,), "int8", data=hx)
        W = T.decl_buffer((weights.array.size,), "int32", data=hw)
        B = T.decl_buffer((oc2 * 2,), "int32", data=hb)
        tables = rq.declare(handles[3:-2])
        A = T.decl_buffer((kp,), "int32", data=ha)
        A16 = T.decl_buffer((kp * 2,), "int16", data=ha)
        Y = T.decl_buffer((n * npix * oc,), "int8", data=hy)
        acc = local_array("acc", 4)
        with loop("b", n) as b, loop("q", -(-npix // 2)) as q:
            # Gather the two pixels' receptive fields (the last pixel twice if npix is odd).
            for col in range(2):
                pix = tirx.min(q * 2 + col, npix - 1)
                oy, ox = tirx.floordiv(pix, ow), tirx.floormod(pix, ow)

                def tap_origin(ky, kx, oy=oy, ox=ox):
                    iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0]
                    ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1]
                    return iy, ix, tirx.all(in_range(iy, ih), in_range(ix, iw))

                if vector_taps:  # ic % 4 == 0: whole words, each tap starts a group of 4
                    with loop(f"ky{col}", kh) as ky, loop(f"kx{col}", kw) as kx:
                        iy, ix, inside = tap_origin(ky, kx)
                        base = (ky * kw + kx) * ic + col * 2
                        with T.If(inside):
                            with T.Then():
                                src = ((b * ih + iy) * iw + ix) * ic
                                T.evaluate(call("edge_expand_s8", tirx.address_of(X[src]),
                                                tirx.address_of(A[base]), ic // 4, 4))
                            with T.Else(), loop(f"g{col}", ic // 4) as g:
                                store(A, i32(zp_pair), base + g * 4)
                                store(A, i32(zp_pair), base + g * 4 + 1)
                elif k <= 128:  # small receptive field: every slot a constant, one test per tap
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix, inside = tap_origin(ky, kx)
                            slots = [_slot(col, (ky * kw + kx) * ic + c) for c in range(ic)]
                            with T.If(inside):
                                with T.Then():
                                    src = ((b * ih + tirx.Select(inside, iy, 0)) * iw
                                           + tirx.Select(inside, ix, 0)) * ic
                                    for c, slot in enumerate(slots):
                                        store(A16, tirx.Cast("int16", X[src + c]), slot)
                                with T.Else():
                                    for slot in slots:
                                        store(A16, tirx.IntImm("int16", p.input_zp), slot)
                else:
                    with loop(f"ky{col}", kh) as ky, loop(f"kx{col}", kw) as kx, \
                            loop(f"c{col}", ic) as c:
                        iy, ix, inside = tap_origin(ky, kx)
                        kk = (ky * kw + kx) * ic + c
                        slot = (tirx.floordiv(kk, 4) * 8 + col * 4
                                + tirx.Select(tirx.floormod(kk, 4) == 1, 2,
                                              tirx.Select(tirx.floormod(kk, 4) == 2, 1,
                                                          tirx.floormod(kk, 4))))
                        src = ((b * ih + iy) * iw + ix) * ic + c
                        value = tirx.Select(inside, X[tirx.Select(inside, src, 0)],
                                            tirx.IntImm("int8", p.input_zp))
                        store(A16, tirx.Cast("int16", value), slot)
                for kk in range(k, kp):  # zero the padding of K (compile-time positions)
                    store(A16, tirx.IntImm("int16", 0), _slot(col, kk))
            with loop("cp", oc2) as cp:
                for j in range(4):  # acc = {p0c0, p0c1, p1c0, p1c1}
                    store(acc, B[cp * 2 + j % 2], j)
                T.evaluate(call("edge_gemm_2x2", tirx.address_of(A[0]),
                                tirx.address_of(W[cp * (kp // 4) * 4]), kp // 8,
                                tirx.address_of(acc[0])))
                for j in range(4):
                    col, row = divmod(j, 2)
                    c = cp * 2 + row
                    pix = q * 2 + col
                    conds = ([pix < npix] if npix % 2 else []) + ([c < oc] if oc % 2 else [])
                    with when(tirx.all(*conds)) if conds else nullcontext():
                        rq.emit(tables, acc, j, Y, (b * npix + pix) * oc + c, c)
    notes = (f"DSP: im2col of 2 pixels ({kp} q15 values each) + edge_gemm_2x2 (SMLAD, 2 pixels x "
             f"2 channels); {rq.note}")
    return p.step(kf.func, func_name, notes, (weights, bias_c, *rq.constants, scratch))


def _depthwise(p: ConvPlan, func_name: str) -> Step:
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = p.kernel
    taps = kh * kw
    w = p.weights.array.reshape(taps, oc)
    bias = p.bias.array.astype(np.int64)  # depthwise plans always fold the input offset
    # [channel group][tap][2 words]: (w_c0, w_c2), (w_c1, w_c3) match SXTB16's split of a word.
    groups = w.reshape(taps, oc // 4, 4).transpose(1, 0, 2)
    packed = pack_q15(groups)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_q15", np.ascontiguousarray(packed).reshape(-1))
    bias_c, rq = _conv_tables(p, oc, bias, w.T)
    zp = p.input_zp & 0xFF
    zp_word = zp | zp << 8 | zp << 16 | zp << 24
    if zp_word >= 1 << 31:
        zp_word -= 1 << 32
    sy, sx = p.stride
    dy, dx = p.dilation
    py, px = p.pad
    # Output rows/columns whose every tap is inside the image.
    (y_lo, y_hi), (x_lo, x_hi) = p.interior()

    with kernel(func_name) as kf:
        handles = [T.arg(name, T.handle(dt)) for name, dt in (
            ("input", "int8"), ("weights", "int32"), ("bias", "int32"), *rq.params,
            ("output", "int8"))]
        X = T.decl_buffer((n * ih * iw * ic,), "int8", data=handles[0])
        W = T.decl_buffer((packed.size,), "int32", data=handles[1])
        B = T.decl_buffer((oc,), "int32", data=handles[2])
        tables = rq.declare(handles[3:-1])
        Y = T.decl_buffer((n * oh * ow * oc,), "int8", data=handles[-1])
        acc = local_array("acc", 4)
        one = T.alloc_buffer((1,), "int32")
        IRBuilder.name("r", one)

        def taps_loop(b, oy, ox, g, checked: bool) -> None:
            for ky in range(kh):
                for kx in range(kw):
                    iy = oy * sy - py + ky * dy
                    ix = ox * sx - px + kx * dx
                    src = ((b * ih + iy) * iw + ix) * ic + g * 4
                    word = call("edge_ld_s8x4", tirx.address_of(X[src]))
                    if checked:
                        inside = tirx.all(in_range(iy, ih), in_range(ix, iw))
                        word = tirx.Select(inside, call(
                            "edge_ld_s8x4", tirx.address_of(X[tirx.Select(inside, src, 0)])),
                            i32(zp_word))
                    t = ky * kw + kx
                    we, wo = W[(g * taps + t) * 2], W[(g * taps + t) * 2 + 1]
                    store(one, word)
                    xe, xo = call("edge_sxtb16", one[0]), call("edge_sxtb16_ror8", one[0])
                    store(acc, call("edge_smlabb", xe, we, acc[0]), 0)
                    store(acc, call("edge_smlatt", xe, we, acc[2]), 2)
                    store(acc, call("edge_smlabb", xo, wo, acc[1]), 1)
                    store(acc, call("edge_smlatt", xo, wo, acc[3]), 3)

        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, \
                loop("g", oc // 4) as g:
            for j in range(4):
                store(acc, B[g * 4 + j], j)
            interior = tirx.all(oy >= y_lo, oy < y_hi, ox >= x_lo, ox < x_hi)
            with T.If(interior):
                with T.Then():
                    taps_loop(b, oy, ox, g, checked=False)
                with T.Else():
                    taps_loop(b, oy, ox, g, checked=True)
            for j in range(4):
                c = g * 4 + j
                rq.emit(tables, acc, j, Y, ((b * oh + oy) * ow + ox) * oc + c, c)
    notes = (f"DSP: 4 channels per word, SMLABB/SMLATT, interior rows {y_lo}..{y_hi - 1} and "
             f"columns {x_lo}..{x_hi - 1} without bounds tests; {rq.note}")
    return p.step(kf.func, func_name, notes, (weights, bias_c, *rq.constants))


def select_fully_connected(p: FullyConnectedPlan) -> str | None:
    """Four rows at a time where the depth is a multiple of four (one word, four inputs);
    int8 only."""
    return "rows4" if p.dtype == "int8" and p.depth % 4 == 0 else None


def lower_fully_connected_dsp(op: Operator, graph: Graph, func_name: str,
                              scratch: bool = True) -> Step | None:
    """FULLY_CONNECTED's DSP schedule (:mod:`.fully_connected` says what it computes): four
    units per ``edge_fc_4rows`` call over the whole depth, weights packed as q15 pairs in the
    order the micro-kernel reads them; the fast requantization where it is exact."""
    del scratch  # never needs any
    p = plan_fully_connected(op, graph)
    if select_fully_connected(p) is None:
        return None
    batches, units, depth = p.batches, p.units, p.depth
    blocks = -(-units // 4)
    w = np.zeros((blocks * 4, depth), np.int8)
    w[:units] = p.weights.array
    bias = p.bias.array
    mults, shifts = (p.tables[0].array, p.tables[1].array) if p.tables else (
        np.array([p.multiplier]), np.array([p.shift]))
    prefix = f"l{op.index}"
    rq = Requantization.plan(prefix, mults, shifts, p.output_zp, p.act, False,
                             accumulator_bound(p.weights.array, bias), blocks * 4)
    # [row block][D/4][row 4][2 words]: the order edge_fc_4rows reads.
    packed = pack_q15(w).reshape(blocks, 4, depth // 4, 2).transpose(0, 2, 1, 3)
    weights = Constant(f"{prefix}_weights_q15", np.ascontiguousarray(packed).reshape(-1))
    bias_c = Constant(f"{prefix}_bias", np.concatenate(
        [bias, np.zeros(blocks * 4 - units, np.int32)]).astype(np.int32))

    with kernel(func_name) as kf:
        names = [("input", "int8"), ("weights", "int32"), ("bias", "int32"), *rq.params]
        handles = [T.arg(nm, T.handle(dt)) for nm, dt in (*names, ("output", "int8"))]
        X = T.decl_buffer((batches * depth,), "int8", data=handles[0])
        W = T.decl_buffer((packed.size,), "int32", data=handles[1])
        B = T.decl_buffer((blocks * 4,), "int32", data=handles[2])
        tables = rq.declare(handles[3:-1])
        Y = T.decl_buffer((batches * units,), "int8", data=handles[-1])
        acc = local_array("acc", 4)
        with loop("b", batches) as b, loop("blk", blocks) as blk:
            for r in range(4):
                store(acc, B[blk * 4 + r], r)
            T.evaluate(call("edge_fc_4rows", tirx.address_of(X[b * depth]),
                            tirx.address_of(W[blk * (depth // 4) * 8]), depth // 4,
                            tirx.address_of(acc[0])))
            for r in range(4):
                o = blk * 4 + r
                with when(o < units) if units % 4 else nullcontext():
                    rq.emit(tables, acc, r, Y, b * units + o, o)
    notes = f"DSP: 4 rows x 4 inputs per pass (edge_fc_4rows, SMLAD); {rq.note}"
    return p.step(kf.func, func_name, notes, (weights, bias_c, *rq.constants))


TABLE_ENTRIES = 256  # one per int8 value


def lower_add_dsp(op: Operator, graph: Graph, func_name: str, scratch: bool = True) -> Step:
    """ADD (and SUB: its second table negated) with each input's rescaling looked up.

    TFLite scales each input on its own before the sum: ``MultiplyByQuantizedMultiplier((x -
    zp) << 20, m, shift)`` depends on one int8 value, so it is a 256-entry table made at compile
    time with the exact arithmetic (2 KB of flash for both). What remains per element is two
    lookups, an add, and the output's requantization.
    """
    del scratch  # never needs any
    if any(graph.tensor(t).is_constant for t in op.inputs[:2]):
        return lower_add(op, graph, func_name)  # a constant operand: the portable kernel
    a, b, y, out_shape, a_strides, b_strides = binary_operands(op, graph)
    if y.size < TABLE_ENTRIES:
        # Fewer elements than table entries: the 2 KB would outweigh what it saves (an unrolled
        # GRU's 144 gate ADDs of 64 elements each needed 288 KB of tables, more than its weights).
        return lower_add(op, graph, func_name)
    (m1, s1), (m2, s2), (mo, so) = add_multipliers(a, b, y, op.opcode == "SUB")
    tables = [np.array([mbqm((v - zero_point(t)) * (1 << LEFT_SHIFT), m, s)
                        for v in range(-128, 128)], np.int32)
              for t, (m, s) in ((a, (m1, s1)), (b, (m2, s2)))]
    bound = int(sum(np.abs(t.astype(np.int64)).max() for t in tables))
    act = activation_range(op.options["activation"], scale(y), zero_point(y))
    prefix = f"l{op.index}"
    rq = Requantization.plan(prefix, np.array([mo]), np.array([so]), zero_point(y), act, True,
                             bound, 1)
    table_a = Constant(f"{prefix}_input1_scaled", tables[0])
    table_b = Constant(f"{prefix}_input2_scaled", tables[1])

    with kernel(func_name) as kf:
        handles = [T.arg(nm, T.handle(dt)) for nm, dt in (
            ("input1", "int8"), ("input2", "int8"), ("input1_scaled", "int32"),
            ("input2_scaled", "int32"), ("output", "int8"))]
        A = T.decl_buffer((a.size,), "int8", data=handles[0])
        B = T.decl_buffer((b.size,), "int8", data=handles[1])
        TA = T.decl_buffer((256,), "int32", data=handles[2])
        TB = T.decl_buffer((256,), "int32", data=handles[3])
        Y = T.decl_buffer((y.size,), "int8", data=handles[4])
        acc = local_array("acc", 1)
        with loop_nest(out_shape) as idx:
            store(acc, TA[i32(A[strided_offset(idx, a_strides)]) + 128]
                  + TB[i32(B[strided_offset(idx, b_strides)]) + 128])
            rq.emit([], acc, 0, Y, strided_offset(idx, row_major_strides(out_shape)), 0)
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(a.index, b.index), outputs=(y.index,), func=kf.func, func_name=func_name,
        args=(TensorArg(a.index), TensorArg(b.index), table_a, table_b,
              TensorArg(y.index, writes=True)),
        macs=y.size,
        notes=f"input rescaling from two 256-entry tables; {rq.note}",
    )
