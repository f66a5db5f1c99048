"""Pure data movement, any element type: SPLIT, SPLIT_V, PACK, UNPACK, DEPTH_TO_SPACE,
SPACE_TO_DEPTH, GATHER, and the resource variables' READ_VARIABLE and ASSIGN_VARIABLE.

None of these changes a value: TFLite copies the raw elements and (for quantized tensors) expects
the same scale and zero point on both sides, which we check. Each operator is a list of copy
regions: a loop nest over a region's shape, and for each position which input element goes to
which output element, as index expressions fixed at compile time (GATHER's indices may also be
read at run time).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import constant_data, refuse
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    i32,
    kernel,
    loop_nest,
    row_major_strides,
    store,
    strided_offset,
)
from edge_sdk.compiler.program import Constant, KernelArg, Step, TensorArg
from edge_sdk.ir import Graph, Operator, Tensor

# A region: (loop shape, fn(idx, buffers) -> (input k, input index list, output n, output index
# list)); ``buffers`` are the kernel's input buffers, then its output buffers.
Region = tuple[tuple[int, ...], Callable[[list, list], tuple[int, list, int, list]]]


def _same(op: Operator, tensors: list[Tensor]) -> None:
    first = tensors[0]
    for t in tensors[1:]:
        if t.dtype != first.dtype:
            raise refuse(op, f"'{t.name}' is {t.dtype}, '{first.name}' {first.dtype}")
        if t.dtype in ("int8", "int16") and (t.quant is None or first.quant is None or (
                t.quant.scale, t.quant.zero_point) != (first.quant.scale, first.quant.zero_point)):
            raise refuse(op, f"'{t.name}' and '{first.name}' are quantized differently")
    if first.dtype not in ("int8", "int16", "int32", "float32"):
        raise refuse(op, f"{first.dtype} tensors")
    if first.dtype == "int16" and op.opcode in NO_INT16:
        raise refuse(op, "int16 tensors (TFLite has no int16 kernel for it either)")


# TFLite (LiteRT 2.3, measured) runs these on int8, int32 and float32 but not on int16.
NO_INT16 = frozenset({"DEPTH_TO_SPACE", "SPACE_TO_DEPTH"})


def _axis(op: Operator, graph: Graph, index: int, rank: int) -> int:
    value = int(constant_data(op, graph.tensor(index), "axis").reshape(-1)[0])
    return value % rank


def _kernel(op: Operator, func_name: str, ins: list[Tensor], outs: list[Tensor],
            regions: list[Region], extra: tuple[tuple[str, Constant], ...] = ()) -> Step:
    with kernel(func_name) as k:
        bufs = buffer_args(*[(f"input{n}", (t.size,), t.dtype) for n, t in enumerate(ins)],
                           *[(nm, (c.array.size,), c.dtype) for nm, c in extra],
                           *[(f"output{n}", (t.size,), t.dtype) for n, t in enumerate(outs)])
        in_bufs = bufs[:len(ins)] + bufs[len(ins):len(ins) + len(extra)]
        out_bufs = bufs[len(ins) + len(extra):]
        for r, (shape, fn) in enumerate(regions):
            with loop_nest(shape or (1,), prefix=f"r{r}_") as idx:
                k_in, src, n_out, dst = fn(idx, in_bufs)
                value = in_bufs[k_in][strided_offset(src, row_major_strides(ins[k_in].shape))]
                store(out_bufs[n_out], value, strided_offset(dst, row_major_strides(
                    outs[n_out].shape)))
    args: list[KernelArg] = [TensorArg(t.index) for t in ins]
    args += [c for _, c in extra]
    args += [TensorArg(t.index, writes=True) for t in outs]
    return Step(op_index=op.index, opcode=op.opcode, layer=outs[0].name, kind="kernel",
                inputs=tuple(t.index for t in ins), outputs=tuple(t.index for t in outs),
                func=k.func, func_name=func_name, args=tuple(args), macs=0)


def _shifted(idx: list, axis: int, offset: int) -> list:
    return [v + offset if a == axis else v for a, v in enumerate(idx)]


def lower_split(op: Operator, graph: Graph, func_name: str) -> Step:
    """SPLIT (axis, input) and SPLIT_V (input, size_splits, axis): consecutive slices."""
    x = graph.tensor(op.inputs[1] if op.opcode == "SPLIT" else op.inputs[0])
    outs = [graph.tensor(t) for t in op.outputs]
    _same(op, [x, *outs])
    axis = _axis(op, graph, op.inputs[0] if op.opcode == "SPLIT" else op.inputs[2], len(x.shape))
    if sum(t.shape[axis] for t in outs) != x.shape[axis]:
        raise refuse(op, f"outputs do not add up to the input along axis {axis}")
    regions: list[Region] = []
    offset = 0
    for n, t in enumerate(outs):
        regions.append((tuple(t.shape), lambda idx, _b, n=n, off=offset: (
            0, _shifted(idx, axis, off), n, idx)))
        offset += t.shape[axis]
    return _kernel(op, func_name, [x], outs, regions)


def lower_pack(op: Operator, graph: Graph, func_name: str) -> Step:
    ins = [graph.tensor(t) for t in op.inputs]
    y = graph.tensor(op.outputs[0])
    _same(op, [*ins, y])
    axis = op.options.get("axis", 0) % len(y.shape)
    regions: list[Region] = [
        (tuple(t.shape), lambda idx, _b, k=k: (k, idx, 0, [*idx[:axis], k, *idx[axis:]]))
        for k, t in enumerate(ins)]
    return _kernel(op, func_name, ins, [y], regions)


def lower_unpack(op: Operator, graph: Graph, func_name: str) -> Step:
    x = graph.tensor(op.inputs[0])
    outs = [graph.tensor(t) for t in op.outputs]
    _same(op, [x, *outs])
    axis = op.options.get("axis", 0) % len(x.shape)
    regions: list[Region] = [
        (tuple(t.shape), lambda idx, _b, k=k: (0, [*idx[:axis], k, *idx[axis:]], k, idx))
        for k, t in enumerate(outs)]
    return _kernel(op, func_name, [x], outs, regions)


def lower_depth_space(op: Operator, graph: Graph, func_name: str) -> Step:
    """DEPTH_TO_SPACE and SPACE_TO_DEPTH, NHWC, TFLite's channel order (block row, block
    column, channel)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _same(op, [x, y])
    bs = int(op.options["block_size"])
    if len(x.shape) != 4 or bs < 1:
        raise refuse(op, "needs a 4-D NHWC input and a positive block size")
    if op.opcode == "DEPTH_TO_SPACE":
        c = y.shape[3]

        def source(idx: list, _b: list) -> tuple[int, list, int, list]:
            b, h, w, ch = idx
            block = tirx.floormod(h, bs) * bs + tirx.floormod(w, bs)
            return 0, [b, tirx.floordiv(h, bs), tirx.floordiv(w, bs), block * c + ch], 0, idx
    else:
        c = x.shape[3]

        def source(idx: list, _b: list) -> tuple[int, list, int, list]:
            b, h, w, ch = idx
            dy, dx = tirx.floordiv(ch, bs * c), tirx.floormod(tirx.floordiv(ch, c), bs)
            return 0, [b, h * bs + dy, w * bs + dx, tirx.floormod(ch, c)], 0, idx
    return _kernel(op, func_name, [x], [y], [(tuple(y.shape), source)])


