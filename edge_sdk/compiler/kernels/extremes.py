"""ARG_MAX/ARG_MIN and REDUCE_MAX/REDUCE_MIN: int8 and float32 (tested; int16 runs the same code).

Largest and smallest values do not depend on the quantization (a positive scale keeps the
order), so TFLite compares the raw elements and, for REDUCE_*, copies the winner: both tensors
must then share scale and zero point, which we check. ARG_* keeps the *first* index of the
extreme, as TFLite's strict comparison does, and writes int32 or int64 as the model asks.
The reduced axes are folded at compile time into (outer, reduced, inner) loops.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import constant_data, refuse
from edge_sdk.compiler.kernels.tir import buffer_args, i32, kernel, loop, scalar, store, when
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.ir import Graph, Operator, Tensor

_DTYPES = ("int8", "int16", "float32")


def _check(op: Operator, x: Tensor) -> None:
    if x.dtype not in _DTYPES:
        raise refuse(op, f"{x.dtype} input")
    if x.dtype == "int16" and op.opcode in ("ARG_MAX", "ARG_MIN"):
        raise refuse(op, "int16 input (TFLite has no int16 kernel for it either)")
    if x.dtype != "float32" and (x.quant is None or x.quant.per_channel):
        raise refuse(op, f"input '{x.name}' is not per-tensor quantized")


def _axes(op: Operator, graph: Graph, x: Tensor) -> list[int]:
    values = constant_data(op, graph.tensor(op.inputs[1]), "axis").reshape(-1)
    return sorted({int(a) % len(x.shape) for a in values})


def lower_arg_extreme(op: Operator, graph: Graph, func_name: str) -> Step:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _check(op, x)
    if y.dtype not in ("int32", "int64"):
        raise refuse(op, f"{y.dtype} output (TFLite writes int32 or int64)")
    (axis,) = _axes(op, graph, x)
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    count, inner = x.shape[axis], int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    better = (lambda a, b: a > b) if op.opcode == "ARG_MAX" else (lambda a, b: a < b)
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (outer, count, inner), x.dtype),
                           ("output", (outer, inner), y.dtype))
        best, where = scalar("best", x.dtype), scalar("index")
        with loop("o", outer) as o, loop("i", inner) as i:
            store(best, X[o, 0, i])
            store(where, i32(0))
            with loop("j", count, start=1) as j, when(better(X[o, j, i], best[0])):
                store(best, X[o, j, i])
                store(where, j)
            store(Y, tirx.Cast(y.dtype, where[0]), o, i)
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
                args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size,
                notes="first index of the extreme, as TFLite")


def lower_reduce_extreme(op: Operator, graph: Graph, func_name: str) -> Step:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _check(op, x)
    if y.dtype != x.dtype or (x.quant and y.quant and (x.quant.scale, x.quant.zero_point) != (
            y.quant.scale, y.quant.zero_point)):
        raise refuse(op, "input and output are quantized differently")
    axes = _axes(op, graph, x)
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise refuse(op, f"non-adjacent axes {axes}")
    outer = int(np.prod(x.shape[:axes[0]], dtype=np.int64))
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    inner = int(np.prod(x.shape[axes[-1] + 1:], dtype=np.int64))
    pick = tirx.max if op.opcode == "REDUCE_MAX" else tirx.min
    with kernel(func_name) as k:
        X, Y = buffer_args(("input", (outer, count, inner), x.dtype),
                           ("output", (outer, inner), y.dtype))
        best = scalar("best", x.dtype)
        with loop("o", outer) as o, loop("i", inner) as i:
            store(best, X[o, 0, i])
            with loop("j", count) as j:
                store(best, pick(best[0], X[o, j, i]))
            store(Y, best[0], o, i)
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
                inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
                args=(TensorArg(x.index), TensorArg(y.index, writes=True)), macs=x.size)
