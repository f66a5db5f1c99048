"""SOFTMAX, int8 in and out, matching TFLite's builtin kernel bit for bit.

TFLite's int8 softmax (``SoftmaxPrepare`` + ``optimized_ops::Softmax`` with the float lookup
table; the reference resolver uses it too) is one of the places where the reference itself works
in float: a 256-entry ``expf`` table built at prepare time, a float sum, ``1/(sum*scale)`` and
``round``. We build the same table at compile time with the C library's ``expf`` (through ctypes,
so the values are the libm ones, not NumPy's) and emit the same float operations in the same
order. Compile the result with ``-ffp-contract=off`` so no FMA changes the rounding.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from functools import cache

import numpy as np
from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, f32, i32, kernel, loop, scalar, store
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import f32 as to_f32
from edge_sdk.frontend.tflite import Graph, Operator, Tensor


@cache
def _libm_expf() -> ctypes._CFuncPtr:
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    fn = libm.expf
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float]
    return fn


def exp_table(input_scale: float, beta: float) -> np.ndarray:
    """``PopulateSoftmaxLookupTable``: ``table[255 - v] = expf(-input_scale * beta * v)``."""
    expf = _libm_expf()
    s = to_f32(-to_f32(input_scale) * to_f32(beta))
    table = np.zeros(256, dtype=np.float32)
    for v in range(256):
        table[255 - v] = expf(to_f32(s * v))
    return table


@dataclass(frozen=True)
class SoftmaxPlan:
    """``SoftmaxPrepare`` for int8: the exp table and the output scale, as exact constants."""

    op: Operator
    x: Tensor
    y: Tensor
    outer: int
    depth: int
    output_zp: int
    table: Constant
    output_scale: Constant

    def step(self, func: tirx.PrimFunc, func_name: str, notes: str = "") -> Step:
        return Step(
            op_index=self.op.index, opcode=self.op.opcode, layer=self.y.name, kind="kernel",
            inputs=(self.x.index,), outputs=(self.y.index,), func=func, func_name=func_name,
            args=(TensorArg(self.x.index), self.table, self.output_scale,
                  TensorArg(self.y.index, writes=True)),
            macs=self.x.size, notes=notes or "float lookup table, as TFLite's reference softmax",
        )


def plan_softmax(op: Operator, graph: Graph) -> SoftmaxPlan:
    x = int8_tensor(op, graph, op.inputs[0], "input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    if x.shape != y.shape or not x.shape:
        raise refuse(op, "input and output shapes differ")
    depth = x.shape[-1]
    return SoftmaxPlan(
        op=op, x=x, y=y, outer=x.size // depth, depth=depth, output_zp=zero_point(y),
        table=Constant(f"l{op.index}_exp_table",
                       exp_table(scale(x), op.options.get("beta", 1.0))),
        output_scale=Constant(f"l{op.index}_output_scale",
                              np.array([scale(y)], dtype=np.float32)),
    )


def lower_softmax(op: Operator, graph: Graph, func_name: str) -> Step:
    p = plan_softmax(op, graph)
    outer, depth = p.outer, p.depth
    with kernel(func_name) as k:
        X, E, S, Y = buffer_args(
            ("input", (outer, depth), "int8"),
            ("exp_table", (256,), "float32"),
            ("output_scale", (1,), "float32"),
            ("output", (outer, depth), "int8"),
        )
        max_val = scalar("max_val")
        total = scalar("sum_exp", "float32")
        inv = scalar("inv_sum_exp", "float32")
        with loop("i", outer) as i:
            store(max_val, i32(-128))
            with loop("j", depth) as j:
                store(max_val, tirx.max(max_val[0], i32(X[i, j])))
            store(total, f32(0.0))
            with loop("j", depth) as j:
                store(total, total[0] + E[255 - max_val[0] + i32(X[i, j])])
            store(inv, f32(1.0) / (total[0] * S[0]))
            with loop("j", depth) as j:
                prob = E[255 - max_val[0] + i32(X[i, j])] * inv[0]
                rounded = i32(tirx.call_pure_extern("float32", "roundf", prob))
                store(Y, tirx.Cast("int8", clamp(rounded + p.output_zp, -128, 127)), i, j)
    return p.step(k.func, func_name)
