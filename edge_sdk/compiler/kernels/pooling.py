"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 and int16x8 (``reference_integer_ops::AveragePool``/
``MaxPool``; the int16 kernels are the same arithmetic on wider values).

Pooling does not requantize: TFLite requires the same scale and zero point on input and output.
The average divides by the number of taps inside the image (padding excluded) and rounds half
away from zero with integer arithmetic, as the reference kernel does.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import tirx

from edge_sdk.compiler.kernels.common import quantized_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    kernel,
    loop,
    scalar,
    select,
    store,
    when,
)
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, conv_geometry
from edge_sdk.ir import Graph, Operator, Tensor


@dataclass(frozen=True)
class PoolPlan:
    """``Prepare`` for one int8 pooling layer (shared by the C and GPU kernel builders)."""

    op: Operator
    x: Tensor
    y: Tensor
    is_avg: bool
    filter: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    act: tuple[int, int]

    def step(self, func: tirx.PrimFunc, func_name: str, notes: str = "") -> Step:
        n, oh, ow, c = self.y.shape
        return Step(
            op_index=self.op.index, opcode=self.op.opcode, layer=self.y.name, kind="kernel",
            inputs=(self.x.index,), outputs=(self.y.index,), func=func, func_name=func_name,
            args=(TensorArg(self.x.index), TensorArg(self.y.index, writes=True)),
            macs=n * oh * ow * c * self.filter[0] * self.filter[1], notes=notes,
        )


def plan_pool2d(op: Operator, graph: Graph) -> PoolPlan:
    x = quantized_tensor(op, graph, op.inputs[0], "input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if x.dtype != y.dtype:
        raise refuse(op, f"{x.dtype} input with {y.dtype} output")
    if scale(x) != scale(y) or zero_point(x) != zero_point(y):
        raise refuse(op, "input and output quantization differ")
    if len(x.shape) != 4:
        raise refuse(op, "only 4-D NHWC input is supported")
    n, ih, iw, c = x.shape
    fh, fw = op.options["filter"]
    stride = op.options["stride"]
    (oh, ow), pad = conv_geometry(op.options["padding"], (ih, iw), (fh, fw), stride)
    if tuple(y.shape) != (n, oh, ow, c):
        raise refuse(op, f"output shape {y.shape} does not match computed {(n, oh, ow, c)}")
    return PoolPlan(op=op, x=x, y=y, is_avg=op.opcode == "AVERAGE_POOL_2D", filter=(fh, fw),
                    stride=(int(stride[0]), int(stride[1])), pad=(int(pad[0]), int(pad[1])),
                    act=activation_range(op.options["activation"], scale(y), zero_point(y),
                                         y.dtype))


def lower_pool2d(op: Operator, graph: Graph, func_name: str) -> Step:
    p = plan_pool2d(op, graph)
    x, y, is_avg = p.x, p.y, p.is_avg
    n, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    (fh, fw), stride, (ph, pw) = p.filter, p.stride, p.pad
    act_min, act_max = p.act

    dtype = x.dtype
    lowest = -128 if dtype == "int8" else -32768
    with kernel(func_name) as k:
        X, Y = buffer_args(
            ("input", x.shape, dtype),
            ("output", y.shape, dtype),
        )
        acc = scalar("acc")
        count = scalar("count") if is_avg else None
        with loop("b", n) as b, loop("oy", oh) as oy, loop("ox", ow) as ox, loop("ch", c) as ch:
            y0 = oy * stride[0] - ph
            x0 = ox * stride[1] - pw
            # The window clipped to the image, as in the reference kernel.
            fy0, fy1 = tirx.max(i32(0), -y0), tirx.min(i32(fh), ih - y0)
            fx0, fx1 = tirx.max(i32(0), -x0), tirx.min(i32(fw), iw - x0)
            store(acc, i32(0) if is_avg else i32(lowest))
            if count is not None:
                store(count, i32(0))
            with loop("fy", fh) as fy, loop("fx", fw) as fx:
                inside = tirx.all(fy >= fy0, fy < fy1, fx >= fx0, fx < fx1)
                value = i32(X[b, y0 + fy, x0 + fx, ch])
                with when(inside):
                    if count is not None:
                        store(acc, acc[0] + value)
                        store(count, count[0] + 1)
                    else:
                        store(acc, tirx.max(acc[0], value))
            if count is not None:
                half = tirx.truncdiv(count[0], i32(2))
                store(acc, select(acc[0] > 0,
                                  tirx.truncdiv(acc[0] + half, count[0]),
                                  tirx.truncdiv(acc[0] - half, count[0])))
            store(Y, tirx.Cast(dtype, clamp(acc[0], act_min, act_max)), b, oy, ox, ch)

    return p.step(k.func, func_name)
