"""MEAN and SUM over any axes, keep_dims or not: int8, int16x8 and float32.

Integer (TFLite's ``QuantizedMeanOrSum`` as LiteRT 2.3's reference runs it for MEAN, and as TFLite
Micro runs it for SUM): the sum of ``x - input_zp`` in int32, requantized once with
``MultiplyByQuantizedMultiplier`` and offset by the output zero point. For SUM the multiplier is
``input_scale / output_scale``; for MEAN the element count is divided into it in integers
(:func:`mean_multiplier`), which is not the same as quantizing
``input_scale / (output_scale * count)`` (measured: 519 of 25,600 outputs off by one for a
7x7x1280 mean). Every axis set, rank and ``keep_dims`` takes this one route (measured against
LiteRT 2.3: axes (1, 2) with and without ``keep_dims``, (2, 3) of NCHW data, negative axes, 2-D
and 3-D inputs, equal or different quantization in and out).

One exception, on purpose: LiteRT's *reference* SUM for int8 and int16 reads the tensors as uint8
(``QuantizedMeanOrSum<uint8_t>`` on int8 data), so -1 counts as 255; its optimized kernel and
TFLite Micro compute the intended sum. We follow TFLite Micro there (tests/test_reduce.py).

float32 (``reference_ops::Mean``/``ReduceGeneric``): each output accumulates its inputs in the
input's row-major order, from 0; MEAN then divides by the element count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import tirx as T

from edge_sdk.compiler.kernels.common import (
    constant_data,
    quantized_tensor,
    refuse,
    scale,
    zero_point,
)
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    kernel,
    loop,
    loop_nest,
    scalar,
    store,
    strided_offset,
)
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.compiler.quantization import quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

RANGES = {"int8": (-128, 127), "int16": (-32768, 32767)}


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """``input_scale / output_scale`` quantized, then divided by the element count in integers,
    keeping up to 32 more bits of precision: ``m' = (m << r) / count`` and ``shift' = shift -
    r`` with ``r = min(floor(log2(count)), 32, 31 + shift)``."""
    m, s = quantize_multiplier(input_scale / output_scale)
    r = max(min(count.bit_length() - 1, 32, 31 + s), 0)
    return (m << r) // count, s - r


def reduced_axes(op: Operator, graph: Graph, x: Tensor) -> list[int]:
    rank = len(x.shape)
    values = constant_data(op, graph.tensor(op.inputs[1]), "axis").reshape(-1)
    axes = []
    for a in (int(v) for v in values):
        if not -rank <= a < rank:
            raise refuse(op, f"axis {a} is out of range for a rank-{rank} input")
        axes.append(a % rank)
    return sorted(set(axes))


def reduce_operands(op: Operator, graph: Graph
                    ) -> tuple[Tensor, Tensor, list[int], list[int], int, tuple[int, ...]]:
    """MEAN/SUM's input and output, checked, the reduced and the kept axes, the element count
    each output sums and the output's shape over the kept axes (the CPU and GPU kernels)."""
    x = graph.tensor(op.inputs[0])
    y = graph.tensor(op.outputs[0])
    if x.dtype == "float32":
        if y.dtype != "float32":
            raise refuse(op, f"float32 input with {y.dtype} output")
    else:
        x = quantized_tensor(op, graph, op.inputs[0], "input")
        y = quantized_tensor(op, graph, op.outputs[0], "output")
        if x.dtype != y.dtype:
            raise refuse(op, f"{x.dtype} input with {y.dtype} output")
    axes = reduced_axes(op, graph, x)
    kept = [a for a in range(len(x.shape)) if a not in axes]
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    out_shape = tuple(x.shape[a] for a in kept) or (1,)
    if int(np.prod(out_shape)) != y.size:
        raise refuse(op, f"output shape {list(y.shape)} does not match the reduction")
    return x, y, axes, kept, count, out_shape


def lower_reduce_sum(op: Operator, graph: Graph, func_name: str) -> Step:
    """MEAN or SUM (``op.opcode``) of an int8, int16 or float32 tensor."""
    x, y, axes, kept, count, out_shape = reduce_operands(op, graph)
    strides = [int(np.prod(x.shape[a + 1:], dtype=np.int64)) for a in range(len(x.shape))]
    is_mean = op.opcode == "MEAN"
    dtype = x.dtype

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), dtype), ("output", (y.size,), dtype))
        acc = scalar("acc", "float32" if dtype == "float32" else "int32")
        with loop_nest(out_shape, "o") as outer:
            base = strided_offset(outer, [strides[a] for a in kept]) if kept else i32(0)
            out_index = strided_offset(outer, [int(np.prod(out_shape[i + 1:]))
                                               for i in range(len(out_shape))])
            store(acc, tirx.const(0, acc.dtype))
            with loop_nest(tuple(x.shape[a] for a in axes) or (1,), "r") as inner:
                at = base + (strided_offset(inner, [strides[a] for a in axes]) if axes else 0)
                if dtype == "float32":
                    store(acc, acc[0] + X[at])
                else:
                    store(acc, acc[0] + i32(X[at]) - i32(zero_point(x)))
            store(Y, _finish(acc, op, x, y, count, is_mean), out_index)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
        notes=f"axes {axes} ({count} elements each)",
    )


