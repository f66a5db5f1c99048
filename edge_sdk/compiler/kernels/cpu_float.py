"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, float32, for Linux CPUs (``isa="cpu*"``).

The layouts of :mod:`.cpu` with float lanes: output channels in the vector lanes, weights
repacked at compile time into zero-padded blocks, a tile of output pixels per regular
convolution tile, inputs that need padding copied once into scratch with zeros around them (so
no bounds tests in the loops). Each output is the same sum as the portable float kernel's, in
the same order over taps and channels, from zero, with the bias added last. LLVM does not
reassociate it, but fuses each multiply-add into one FMA where the CPU has it: outputs then
differ from LiteRT's reference kernels in the last bits (measured: under 4e-6 absolute on sums
of 45-90 terms of magnitude ~1; the requirement is 1e-5), where the portable C kernels, built
without contraction, match it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.common import refuse
from edge_sdk.compiler.kernels.cpu import (
    _blocks,
    copy_then_compute,
    for_each_tile,
    schedule_for,
)
from edge_sdk.compiler.kernels.float32 import _activation, _constant, _float_tensor
from edge_sdk.compiler.kernels.schedule import Schedule, Tuning
from edge_sdk.compiler.kernels.tir import buffer_args, f32, kernel, loop, store, when
from edge_sdk.compiler.program import Constant, Scratch, Step, TensorArg
from edge_sdk.compiler.quantization import conv_geometry
from edge_sdk.ir import Graph, Operator


@dataclass(frozen=True)
class _Conv:
    op: Operator
    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]
    weights: np.ndarray  # TFLite's layout
    bias: np.ndarray
    layer: str  # the output tensor's name

    @property
    def reach(self) -> tuple[int, int]:
        """Input rows and columns the taps span, padding included."""
        (_, oh, ow, _), (kh, kw) = self.shape_out, self.kernel
        (sy, sx), (dy, dx) = self.stride, self.dilation
        return (oh - 1) * sy + (kh - 1) * dy + 1, (ow - 1) * sx + (kw - 1) * dx + 1


def _plan(op: Operator, graph: Graph) -> _Conv:
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    w = _constant(op, graph.tensor(op.inputs[1]), "weights")
    if op.opcode == "DEPTHWISE_CONV_2D":
        _, kh, kw, oc = w.shape
    else:
        oc, kh, kw, _ = w.shape
    b_idx = op.inputs[2] if len(op.inputs) > 2 else -1
    bias = (_constant(op, graph.tensor(b_idx), "bias").reshape(-1) if b_idx >= 0
            else np.zeros(oc, np.float32))
    stride, dilation = tuple(op.options["stride"]), tuple(op.options["dilation"])
    (oh, ow), pad = conv_geometry(op.options["padding"], x.shape[1:3], (kh, kw), stride,
                                  dilation)
    if tuple(y.shape) != (x.shape[0], oh, ow, oc):
        raise refuse(op, f"output shape {y.shape} does not match {(x.shape[0], oh, ow, oc)}")
    return _Conv(op, tuple(x.shape), tuple(y.shape), (kh, kw), stride, dilation, tuple(pad),
                 w, bias, y.name)


def _copy_padded(c: _Conv, X: tirx.Buffer, P: tirx.Buffer, channels: int, begin, end) -> None:
    """Rows ``[begin, end)`` of the input with zeros where taps fall in the padding, channels
    padded to ``channels`` (a row: one of the ``n * rows`` padded rows)."""
    _, ih, iw, ic = c.shape_in
    rows, cols = c.reach
    ph, pw = c.pad
    with loop("t", end, begin) as t, loop("c", cols) as col:
        b, r = tirx.floordiv(t, rows), tirx.floormod(t, rows)
        iy, ix = r - ph, col - pw
        inside = tirx.all(iy >= 0, iy < ih, ix >= 0, ix < iw)
        with loop("ch", channels) as ch:
            value = tirx.if_then_else(tirx.all(inside, ch < ic),
                                      X[b, iy, ix, tirx.min(ch, ic - 1)], f32(0.0))
            store(P, value, ((b * rows + r) * cols + col) * channels + ch)


def _needs_copy(c: _Conv, channels: int) -> bool:
    _, ih, iw, ic = c.shape_in
    rows, cols = c.reach
    return any(c.pad) or rows > ih or cols > iw or channels != ic


def lower_conv_float_cpu(op: Operator, graph: Graph, func_name: str,
                         scratch: bool = True, isa: str = "cpu",
                         tuning: Tuning | None = None) -> Step | None:
    c = _plan(op, graph)
    sched = schedule_for(op, graph, isa, c.shape_out[3], 1, tuning)
    if op.opcode == "DEPTHWISE_CONV_2D":
        return _depthwise(c, func_name, sched) if c.shape_out[3] == c.shape_in[3] else None
    return _conv(c, func_name, sched)


