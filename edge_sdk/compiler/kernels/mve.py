"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED for Cortex-M cores with MVE (Helium).

Same integers as the portable kernels (same ``Prepare`` plans). Weights stay int8 (no flash
growth): ``VMLADAVA.S8`` multiplies sixteen int8 pairs and adds them to a 32-bit register.

- **Convolutions** compute two output pixels x four output channels per micro-kernel call, the
  activations read as int8 rows: in place for 1x1 convolutions; for larger kernels either
  gathered into an int8 im2col scratch (two pixels, where the arena has room: fewer, longer
  dot products) or tap by tap in place, padding taps reading a ``const`` row of zero points.
- **Depthwise** convolutions with channels in sixteens: four int32 lanes x four vectors per tap
  (``VMUL``/``VADD``: MVE has no integer vector multiply-accumulate), interior pixels in one
  call, border pixels tap by tap.
- **Fully connected**: four output rows per call over the whole depth.
- **Requantization** of convolution outputs: four channels at once (``VQRDMULH``, rounding
  ``VRSHL``), bit-identical to TFLite's double rounding for right shifts 1..31; otherwise, and
  for FULLY_CONNECTED's single rounding, the DSP helpers (the M55 has the DSP extension too).

Shapes outside these (a depth multiplier, depthwise channels not in sixteens) return ``None``:
the DSP kernels, then the portable ones, take them.
"""

from __future__ import annotations

from contextlib import nullcontext
from importlib.resources import files

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.conv import ConvPlan, plan_conv2d
from edge_sdk.compiler.kernels.dsp import (
    accumulator_bound,
    call,
    emit_requant_store,
    fast_requant,
    folded_bias,
)
from edge_sdk.compiler.kernels.fully_connected import plan_fully_connected
from edge_sdk.compiler.kernels.tir import in_range, kernel, loop, store, when
from edge_sdk.compiler.program import Constant, Scratch, Step, TensorArg
from edge_sdk.frontend.tflite import Graph, Operator

MICROKERNELS = files("edge_sdk.compiler.kernels").joinpath("edge_mve.h").read_text()


def pack_rows16(w: np.ndarray) -> np.ndarray:
    """``[rows, K]`` int8 -> ``[rows/4][K/16][4][16]`` (both padded with zeros), flat."""
    rows, k = w.shape
    blocks, chunks = -(-rows // 4), -(-k // 16)
    padded = np.zeros((blocks * 4, chunks * 16), np.int8)
    padded[:rows, :k] = w
    return np.ascontiguousarray(
        padded.reshape(blocks, 4, chunks, 16).transpose(0, 2, 1, 3)).reshape(-1)


def vector_requant(mults: np.ndarray, shifts: np.ndarray) -> bool:
    """May ``edge_mve_requant4`` (double rounding) be used for these channels?"""
    right = -shifts.astype(np.int64)
    return bool(np.all(mults > 0) and np.all(right >= 1) and np.all(right <= 31))


def _tables(p: ConvPlan, bias: np.ndarray, channels: int, prefix: str):
    pad = channels - len(bias)

    def padded(a: np.ndarray, fill: int) -> np.ndarray:
        return np.concatenate([a.astype(np.int64), np.full(pad, fill)]).astype(np.int32)

    return (Constant(f"{prefix}_bias", padded(bias, 0)),
            Constant(f"{prefix}_multiplier", padded(p.multiplier.array, 1 << 30)),
            Constant(f"{prefix}_shift", padded(p.shift.array, -1)))


def _requantize_block(acc, base: int, Y, out_index, c0, oc: int, M, S, p: ConvPlan,
                      vector: bool, scalar_fast: bool) -> None:
    """Requantize ``acc[base..base+3]`` (channels c0..c0+3 of one pixel) into ``Y``."""
    if vector:
        n = tirx.min(oc - c0, 4) if oc % 4 else 4
        T.evaluate(call("edge_mve_requant4", tirx.address_of(acc[base]),
                        tirx.address_of(M[c0]), tirx.address_of(S[c0]), p.output_zp, p.act[0],
                        p.act[1], tirx.address_of(Y[out_index]), n))
        return
    for r in range(4):
        c = c0 + r
        with when(c < oc) if oc % 4 else nullcontext():
            emit_requant_store(acc, base + r, Y, out_index + r, M[c], S[c], scalar_fast, True,
                               p.output_zp, p.act)


def lower_conv2d_mve(op: Operator, graph: Graph, func_name: str,
                     scratch: bool = True) -> Step | None:
    p = plan_conv2d(op, graph)
    if p.depthwise:
        return _depthwise(p, func_name)
    one_by_one = p.kernel == (1, 1) and p.fold
    return _conv(p, func_name, im2col=scratch and not one_by_one)


def _conv(p: ConvPlan, func_name: str, im2col: bool) -> Step:
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = p.kernel
    taps = kh * kw
    k = taps * ic
    w = p.weights.array.reshape(oc, k)
    bias = folded_bias(p, w)
    blocks = -(-oc // 4)
    vector = vector_requant(p.multiplier.array, p.shift.array)
    scalar_fast = fast_requant(p.multiplier.array, p.shift.array, accumulator_bound(w, bias), True)
    if im2col:  # [oc block][K/16][4][16]
        packed, per_block = pack_rows16(w), -(-k // 16) * 64
    else:  # per tap: [oc block][tap][ic/16][4][16]
        per_tap = np.stack([pack_rows16(w[:, t * ic:(t + 1) * ic]).reshape(blocks, -1)
                            for t in range(taps)], axis=1)
        packed, per_block = per_tap.reshape(-1), per_tap.shape[2] * taps
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_mve", packed)
    bias_c, mult_c, shift_c = _tables(p, bias, blocks * 4, prefix)
    reads_padding = not p.fold
    extras: list = []
    if im2col:
        extras.append(Scratch(f"{prefix}_im2col", (2 * k,), "int8"))
    elif reads_padding:
        extras.append(Constant(f"{prefix}_zero_points", np.full(ic, p.input_zp, np.int8)))
    npix = oh * ow

    with kernel(func_name) as kf:
        names = [("input", "int8"), ("weights", "int8"), ("bias", "int32"),
                 ("multiplier", "int32"), ("shift", "int32")]
        if extras:
            names.append(("im2col" if im2col else "zero_points", "int8"))
        handles = [T.arg(nm, T.handle(dt)) for nm, dt in (*names, ("output", "int8"))]
        X = T.decl_buffer((n * ih * iw * ic,), "int8", data=handles[0])
        W = T.decl_buffer((packed.size,), "int8", data=handles[1])
        B, M, S = (T.decl_buffer((blocks * 4,), "int32", data=h) for h in handles[2:5])
        E = T.decl_buffer((2 * k if im2col else ic,), "int8", data=handles[5]) if extras else None
        Y = T.decl_buffer((n * npix * oc,), "int8", data=handles[-1])
        acc = T.alloc_buffer((8,), "int32")
        IRBuilder.name("acc", acc)

        def origin(pix):
            oy, ox = tirx.floordiv(pix, ow), tirx.floormod(pix, ow)
            return oy * p.stride[0] - p.pad[0], ox * p.stride[1] - p.pad[1]

        def tap_row(b, pix, ky, kx):
            y0, x0 = origin(pix)
            iy, ix = y0 + ky * p.dilation[0], x0 + kx * p.dilation[1]
            inside = tirx.all(in_range(iy, ih), in_range(ix, iw))
            return inside, ((b * ih + tirx.Select(inside, iy, 0)) * iw
                            + tirx.Select(inside, ix, 0)) * ic

        with loop("b", n) as b, loop("q", -(-npix // 2)) as q:
            pix0, pix1 = q * 2, tirx.min(q * 2 + 1, npix - 1)
            if im2col:
                assert E is not None
                for col, pix in enumerate((pix0, pix1)):
                    with loop(f"ky{col}", kh) as ky, loop(f"kx{col}", kw) as kx:
                        inside, src = tap_row(b, pix, ky, kx)
                        dst = col * k + (ky * kw + kx) * ic
                        with T.If(inside):
                            with T.Then():
                                T.evaluate(call("edge_mve_copy", tirx.address_of(E[dst]),
                                                tirx.address_of(X[src]), ic))
                            with T.Else():
                                T.evaluate(call("edge_mve_fill", tirx.address_of(E[dst]),
                                                p.input_zp, ic))
            with loop("blk", blocks) as blk:
                for j in range(8):
                    store(acc, B[blk * 4 + j % 4], j)
                wblock = blk * per_block
                if im2col:
                    T.evaluate(call("edge_mve_gemm_2x4", tirx.address_of(E[0]),
                                    tirx.address_of(E[k]), tirx.address_of(W[wblock]), k,
                                    tirx.address_of(acc[0])))
                else:
                    with loop("ky", kh) as ky, loop("kx", kw) as kx:
                        rows = []
                        for pix in (pix0, pix1):
                            inside, src = tap_row(b, pix, ky, kx)
                            rows.append((inside, tirx.address_of(X[src])))
                        wtap = tirx.address_of(
                            W[wblock + (ky * kw + kx) * (per_block // taps)])

                        def gemm(r0, r1):
                            T.evaluate(call("edge_mve_gemm_2x4", r0, r1, wtap, ic,
                                            tirx.address_of(acc[0])))

                        def pick(i: int, chosen: tuple) -> None:
                            """Each pixel's row, or the zero-point row for a padding tap."""
                            if i == len(rows):
                                gemm(*chosen)
                                return
                            inside, row = rows[i]
                            if E is None:
                                pick(i + 1, (*chosen, row))
                                return
                            with T.If(inside):
                                with T.Then():
                                    pick(i + 1, (*chosen, row))
                                with T.Else():
                                    pick(i + 1, (*chosen, tirx.address_of(E[0])))

                        pick(0, ())
                c0 = blk * 4
                _requantize_block(acc, 0, Y, (b * npix + pix0) * oc + c0, c0, oc, M, S, p,
                                  vector, scalar_fast)
                with when(q * 2 + 1 < npix) if npix % 2 else nullcontext():
                    _requantize_block(acc, 4, Y, (b * npix + pix0 + 1) * oc + c0, c0, oc, M,
                                      S, p, vector, scalar_fast)
    how = ("int8 im2col of 2 pixels" if im2col
           else "rows read in place" if not reads_padding and taps == 1
           else "tap by tap in place, padding taps read a zero-point row")
    notes = (f"MVE: VMLADAVA.S8, 2 pixels x 4 channels (edge_mve_gemm_2x4), {how}; "
             f"{'vector' if vector else 'scalar'} requantization")
    return Step(
        op_index=p.op.index, opcode=p.op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=kf.func, func_name=func_name,
        args=(TensorArg(x.index), weights, bias_c, mult_c, shift_c, *extras,
              TensorArg(y.index, writes=True)),
        macs=p.macs, notes=notes,
    )


