"""Data movement, int8, int16 and float32: PAD/PADV2, CONCATENATION, STRIDED_SLICE, TRANSPOSE.

None of these change values, so TFLite requires the input and output quantization to match (we
check). The index arithmetic is resolved in Python; kernels are plain copy loops.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import constant_data, quantized_tensor, refuse
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    kernel,
    loop,
    loop_nest,
    output_nest,
    row_major_strides,
    store,
    strided_offset,
    thread_row_count,
)
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.ir import Graph, Operator, Tensor

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _moved(op: Operator, graph: Graph, index: int, role: str) -> Tensor:
    """A tensor these kernels move: int8/int16 quantized, or float32 (a float model)."""
    t = graph.tensor(index)
    if t.dtype == "float32":
        return t
    return quantized_tensor(op, graph, index, role)


def _same_quant(op: Operator, x: Tensor, y: Tensor) -> None:
    if x.dtype != y.dtype:
        raise refuse(op, f"'{x.name}' is {x.dtype}, '{y.name}' {y.dtype}")
    if x.dtype == "float32":
        return
    assert x.quant is not None and y.quant is not None
    if (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
        raise refuse(op, f"'{x.name}' and '{y.name}' are quantized differently")


def _step(op: Operator, y: Tensor, func, func_name: str, inputs: list[Tensor]) -> Step:
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=tuple(t.index for t in inputs), outputs=(y.index,), func=func,
        func_name=func_name,
        args=(*(TensorArg(t.index) for t in inputs), TensorArg(y.index, writes=True)), macs=0,
    )


def pad_operands(op: Operator, graph: Graph) -> tuple[Tensor, Tensor, list[int], float]:
    """PAD / PADV2's input, output, padding before each axis and fill, checked: input and
    output quantized alike, no negative padding. The fill is the zero point in int8/int16 (as
    TFLite's kernel), PADV2's value where it has one. (The CPU and GPU kernels both use it.)"""
    x = _moved(op, graph, op.inputs[0], "input")
    y = _moved(op, graph, op.outputs[0], "output")
    _same_quant(op, x, y)
    paddings = constant_data(op, graph.tensor(op.inputs[1]), "paddings").astype(np.int64)
    fill: float = y.quant.zero_point[0] if y.quant is not None else 0.0
    if op.opcode == "PADV2" and len(op.inputs) > 2:
        fill = constant_data(op, graph.tensor(op.inputs[2]), "value").reshape(-1)[0].item()
    if any(p < 0 for p in paddings.reshape(-1)):
        raise refuse(op, "negative padding")
    return x, y, [int(p) for p in paddings[:, 0]], fill


def concatenation_operands(op: Operator, graph: Graph) -> tuple[Tensor, list[Tensor], int]:
    """CONCATENATION's output, inputs and axis, checked: every input quantized as the output
    (TFLite would requantize: refused), none constant, no fused activation. (The CPU and GPU
    kernels both use it.)"""
    y = _moved(op, graph, op.outputs[0], "output")
    xs = [_moved(op, graph, i, f"input {n}") for n, i in enumerate(op.inputs)]
    if op.options.get("activation", "NONE") != "NONE":
        raise refuse(op, "a fused activation on CONCATENATION")
    for x in xs:
        _same_quant(op, x, y)
        if x.is_constant:
            raise refuse(op, f"constant input '{x.name}'")
    return y, xs, op.options["axis"] % len(y.shape)


def lower_pad(op: Operator, graph: Graph, func_name: str, threads: bool = False) -> Step:
    """PAD/PADV2: each output value is the input's or the pad value. ``threads``: the Linux
    CPU schedule, the output's rows (:func:`~.tir.thread_rows`) over the thread pool."""
    x, y, before, pad_value = pad_operands(op, graph)
    in_strides = row_major_strides(x.shape)

    with kernel(func_name) as k:
        X, Y, *span = buffer_args(("input", (x.size,), x.dtype),
                                  ("output", (y.size,), y.dtype), rows=threads)
        with output_nest(tuple(y.shape), span) as idx:
            src = [v - b for v, b in zip(idx, before, strict=True)]
            inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, x.shape, strict=True)])
            value = tirx.Select(inside, X[strided_offset(src, in_strides)],
                                tirx.const(pad_value, y.dtype))
            store(Y, value, strided_offset(idx, row_major_strides(tuple(y.shape))))
    step = _step(op, y, k.func, func_name, [x])
    return replace(step, row_phases=(thread_row_count(tuple(y.shape)),),
                   notes="cpu: rows over threads") if threads else step


