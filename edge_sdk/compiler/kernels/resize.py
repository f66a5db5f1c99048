"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (int8, int16, float32), NHWC.

Which input rows and columns each output reads, and with what weights, depends on the shapes
alone: we evaluate TFLite's reference formulas (``GetNearestNeighbor``,
``ComputeInterpolationValues``) at compile time, in float32 as the C++ does, and bake the results
into small per-axis tables. The kernels are then a gather (nearest) or four multiply-adds in
TFLite's order (bilinear).
"""

from __future__ import annotations

import math
import operator
from functools import reduce

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import constant_data, quantized_tensor, refuse
from edge_sdk.compiler.kernels.tir import buffer_args, i64, kernel, loop, scalar, store
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.ir import Graph, Operator, Tensor

F = np.float32


def _tensors(op: Operator, graph: Graph) -> tuple[Tensor, Tensor]:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype != "float32":
        x = quantized_tensor(op, graph, op.inputs[0], "input")
        y = quantized_tensor(op, graph, op.outputs[0], "output")
        if (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
            raise refuse(op, "input and output are quantized differently")
    if x.dtype != y.dtype or len(x.shape) != 4 or len(y.shape) != 4:
        raise refuse(op, f"needs 4-D NHWC input and output of one type ({x.dtype}, {y.dtype})")
    size = constant_data(op, graph.tensor(op.inputs[1]), "size").reshape(-1)
    if tuple(int(v) for v in size) != tuple(y.shape[1:3]):
        raise refuse(op, f"size {list(size)} does not match the output shape {y.shape}")
    if op.options.get("align_corners") and op.options.get("half_pixel_centers"):
        raise refuse(op, "align_corners together with half_pixel_centers")
    return x, y


def _scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    if align_corners and out_size > 1:
        return F(F(in_size - 1) / F(out_size - 1))
    return F(F(in_size) / F(out_size))


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel: bool
                    ) -> np.ndarray:
    """``GetNearestNeighbor`` for every output position."""
    scale, offset = _scale(in_size, out_size, align_corners), F(0.5 if half_pixel else 0.0)
    out = []
    for v in range(out_size):
        pos = F(F(F(v) + offset) * scale)
        # TfLiteRound: half away from zero (pos >= 0 here)
        index = math.floor(float(pos) + 0.5) if align_corners else math.floor(pos)
        index = min(index, in_size - 1)
        out.append(max(0, index) if half_pixel else index)
    return np.array(out, np.int32)


def bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``ComputeInterpolationValues`` per output position: lower and upper input index, and the
    weights ``1 - (in - lower)`` and ``in - lower`` as the C++ forms them (float32)."""
    scale = _scale(in_size, out_size, align_corners)
    lo, hi, w_lo, w_hi = [], [], [], []
    for v in range(out_size):
        pos = F(F(F(v) + F(0.5)) * scale - F(0.5)) if half_pixel else F(F(v) * scale)
        lower = max(math.floor(pos), 0)
        lo.append(lower)
        hi.append(min(math.ceil(pos), in_size - 1))
        frac = F(pos - F(lower))
        w_hi.append(frac)
        w_lo.append(F(F(1.0) - frac))
    return (np.array(lo, np.int32), np.array(hi, np.int32), np.array(w_lo, F),
            np.array(w_hi, F))


def _step(op: Operator, x: Tensor, y: Tensor, func, func_name: str, consts: tuple,
          notes: str) -> Step:
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=(x.index,), outputs=(y.index,), func=func, func_name=func_name,
                args=(TensorArg(x.index), *consts, TensorArg(y.index, writes=True)),
                macs=y.size, notes=notes)


def _modes(op: Operator) -> tuple[bool, bool]:
    return bool(op.options.get("align_corners")), bool(op.options.get("half_pixel_centers"))


def nearest_tables(op: Operator, x: Tensor, y: Tensor) -> tuple[Constant, Constant]:
    """The input row of each output row and the input column of each output column (the CPU
    and GPU kernels both gather through them)."""
    ac, hp = _modes(op)
    return (Constant(f"l{op.index}_rows", nearest_indices(x.shape[1], y.shape[1], ac, hp)),
            Constant(f"l{op.index}_cols", nearest_indices(x.shape[2], y.shape[2], ac, hp)))


BILINEAR_TABLES = ("y0", "y1", "wy0", "wy1", "x0", "x1", "wx0", "wx1")