def _depthwise(p: ConvPlan, func_name: str) -> Step | None:
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    if p.mult != 1 or ic % 16:
        return None
    kh, kw = p.kernel
    taps = kh * kw
    groups = oc // 16
    w = p.weights.array.reshape(taps, oc)
    bias = p.bias.array.astype(np.int64)  # depthwise plans always fold the input offset
    vector = vector_requant(p.multiplier.array, p.shift.array)
    scalar_fast = fast_requant(p.multiplier.array, p.shift.array,
                               accumulator_bound(w.T, bias), True)
    packed = np.ascontiguousarray(w.reshape(taps, groups, 16).transpose(1, 0, 2)).reshape(-1)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_mve", packed)
    bias_c, mult_c, shift_c = _tables(p, bias, oc, prefix)
    zp_row = Constant(f"{prefix}_zero_points", np.full(16, p.input_zp, np.int8))
    sy, sx = p.stride
    dy, dx = p.dilation
    py, px = p.pad
    y_lo, x_lo = -(-py // sy), -(-px // sx)
    y_hi = min(oh, (ih - 1 - (kh - 1) * dy + py) // sy + 1)
    x_hi = min(ow, (iw - 1 - (kw - 1) * dx + px) // sx + 1)

    border = y_lo > 0 or x_lo > 0 or y_hi < oh or x_hi < ow

    with kernel(func_name) as kf:
        specs = [("input", "int8"), ("weights", "int8"), ("bias", "int32"),
                 ("multiplier", "int32"), ("shift", "int32")]
        if border:
            specs.append(("zero_points", "int8"))
        handles = [T.arg(nm, T.handle(dt)) for nm, dt in (*specs, ("output", "int8"))]
        X = T.decl_buffer((n * ih * iw * ic,), "int8", data=handles[0])
        W = T.decl_buffer((packed.size,), "int8", data=handles[1])
        B, M, S = (T.decl_buffer((oc,), "int32", data=h) for h in handles[2:5])
        Z = T.decl_buffer((16,), "int8", data=handles[5]) if border else None
        Y = T.decl_buffer((n * oh * ow * oc,), "int8", data=handles[-1])
        acc = T.alloc_buffer((16,), "int32")
        IRBuilder.name("acc", acc)
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, \
                loop("g", groups) as g:
            y0, x0 = oy * sy - py, ox * sx - px
            wg = g * taps * 16
            def interior() -> None:
                src = ((b * ih + y0) * iw + x0) * ic + g * 16
                T.evaluate(call("edge_mve_dw16", tirx.address_of(X[src]), dy * iw * ic, dx * ic,
                                kh, kw, tirx.address_of(W[wg]), tirx.address_of(B[g * 16]),
                                tirx.address_of(acc[0])))

            def border_pixel(zrow) -> None:
                for j in range(16):
                    store(acc, B[g * 16 + j], j)
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = y0 + ky * dy, x0 + kx * dx
                        wt = tirx.address_of(W[wg + (ky * kw + kx) * 16])
                        with T.If(tirx.all(in_range(iy, ih), in_range(ix, iw))):
                            with T.Then():
                                src = ((b * ih + iy) * iw + ix) * ic + g * 16
                                T.evaluate(call("edge_mve_dw16_tap", tirx.address_of(X[src]),
                                                wt, tirx.address_of(acc[0])))
                            with T.Else():
                                T.evaluate(call("edge_mve_dw16_tap", zrow, wt,
                                                tirx.address_of(acc[0])))

            if Z is None:
                interior()
            else:
                with T.If(tirx.all(oy >= y_lo, oy < y_hi, ox >= x_lo, ox < x_hi)):
                    with T.Then():
                        interior()
                    with T.Else():
                        border_pixel(tirx.address_of(Z[0]))
            for v in range(4):
                c0 = g * 16 + v * 4
                _requantize_block(acc, v * 4, Y, ((b * oh + oy) * ow + ox) * oc + c0, c0, oc, M,
                                  S, p, vector, scalar_fast)
    notes = (f"MVE: 16 channels per call (edge_mve_dw16, VMUL/VADD on int32 lanes), interior "
             f"rows {y_lo}..{y_hi - 1} and columns {x_lo}..{x_hi - 1} in one call, border pixels "
             f"tap by tap; {'vector' if vector else 'scalar'} requantization")
    return Step(
        op_index=p.op.index, opcode=p.op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=kf.func, func_name=func_name,
        args=(TensorArg(x.index), weights, bias_c, mult_c, shift_c,
              *((zp_row,) if border else ()), TensorArg(y.index, writes=True)),
        macs=p.macs, notes=notes,
    )


def lower_fully_connected_mve(op: Operator, graph: Graph, func_name: str,
                              scratch: bool = True) -> Step | None:
    del scratch  # never needs any
    p = plan_fully_connected(op, graph)
    batches, units, depth = p.batches, p.units, p.depth
    blocks = -(-units // 4)
    packed = pack_rows16(p.weights.array)
    per_block = -(-depth // 16) * 64
    if p.tables:
        mults, shifts = p.tables[0].array, p.tables[1].array
    else:
        mults = np.full(units, p.multiplier, np.int32)
        shifts = np.full(units, p.shift, np.int32)
    fast = fast_requant(mults, shifts, 0, False)
    prefix = f"l{op.index}"
    weights = Constant(f"{prefix}_weights_mve", packed)
    bias_c = Constant(f"{prefix}_bias", np.concatenate(
        [p.bias.array, np.zeros(blocks * 4 - units, np.int32)]).astype(np.int32))
    tables = p.tables or ()

    with kernel(func_name) as kf:
        names = [("input", "int8"), ("weights", "int8"), ("bias", "int32")]
        if tables:
            names += [("multiplier", "int32"), ("shift", "int32")]
        handles = [T.arg(nm, T.handle(dt)) for nm, dt in (*names, ("output", "int8"))]
        X = T.decl_buffer((batches * depth,), "int8", data=handles[0])
        W = T.decl_buffer((packed.size,), "int8", data=handles[1])
        B = T.decl_buffer((blocks * 4,), "int32", data=handles[2])
        tab = [T.decl_buffer((units,), "int32", data=h) for h in handles[3:-1]]
        Y = T.decl_buffer((batches * units,), "int8", data=handles[-1])
        acc = T.alloc_buffer((4,), "int32")
        IRBuilder.name("acc", acc)
        with loop("b", batches) as b, loop("blk", blocks) as blk:
            for r in range(4):
                store(acc, B[blk * 4 + r], r)
            T.evaluate(call("edge_mve_gemm_1x4", tirx.address_of(X[b * depth]),
                            tirx.address_of(W[blk * per_block]), depth,
                            tirx.address_of(acc[0])))
            for r in range(4):
                o = blk * 4 + r
                mult = tab[0][o] if tab else p.multiplier
                shift = tab[1][o] if tab else p.shift
                with when(o < units) if units % 4 else nullcontext():
                    emit_requant_store(acc, r, Y, b * units + o, mult, shift, fast, False,
                                       p.output_zp, p.act)
    notes = (f"MVE: VMLADAVA.S8, 4 rows x 16 inputs per step (edge_mve_gemm_1x4); "
             f"{'SMMULR/SMMLA' if fast else '64-bit'} requantization")
    return Step(
        op_index=op.index, opcode=op.opcode, layer=p.y.name, kind="kernel",
        inputs=(p.x.index,), outputs=(p.y.index,), func=kf.func, func_name=func_name,
        args=(TensorArg(p.x.index), weights, bias_c, *tables, TensorArg(p.y.index, writes=True)),
        macs=batches * units * depth, notes=notes,
    )