def lower_concatenation(op: Operator, graph: Graph, func_name: str) -> Step:
    y, xs, axis = concatenation_operands(op, graph)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    out_inner = int(np.prod(y.shape[axis:], dtype=np.int64))

    with kernel(func_name) as k:
        *X, Y = buffer_args(*[(f"input{n}", (x.size,), x.dtype) for n, x in enumerate(xs)],
                            ("output", (y.size,), y.dtype))
        offset = 0
        for n, x in enumerate(xs):
            inner = int(np.prod(x.shape[axis:], dtype=np.int64))
            with loop(f"o{n}", outer) as o, loop(f"j{n}", inner) as j:
                store(Y, X[n][o * inner + j], o * out_inner + offset + j)
            offset += inner
    return _step(op, y, k.func, func_name, xs)


def _slice_bounds(op: Operator, shape: tuple[int, ...], begin, end, strides) -> list[tuple]:
    """(start, stride, count) per axis, following TFLite's StartForAxis/StopForAxis."""
    o = op.options
    out = []
    for axis, size in enumerate(shape):
        stride = int(strides[axis])
        if stride == 0:
            raise refuse(op, "a zero stride")
        start = int(begin[axis])
        if o["begin_mask"] & (1 << axis):
            start = INT_MIN if stride > 0 else INT_MAX
        if start < 0:
            start += size
        start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
        if o["shrink_axis_mask"] & (1 << axis):
            stop = start + 1
        else:
            stop = int(end[axis])
            if o["end_mask"] & (1 << axis):
                stop = INT_MAX if stride > 0 else INT_MIN
            if stop < 0:
                stop += size
            stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
        count = max(0, -(-(stop - start) // stride)) if stride > 0 else max(
            0, -(-(start - stop) // -stride))
        out.append((start, stride, count))
    return out


def lower_strided_slice(op: Operator, graph: Graph, func_name: str) -> Step:
    x = _moved(op, graph, op.inputs[0], "input")
    y = _moved(op, graph, op.outputs[0], "output")
    _same_quant(op, x, y)
    o = op.options
    if o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("offset"):
        raise refuse(op, "ellipsis/new-axis masks or offset=True")
    begin, end, strides = (constant_data(op, graph.tensor(i), n).reshape(-1)
                           for i, n in zip(op.inputs[1:4], ("begin", "end", "strides"),
                                           strict=True))
    bounds = _slice_bounds(op, x.shape, begin, end, strides)
    counts = tuple(c for _, _, c in bounds)
    if int(np.prod(counts, dtype=np.int64)) != y.size:
        raise refuse(op, f"slice of {counts} does not match output shape {y.shape}")
    in_strides = row_major_strides(x.shape)

    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (x.size,), x.dtype), ("output", (y.size,), y.dtype))
        with loop_nest(counts) as idx:
            src = [start + v * step for v, (start, step, _) in zip(idx, bounds, strict=True)]
            store(Y, X[strided_offset(src, in_strides)],
                  strided_offset(idx, row_major_strides(counts)))
    return _step(op, y, k.func, func_name, [x])


def transpose_operands(op: Operator, graph: Graph) -> tuple[Tensor, Tensor, list[int]]:
    """TRANSPOSE's input, output and permutation, checked (the CPU and GPU kernels share it):
    a pure move, so any element type, with input and output quantized alike."""
    x = _moved(op, graph, op.inputs[0], "input")
    y = _moved(op, graph, op.outputs[0], "output")
    _same_quant(op, x, y)
    perm = [int(p) % len(x.shape) for p in constant_data(op, graph.tensor(op.inputs[1]), "perm")]
    if sorted(perm) != list(range(len(x.shape))):
        raise refuse(op, f"permutation {perm}")
    return x, y, perm


def lower_transpose(op: Operator, graph: Graph, func_name: str, threads: bool = False) -> Step:
    """TRANSPOSE: the output in row-major order, each value read where ``perm`` says.
    ``threads``: as :func:`lower_pad` (an NCHW model's input and output transposes)."""
    x, y, perm = transpose_operands(op, graph)
    in_strides = row_major_strides(x.shape)

    with kernel(func_name) as k:
        X, Y, *span = buffer_args(("input", (x.size,), x.dtype),
                                  ("output", (y.size,), y.dtype), rows=threads)
        with output_nest(tuple(y.shape), span) as idx:
            src = strided_offset(idx, [in_strides[p] for p in perm])
            store(Y, X[src], strided_offset(idx, row_major_strides(tuple(y.shape))))
    step = _step(op, y, k.func, func_name, [x])
    return replace(step, row_phases=(thread_row_count(tuple(y.shape)),),
                   notes="cpu: rows over threads") if threads else step