# The Linux CPU schedule's block of kept values summed together, one vector register of
# float32 on AVX-512 (two on AVX2, four on NEON); and the size below which it is not used.
REDUCE_BLOCK = 16
REDUCE_MIN_VALUES = 16384


def lower_reduce_rows(op: Operator, graph: Graph, func_name: str, scratch=None
                      ) -> Step | None:
    """The Linux CPU schedule of MEAN/SUM over axes followed by kept ones (a global average
    pool, NHWC: H and W reduced, C kept): the reduced axes are the outer loops and a block
    of :data:`REDUCE_BLOCK` kept values the inner one, so the sums advance side by side in
    vector lanes over contiguous memory, and the blocks are rows the thread pool shares.
    Each output still adds its inputs in the order :func:`lower_reduce_sum` does (the
    reduced axes in row-major order), so float results are the same bits. None where the
    layout does not fit (no kept axis after the reduced ones) or the layer is small."""
    x, y, axes, kept, count, _ = reduce_operands(op, graph)
    inner_axes = [a for a in kept if a > max(axes)]
    outer_axes = [a for a in kept if a < max(axes)]
    inner = int(np.prod([x.shape[a] for a in inner_axes], dtype=np.int64))
    if not inner_axes or inner % REDUCE_BLOCK or x.size < REDUCE_MIN_VALUES:
        return None
    if x.dtype == "float32" and op.opcode == "MEAN" and count > 1 << 24:
        return None  # the portable kernel says why
    blocks = inner // REDUCE_BLOCK
    outer_shape = tuple(x.shape[a] for a in outer_axes)
    rows = int(np.prod(outer_shape, dtype=np.int64)) * blocks
    strides = [int(np.prod(x.shape[a + 1:], dtype=np.int64)) for a in range(len(x.shape))]
    acc_dtype = "float32" if x.dtype == "float32" else "int32"

    with kernel(func_name) as k:
        X, Y, _phase, begin, end = buffer_args(("input", (x.size,), x.dtype),
                                               ("output", (y.size,), y.dtype), rows=True)
        acc = T.alloc_buffer((REDUCE_BLOCK,), acc_dtype)
        value = scalar("value", acc_dtype)
        with loop("row", end, begin) as row:
            block, rest = tirx.floormod(row, blocks), tirx.floordiv(row, blocks)
            base = i32(0) + block * REDUCE_BLOCK
            for position in reversed(range(len(outer_axes))):
                axis = outer_axes[position]
                index = rest if position == 0 else tirx.floormod(rest, x.shape[axis])
                base = base + index * strides[axis]
                rest = tirx.floordiv(rest, x.shape[axis])
            with loop("v", REDUCE_BLOCK) as v:
                store(acc, tirx.const(0, acc_dtype), v)
            with loop_nest(tuple(x.shape[a] for a in axes), "r") as reduced:
                at = base + strided_offset(reduced, [strides[a] for a in axes])
                with loop("v", REDUCE_BLOCK) as v:
                    term = X[at + v] if x.dtype == "float32" else \
                        i32(X[at + v]) - i32(zero_point(x))
                    store(acc, acc[v] + term, v)
            with loop("v", REDUCE_BLOCK) as v:
                store(value, acc[v])
                store(Y, _finish(value, op, x, y, count, op.opcode == "MEAN"),
                      row * REDUCE_BLOCK + v)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
        notes=f"cpu: axes {axes} ({count} elements each), {REDUCE_BLOCK} outputs per row, "
              "rows over threads",
        row_phases=(rows,),
    )


def requantize_constants(op: Operator, x: Tensor, y: Tensor, count: int) -> tuple[int, int]:
    """The integer MEAN/SUM's multiplier and shift (see the module docstring)."""
    return (mean_multiplier(scale(x), scale(y), count) if op.opcode == "MEAN"
            else quantize_multiplier(scale(x) / scale(y)))


def _finish(acc: tirx.Buffer, op: Operator, x: Tensor, y: Tensor, count: int,
            is_mean: bool) -> Any:
    """The output value from the sum in ``acc``: requantized (integers) or divided (float)."""
    if x.dtype == "float32":
        if not is_mean:
            return acc[0]
        if count > 1 << 24:
            raise refuse(op, f"a mean over {count} elements (more than float32 counts exactly)")
        return acc[0] / tirx.Cast("float32", i32(count))
    m, s = requantize_constants(op, x, y, count)
    emit_multiply_by_quantized_multiplier(acc, m, s)
    lo, hi = RANGES[x.dtype]
    return tirx.Cast(x.dtype, clamp(acc[0] + i32(zero_point(y)), lo, hi))