def _step(c: _Conv, func, func_name: str, consts: tuple, note: str, copy: bool) -> Step:
    """The step, its rows split over threads: phase 0 fills the padded copy (when there is
    one), the last computes the output rows."""
    n, oh, ow, oc = c.shape_out
    kh, kw = c.kernel
    depth = 1 if c.op.opcode == "DEPTHWISE_CONV_2D" else c.shape_in[3]
    graph_in, graph_out = c.op.inputs[0], c.op.outputs[0]
    return Step(
        op_index=c.op.index, opcode=c.op.opcode, layer=c.layer, kind="kernel",
        inputs=(graph_in,), outputs=(graph_out,), func=func, func_name=func_name,
        args=(TensorArg(graph_in), *consts, TensorArg(graph_out, writes=True)),
        macs=n * oh * ow * oc * kh * kw * depth, notes=f"float32 cpu: {note}",
        row_phases=(*((n * c.reach[0],) if copy else ()), n * oh))


def _conv(c: _Conv, func_name: str, sched: Schedule) -> Step:
    n, ih, iw, ic = c.shape_in
    _, oh, ow, oc = c.shape_out
    (kh, kw), (sy, sx), (dy, dx) = c.kernel, c.stride, c.dilation
    lanes, pixels = sched.lanes, sched.pixels
    blocks = _blocks(oc, lanes)
    w = np.zeros((blocks * lanes, kh, kw, ic), np.float32)
    w[:oc] = c.weights
    packed = np.ascontiguousarray(w.reshape(blocks, lanes, kh, kw, ic).transpose(0, 2, 3, 4, 1))
    prefix = f"l{c.op.index}"
    weights = Constant(f"{prefix}_weights_packed", packed.reshape(-1))
    bias = Constant(f"{prefix}_bias", c.bias.astype(np.float32))
    copy = _needs_copy(c, ic)
    rows, cols = c.reach if copy else (ih, iw)
    scratch = Scratch(f"{prefix}_padded_input", (n * rows * cols * ic,), "float32")

    with kernel(func_name) as k:
        specs = [("input", c.shape_in, "float32"), ("weights", packed.shape, "float32"),
                 ("bias", (oc,), "float32")]
        if copy:
            specs.append(("padded", (n * rows * cols * ic,), "float32"))
        X, W, B, *pad, Y, phase, begin, end = buffer_args(
            *specs, ("output", (n * oh * ow * oc,), "float32"), rows=True)
        compute = copy_then_compute(copy, phase,
                                    lambda: _copy_padded(c, X, pad[0], ic, begin, end))
        source = T.decl_buffer((n * rows * cols * ic,), "float32",
                               data=(pad[0] if copy else X).data)
        acc = T.alloc_buffer((pixels * lanes,), "float32")

        def tile(b, oy, ox0, count):
            with loop("block", blocks) as nb:
                for r in range(count):
                    with T.vectorized(0, lanes) as v:
                        store(acc, f32(0.0), r * lanes + v)
                with loop("ky", kh) as ky, loop("kx", kw) as kx, loop("ic", ic) as ci:
                    for r in range(count):
                        iy, ix = oy * sy + ky * dy, (ox0 + r) * sx + kx * dx
                        xv = source[((b * rows + iy) * cols + ix) * ic + ci]
                        with T.vectorized(0, lanes) as v:
                            store(acc, acc[r * lanes + v] + xv * W[nb, ky, kx, ci, v],
                                  r * lanes + v)
                for r in range(count):
                    with loop("lane", lanes) as v, when(nb * lanes + v < oc):
                        ch = nb * lanes + v
                        store(Y, _activation(c.op, acc[r * lanes + v] + B[ch]),
                              ((b * oh + oy) * ow + ox0 + r) * oc + ch)

        with compute, loop("row", end, begin) as t:
            b, oy = tirx.floordiv(t, oh), tirx.floormod(t, oh)
            for_each_tile(ow, pixels, lambda ox, count: tile(b, oy, ox, count), "ox")
    consts = (weights, bias, *((scratch,) if copy else ()))
    return _step(c, k.func, func_name, consts,
                 f"{lanes} channels x {pixels} pixels per tile"
                 + (", padded copy" if copy else ""), copy)