def bilinear_tables(op: Operator, x: Tensor, y: Tensor) -> tuple[Constant, ...]:
    """y0, y1, wy0, wy1 per output row, then x0, x1, wx0, wx1 per output column: float weights,
    or 1/1024ths for integer types (the CPU and GPU kernels both read them)."""
    axis = bilinear_axis if x.dtype == "float32" else bilinear_axis_integer
    ac, hp = _modes(op)
    tables = [*axis(x.shape[1], y.shape[1], ac, hp), *axis(x.shape[2], y.shape[2], ac, hp)]
    return tuple(Constant(f"l{op.index}_{nm}", t)
                 for nm, t in zip(BILINEAR_TABLES, tables, strict=True))


def lower_resize_nearest(op: Operator, graph: Graph, func_name: str) -> Step:
    x, y = _tensors(op, graph)
    n, _, _, c = x.shape
    _, oh, ow, _ = y.shape
    rows, cols = nearest_tables(op, x, y)
    with kernel(func_name) as k:
        X, R, C, Y = buffer_args(("input", x.shape, x.dtype), ("rows", (oh,), "int32"),
                                 ("cols", (ow,), "int32"), ("output", y.shape, y.dtype))
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("ch", c) as ch:
            store(Y, X[b, R[oy], C[ox], ch], b, oy, ox, ch)
    return _step(op, x, y, k.func, func_name, (rows, cols), "input row/column tables")


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def bilinear_axis_integer(in_size: int, out_size: int, align_corners: bool, half_pixel: bool
                          ) -> tuple[np.ndarray, ...]:
    """``ComputeInterpolationValuesInteger`` per output position (positions in 1/1024ths):
    lower and upper input index, and the weights ``1024 - frac`` and ``frac``."""
    if align_corners and out_size > 1:
        scale_10 = _cdiv((1 << 10) * (in_size - 1) + (out_size - 1) // 2, out_size - 1)
    else:
        scale_10 = _cdiv((1 << 10) * in_size + out_size // 2, out_size)
    lo, hi, w_lo, w_hi = [], [], [], []
    for v in range(out_size):
        pos = v * scale_10 + scale_10 // 2 - (1 << 9) if half_pixel else v * scale_10
        lower = max(_cdiv(pos, 1 << 10), 0)
        lo.append(lower)
        hi.append(min(_cdiv(pos + (1 << 10) - 1, 1 << 10), in_size - 1))
        frac = pos - (1 << 10) * lower
        w_hi.append(frac)
        w_lo.append((1 << 10) - frac)
    return tuple(np.array(a, np.int32) for a in (lo, hi, w_lo, w_hi))


def lower_resize_bilinear(op: Operator, graph: Graph, func_name: str) -> Step:
    """Float: TFLite's four terms, each ``value * wy * wx``, summed left to right. int8/int16
    (``ResizeBilinearInteger``): raw values weighted in 1/1024ths on each axis, summed in 64
    bits, divided by 2^20 rounding half away from zero."""
    x, y = _tensors(op, graph)
    integer = x.dtype != "float32"
    n, _, _, c = x.shape
    _, oh, ow, _ = y.shape
    consts = bilinear_tables(op, x, y)
    with kernel(func_name) as k:
        X, Y0, Y1, WY0, WY1, X0, X1, WX0, WX1, Y = buffer_args(
            ("input", x.shape, x.dtype),
            *[(nm, t.array.shape, str(t.array.dtype))
              for nm, t in zip(BILINEAR_TABLES, consts, strict=True)],
            ("output", y.shape, y.dtype))
        total = scalar("total", "int64") if integer else None
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("ch", c) as ch:
            taps = [(X[b, Y0[oy], X0[ox], ch], WY0[oy], WX0[ox]),
                    (X[b, Y1[oy], X0[ox], ch], WY1[oy], WX0[ox]),
                    (X[b, Y0[oy], X1[ox], ch], WY0[oy], WX1[ox]),
                    (X[b, Y1[oy], X1[ox], ch], WY1[oy], WX1[ox])]
            if integer:
                store(total, reduce(operator.add, [i64(v) * i64(wy) * i64(wx)
                                                   for v, wy, wx in taps]))
                rounding = tirx.Select(total[0] > i64(0), i64(1 << 19), i64(-(1 << 19)))
                value = tirx.Cast(y.dtype, tirx.truncdiv(total[0] + rounding, i64(1 << 20)))
            else:  # TFLite's expression, term by term and left to right
                value = reduce(operator.add, [v * wy * wx for v, wy, wx in taps])
            store(Y, value, b, oy, ox, ch)
    return _step(op, x, y, k.func, func_name, consts,
                 "interpolation tables per row/column" + (" (1/1024ths)" if integer else ""))
