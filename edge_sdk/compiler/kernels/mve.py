"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED for Cortex-M cores with MVE (Helium).

Same integers as the portable kernels (same ``Prepare`` plans). Weights stay int8 (no flash
growth): ``VMLADAVA.S8`` multiplies sixteen int8 pairs and adds them to a 32-bit register.

- **Convolutions** compute two output pixels x four output channels per micro-kernel call, the
  activations read as int8 rows: in place for 1x1 convolutions; for larger kernels either
  gathered into an int8 im2col scratch (two pixels, where the arena has room: fewer, longer
  dot products) or tap by tap in place, padding taps reading a ``const`` row of zero points.
- **Depthwise** convolutions with channels in groups of 16, 8 or 4: int32 lanes, per tap
  (``VMUL``/``VADD``: MVE has no integer vector multiply-accumulate), interior pixels in one
  call, border pixels tap by tap.
- **Fully connected**: four output rows per call over the whole depth.
- **Requantization** of convolution outputs: four channels at once (``VQRDMULH``, rounding
  ``VRSHL``), bit-identical to TFLite's double rounding for right shifts 1..31; otherwise, and
  for FULLY_CONNECTED's single rounding, the DSP helpers (the M55 has the DSP extension too).

Shapes outside these (a depth multiplier, depthwise channels not in fours) return ``None``:
the DSP kernels, then the portable ones, take them.
"""

from __future__ import annotations

from contextlib import nullcontext
from importlib.resources import files

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.conv import ConvPlan, plan_conv2d
from edge_sdk.compiler.kernels.dsp import call, emit_requant_store, fast_requant
from edge_sdk.compiler.kernels.fully_connected import plan_fully_connected
from edge_sdk.compiler.kernels.tir import in_range, kernel, local_array, loop, store, when
from edge_sdk.compiler.program import Constant, Scratch, Step
from edge_sdk.compiler.quantization import accumulator_bound
from edge_sdk.ir import Graph, Operator

MICROKERNELS = files("edge_sdk.compiler.kernels").joinpath("edge_mve.h").read_text(encoding="utf-8")


def pack_rows16(w: np.ndarray) -> np.ndarray:
    """``[rows, K]`` int8 -> ``[rows/4][K/16][4][16]`` (both padded with zeros), flat."""
    rows, k = w.shape
    blocks, chunks = -(-rows // 4), -(-k // 16)
    padded = np.zeros((blocks * 4, chunks * 16), np.int8)
    padded[:rows, :k] = w
    return np.ascontiguousarray(
        padded.reshape(blocks, 4, chunks, 16).transpose(0, 2, 1, 3)).reshape(-1)


def vector_requant(mults: np.ndarray, shifts: np.ndarray) -> bool:
    """May ``edge_mve_requant4`` (double rounding) be used for these channels? The same
    conditions as the scalar SMMULR form, less the accumulator bound: VQRDMULH does not double
    the accumulator first."""
    return fast_requant(mults, shifts, 0, True)


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


def _copy(dst, src, n: int) -> None:
    """memcpy of a compile-time size: GCC inlines it as loads and stores (no call)."""
    T.evaluate(call("memcpy", dst, src, n))


def _gather(X, E, b, pix, base: int, p: ConvPlan, in_shape: tuple[int, int, int], ow: int):
    """One pixel's receptive field into the int8 im2col row at ``E[base:]``: a whole row of
    taps in one copy where it lies inside the image (contiguous when the dilation is 1), else
    tap by tap, padding taps filled with the input zero point."""
    ih, iw, ic = in_shape
    kh, kw = p.kernel
    oy, ox = tirx.floordiv(pix, ow), tirx.floormod(pix, ow)
    y0, x0 = oy * p.stride[0] - p.pad[0], ox * p.stride[1] - p.pad[1]
    last_x = x0 + (kw - 1) * p.dilation[1]
    with loop("ky", kh) as ky:
        iy = y0 + ky * p.dilation[0]
        row_dst = base + ky * kw * ic

        def by_tap() -> None:
            for kx in range(kw):
                ix = x0 + kx * p.dilation[1]
                dst = tirx.address_of(E[row_dst + kx * ic])
                inside = tirx.all(in_range(iy, ih), in_range(ix, iw))
                with T.If(inside):
                    with T.Then():
                        _copy(dst, tirx.address_of(
                            X[((b * ih + tirx.Select(inside, iy, 0)) * iw
                               + tirx.Select(inside, ix, 0)) * ic]), ic)
                    with T.Else():
                        T.evaluate(call("memset", dst, p.input_zp, ic))

        if p.dilation[1] != 1:
            by_tap()
            return
        whole = tirx.all(in_range(iy, ih), x0 >= 0, last_x < iw)
        with T.If(whole):
            with T.Then():
                _copy(tirx.address_of(E[row_dst]), tirx.address_of(
                    X[((b * ih + tirx.Select(whole, iy, 0)) * iw + tirx.Select(whole, x0, 0))
                      * ic]), kw * ic)
            with T.Else():
                by_tap()


def depthwise_lanes(p: ConvPlan) -> int:
    """Channels per vector of a depthwise convolution: 16, 8 or 4, whichever divides the input
    channels (0: none does)."""
    return next((g for g in (16, 8, 4) if p.x.shape[3] % g == 0), 0)


def pointwise_in_place(p: ConvPlan) -> bool:
    """A 1x1 convolution whose padding is folded into the bias: its input rows are already the
    rows the GEMM reads, so no im2col copy is needed."""
    return p.kernel == (1, 1) and p.fold


def select_conv(p: ConvPlan, scratch: bool) -> str | None:
    """The Helium convolution variant for ``p``, or None for the next kernel set (DSP)."""
    if p.depthwise:
        return "depthwise" if p.mult == 1 and depthwise_lanes(p) else None
    return "im2col" if scratch and not pointwise_in_place(p) else "direct"


def lower_conv2d_mve(op: Operator, graph: Graph, func_name: str,
                     scratch: bool = True) -> Step | None:
    """The Helium convolution for ``op`` (:func:`select_conv`), or None."""
    p = plan_conv2d(op, graph)
    variant = select_conv(p, scratch)
    if variant == "depthwise":
        return _depthwise(p, func_name)
    if variant is None:
        return None
    return _conv(p, func_name, im2col=variant == "im2col")


def _conv(p: ConvPlan, func_name: str, im2col: bool) -> Step:
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    kh, kw = p.kernel
    taps = kh * kw
    k = taps * ic
    w = p.weights.array.reshape(oc, k)
    bias = p.folded_bias()
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
        acc = local_array("acc", 8)

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
                    _gather(X, E, b, pix, col * k, p, (ih, iw, ic), ow)
            with loop("blk", blocks) as blk:
                wblock = blk * per_block
                bias_at = tirx.address_of(B[blk * 4])
                if im2col:
                    assert E is not None
                    T.evaluate(call("edge_mve_gemm_2x4", tirx.address_of(E[0]),
                                    tirx.address_of(E[k]), tirx.address_of(W[wblock]), k,
                                    bias_at, tirx.address_of(acc[0])))
                else:
                    for j in range(8):
                        store(acc, B[blk * 4 + j % 4], j)
                    with loop("ky", kh) as ky, loop("kx", kw) as kx:
                        rows = []
                        for pix in (pix0, pix1):
                            inside, src = tap_row(b, pix, ky, kx)
                            rows.append((inside, tirx.address_of(X[src])))
                        wtap = tirx.address_of(
                            W[wblock + (ky * kw + kx) * (per_block // taps)])

                        def gemm(r0, r1):
                            T.evaluate(call("edge_mve_gemm_2x4_acc", r0, r1, wtap, ic,
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
           else "tap by tap in place (no free arena for im2col at this layer), padding taps "
                "read a zero-point row")
    notes = (f"MVE: VMLADAVA.S8, 2 pixels x 4 channels (edge_mve_gemm_2x4), {how}; "
             f"{'vector' if vector else 'scalar'} requantization")
    return p.step(kf.func, func_name, notes, (weights, bias_c, mult_c, shift_c, *extras))


def _depthwise(p: ConvPlan, func_name: str) -> Step:
    x, y = p.x, p.y
    n, ih, iw, ic = x.shape
    _, oh, ow, oc = y.shape
    lanes = depthwise_lanes(p)
    kh, kw = p.kernel
    taps = kh * kw
    groups = oc // lanes
    w = p.weights.array.reshape(taps, oc)
    bias = p.bias.array.astype(np.int64)  # depthwise plans always fold the input offset
    vector = vector_requant(p.multiplier.array, p.shift.array)
    scalar_fast = fast_requant(p.multiplier.array, p.shift.array,
                               accumulator_bound(w.T, bias), True)
    packed = np.ascontiguousarray(w.reshape(taps, groups, lanes).transpose(1, 0, 2)).reshape(-1)
    prefix = f"l{p.op.index}"
    weights = Constant(f"{prefix}_weights_mve", packed)
    bias_c, mult_c, shift_c = _tables(p, bias, oc, prefix)
    zp_row = Constant(f"{prefix}_zero_points", np.full(lanes, p.input_zp, np.int8))
    sy, sx = p.stride
    dy, dx = p.dilation
    py, px = p.pad
    (y_lo, y_hi), (x_lo, x_hi) = p.interior()

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
        Z = T.decl_buffer((lanes,), "int8", data=handles[5]) if border else None
        Y = T.decl_buffer((n * oh * ow * oc,), "int8", data=handles[-1])
        acc = local_array("acc", lanes)
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, \
                loop("g", groups) as g:
            y0, x0 = oy * sy - py, ox * sx - px
            wg = g * taps * lanes

            def interior() -> None:
                src = ((b * ih + y0) * iw + x0) * ic + g * lanes
                T.evaluate(call("edge_mve_dw", tirx.address_of(X[src]), dy * iw * ic, dx * ic,
                                kh, kw, tirx.address_of(W[wg]), tirx.address_of(B[g * lanes]),
                                tirx.address_of(acc[0]), lanes))

            def border_pixel(zrow) -> None:
                for j in range(lanes):
                    store(acc, B[g * lanes + j], j)
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = y0 + ky * dy, x0 + kx * dx
                        wt = tirx.address_of(W[wg + (ky * kw + kx) * lanes])
                        with T.If(tirx.all(in_range(iy, ih), in_range(ix, iw))):
                            with T.Then():
                                src = ((b * ih + iy) * iw + ix) * ic + g * lanes
                                T.evaluate(call("edge_mve_dw_tap", tirx.address_of(X[src]),
                                                wt, tirx.address_of(acc[0]), lanes))
                            with T.Else():
                                T.evaluate(call("edge_mve_dw_tap", zrow, wt,
                                                tirx.address_of(acc[0]), lanes))

            if Z is None:
                interior()
            else:
                with T.If(tirx.all(oy >= y_lo, oy < y_hi, ox >= x_lo, ox < x_hi)):
                    with T.Then():
                        interior()
                    with T.Else():
                        border_pixel(tirx.address_of(Z[0]))
            for v in range(lanes // 4):
                c0 = g * lanes + v * 4
                _requantize_block(acc, v * 4, Y, ((b * oh + oy) * ow + ox) * oc + c0, c0, oc, M,
                                  S, p, vector, scalar_fast)
    notes = (f"MVE: {lanes} channels per call (edge_mve_dw, VMUL/VADD on int32 lanes), interior "
             f"rows {y_lo}..{y_hi - 1} and columns {x_lo}..{x_hi - 1} in one call, border pixels "
             f"tap by tap; {'vector' if vector else 'scalar'} requantization")
    return p.step(kf.func, func_name, notes,
                  (weights, bias_c, mult_c, shift_c, *((zp_row,) if border else ())))


def lower_fully_connected_mve(op: Operator, graph: Graph, func_name: str,
                              scratch: bool = True) -> Step | None:
    """FULLY_CONNECTED's Helium schedule (:mod:`.fully_connected` says what it computes): four
    units per ``edge_mve_gemm_1x4`` call (VMLADAVA.S8 over 16 inputs a step), int8 only."""
    del scratch  # never needs any
    p = plan_fully_connected(op, graph)
    if p.dtype != "int8":
        return None
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
        acc = local_array("acc", 4)
        with loop("b", batches) as b, loop("blk", blocks) as blk:
            T.evaluate(call("edge_mve_gemm_1x4", tirx.address_of(X[b * depth]),
                            tirx.address_of(W[blk * per_block]), depth,
                            tirx.address_of(B[blk * 4]), tirx.address_of(acc[0])))
            for r in range(4):
                o = blk * 4 + r
                mult = tab[0][o] if tab else p.multiplier
                shift = tab[1][o] if tab else p.shift
                with when(o < units) if units % 4 else nullcontext():
                    emit_requant_store(acc, r, Y, b * units + o, mult, shift, fast, False,
                                       p.output_zp, p.act)
    notes = (f"MVE: VMLADAVA.S8, 4 rows x 16 inputs per step (edge_mve_gemm_1x4); "
             f"{'SMMULR/SMMLA' if fast else '64-bit'} requantization")
    return p.step(kf.func, func_name, notes, (weights, bias_c, *tables))