def lower_gather(op: Operator, graph: Graph, func_name: str) -> Step:
    """GATHER along ``axis`` (batch_dims 0). Constant indices are baked in; run-time indices
    are read from their tensor and clamped to the axis (TFLite stops with an error on an index
    out of range; a microcontroller must not read outside the tensor)."""
    params, indices = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    _same(op, [params, y])
    if op.options.get("batch_dims", 0):
        raise refuse(op, "batch_dims != 0")
    if indices.dtype not in ("int32", "int64"):
        raise refuse(op, f"{indices.dtype} indices")
    axis = op.options.get("axis", 0) % len(params.shape)
    rank_i, dim = len(indices.shape), params.shape[axis]
    ins = [params]
    extra: tuple[tuple[str, Constant], ...] = ()
    if indices.is_constant:
        data = np.clip(indices.data.astype(np.int64).reshape(-1), -dim, dim - 1) % dim
        extra = (("indices", Constant(f"l{op.index}_indices", data.astype(np.int32))),)
    else:
        ins.append(indices)
    strides = row_major_strides(tuple(indices.shape) or (1,))

    def source(idx: list, bufs: list) -> tuple[int, list, int, list]:
        where = strided_offset(idx[axis:axis + rank_i], strides) if rank_i else i32(0)
        value = i32(bufs[1][where])
        if not indices.is_constant:
            value = tirx.max(tirx.min(value, i32(dim - 1)), i32(0))
        return 0, [*idx[:axis], value, *idx[axis + rank_i:]], 0, idx

    return _kernel(op, func_name, ins, [y], [(tuple(y.shape), source)], extra)


def lower_variable(op: Operator, graph: Graph, func_name: str) -> Step:
    """READ_VARIABLE copies a variable's value out; ASSIGN_VARIABLE copies a new value in (see
    frontend.variables: the variable is an arena tensor kept between inferences). A copy, not an
    alias: a value read stays as it was after the variable is assigned, as in TFLite."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _same(op, [x, y])
    if x.shape != y.shape:
        raise refuse(op, f"'{x.name}' is {list(x.shape)}, '{y.name}' {list(y.shape)}")
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="copy",
                inputs=(x.index,), outputs=(y.index,),
                notes=("the variable's value, copied out" if op.opcode == "READ_VARIABLE"
                       else "the variable's new value, kept for the next inference"))


def lower_alias(op: Operator, graph: Graph, func_name: str) -> Step:
    """RESHAPE/SQUEEZE/EXPAND_DIMS: same bytes, new shape, so the output aliases the input."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype != y.dtype or x.size != y.size:
        raise refuse(op, f"reshape from {x.shape} {x.dtype} to {y.shape} {y.dtype}")
    if x.quant != y.quant:
        raise refuse(op, "reshape changes the quantization parameters")
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="alias",
                inputs=(x.index,), outputs=(y.index,))