def _depthwise(c: _Conv, func_name: str, sched: Schedule) -> Step:
    n, ih, iw, ic = c.shape_in
    _, oh, ow, oc = c.shape_out
    (kh, kw), (sy, sx), (dy, dx) = c.kernel, c.stride, c.dilation
    lanes = sched.lanes
    blocks = _blocks(ic, lanes)
    channels = blocks * lanes
    w = np.zeros((kh, kw, channels), np.float32)
    w[:, :, :oc] = c.weights.reshape(kh, kw, oc)
    prefix = f"l{c.op.index}"
    weights = Constant(f"{prefix}_weights_padded", w.reshape(-1))
    bias = Constant(f"{prefix}_bias", c.bias.astype(np.float32))
    copy = _needs_copy(c, channels)
    rows, cols = c.reach if copy else (ih, iw)
    chans = channels if copy else ic
    scratch = Scratch(f"{prefix}_padded_input", (n * rows * cols * channels,), "float32")

    with kernel(func_name) as k:
        specs = [("input", c.shape_in, "float32"), ("weights", (kh, kw, channels), "float32"),
                 ("bias", (oc,), "float32")]
        if copy:
            specs.append(("padded", (n * rows * cols * channels,), "float32"))
        X, W, B, *pad, Y, phase, begin, end = buffer_args(
            *specs, ("output", (n * oh * ow * oc,), "float32"), rows=True)
        compute = copy_then_compute(copy, phase,
                                    lambda: _copy_padded(c, X, pad[0], channels, begin, end))
        source = T.decl_buffer((n * rows * cols * chans,), "float32",
                               data=(pad[0] if copy else X).data)
        acc = T.alloc_buffer((lanes,), "float32")
        with compute, loop("row", end, begin) as t, loop("ox", ow) as ox, \
                loop("block", blocks) as nb:
            b, oy = tirx.floordiv(t, oh), tirx.floormod(t, oh)
            with T.vectorized(0, lanes) as v:
                store(acc, f32(0.0), v)
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sy + ky * dy, ox * sx + kx * dx
                    with T.vectorized(0, lanes) as v:
                        ch = nb * lanes + v
                        xv = source[((b * rows + iy) * cols + ix) * chans + ch]
                        store(acc, acc[v] + xv * W[ky, kx, ch], v)
            with loop("lane", lanes) as v, when(nb * lanes + v < oc):
                ch = nb * lanes + v
                store(Y, _activation(c.op, acc[v] + B[ch]), ((b * oh + oy) * ow + ox) * oc + ch)
    consts = (weights, bias, *((scratch,) if copy else ()))
    return _step(c, k.func, func_name, consts,
                 f"{lanes} channels per vector" + (", padded copy" if copy else ""), copy)


def lower_fully_connected_float_cpu(op: Operator, graph: Graph, func_name: str,
                                    scratch: bool = True, isa: str = "cpu",
                                    tuning: Tuning | None = None) -> Step | None:
    x = _float_tensor(op, graph, op.inputs[0], "input")
    y = _float_tensor(op, graph, op.outputs[0], "output")
    w = _constant(op, graph.tensor(op.inputs[1]), "weights")
    if len(w.shape) != 2:
        return None
    units, depth = w.shape
    batches = x.size // depth
    b_idx = op.inputs[2] if len(op.inputs) > 2 else -1
    bias = (_constant(op, graph.tensor(b_idx), "bias").reshape(-1) if b_idx >= 0
            else np.zeros(units, np.float32))
    sched = schedule_for(op, graph, isa, units, 1, tuning)
    lanes, tile_blocks = sched.lanes, sched.blocks
    blocks = _blocks(units, lanes)
    wp = np.zeros((blocks * lanes, depth), np.float32)
    wp[:units] = w
    packed = np.ascontiguousarray(wp.reshape(blocks, lanes, depth).transpose(0, 2, 1))
    prefix = f"l{op.index}"
    consts = (Constant(f"{prefix}_weights_packed", packed.reshape(-1)),
              Constant(f"{prefix}_bias", bias.astype(np.float32)))
    with kernel(func_name) as k:
        X, W, B, Y = buffer_args(("input", (batches, depth), "float32"),
                                 ("weights", packed.shape, "float32"),
                                 ("bias", (units,), "float32"),
                                 ("output", (batches, units), "float32"))
        acc = T.alloc_buffer((tile_blocks * lanes,), "float32")

        def tile(b, nb0, count):
            for j in range(count):
                with T.vectorized(0, lanes) as v:
                    store(acc, f32(0.0), j * lanes + v)
            with loop("d", depth) as d:
                for j in range(count):
                    with T.vectorized(0, lanes) as v:
                        store(acc, acc[j * lanes + v] + X[b, d] * W[nb0 + j, d, v],
                              j * lanes + v)
            for j in range(count):
                with loop("lane", lanes) as v, when((nb0 + j) * lanes + v < units):
                    o = (nb0 + j) * lanes + v
                    store(Y, _activation(op, acc[j * lanes + v] + B[o]), b, o)

        with loop("b", batches) as b:
            for_each_tile(blocks, tile_blocks, lambda nb, count: tile(b, nb, count), "block")
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), *consts, TensorArg(y.index, writes=True)),
        macs=batches * units * depth, notes=f"float32 cpu: {lanes} units per vector")
