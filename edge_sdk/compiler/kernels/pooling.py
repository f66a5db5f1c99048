"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 and int16x8 (``reference_integer_ops::AveragePool``/
``MaxPool``; the int16 kernels are the same arithmetic on wider values).

Pooling does not requantize: TFLite requires the same scale and zero point on input and output.
The average divides by the number of taps inside the image (padding excluded) and rounds half
away from zero with integer arithmetic, as the reference kernel does.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm import tirx
from tvm.script.ir_builder import tirx as T

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


def lower_pool_rows(op: Operator, graph: Graph, func_name: str, scratch=None) -> Step | None:
    """The Linux CPU schedule of AVERAGE_POOL_2D/MAX_POOL_2D, int8 and float32: output rows
    (batch x height) over the thread pool, and inside a row the window's taps outside with
    every channel's sum or maximum advancing side by side in vector lanes (the portable
    kernels finish one channel's window before the next). Each output still visits its taps
    in the reference's order, so float averages are the same bits. None for a small layer."""
    from edge_sdk.compiler.kernels.float32 import _activation, _float_tensor
    from edge_sdk.compiler.kernels.schedule import THREAD_MIN_VALUES

    floating = graph.tensor(op.inputs[0]).dtype == "float32"
    if floating:
        x = _float_tensor(op, graph, op.inputs[0], "input")
        y = _float_tensor(op, graph, op.outputs[0], "output")
        (fh, fw), stride = op.options["filter"], op.options["stride"]
        if len(x.shape) != 4:
            return None  # the portable kernel says why
        (oh, ow), pad = conv_geometry(op.options["padding"], (x.shape[1], x.shape[2]),
                                      (fh, fw), stride)
        is_avg = op.opcode == "AVERAGE_POOL_2D"
        if tuple(y.shape) != (x.shape[0], oh, ow, x.shape[3]):
            return None
    else:
        p = plan_pool2d(op, graph)
        x, y, is_avg, (fh, fw), stride, pad = p.x, p.y, p.is_avg, p.filter, p.stride, p.pad
    n, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    if y.size < THREAD_MIN_VALUES or n * oh < 2:
        return None
    acc_dtype = "float32" if floating else "int32"
    start = (tirx.const(0, acc_dtype) if is_avg  # a sum, or a maximum from the lowest value
             else tirx.min_value("float32") if floating else i32(-128))

    with kernel(func_name) as k:
        X, Y, _phase, begin, end = buffer_args(("input", (x.size,), x.dtype),
                                               ("output", (y.size,), y.dtype), rows=True)
        acc = T.alloc_buffer((c,), acc_dtype)
        count = scalar("count")
        with loop("row", end, begin) as row, loop("ox", ow) as ox:
            b, oy = tirx.floordiv(row, oh), tirx.floormod(row, oh)
            y0, x0 = oy * int(stride[0]) - int(pad[0]), ox * int(stride[1]) - int(pad[1])
            # The window clipped to the image, as in the reference kernels.
            fy0, fy1 = tirx.max(i32(0), -y0), tirx.min(i32(fh), ih - y0)
            fx0, fx1 = tirx.max(i32(0), -x0), tirx.min(i32(fw), iw - x0)
            store(count, (fy1 - fy0) * (fx1 - fx0))
            with loop("ch", c) as ch:
                store(acc, start, ch)
            with loop("fy", fh) as fy, loop("fx", fw) as fx, \
                    when(tirx.all(fy >= fy0, fy < fy1, fx >= fx0, fx < fx1)), \
                    loop("ch", c) as ch:
                v = X[((b * ih + y0 + fy) * iw + x0 + fx) * c + ch]
                v = v if floating else i32(v)
                store(acc, acc[ch] + v if is_avg else tirx.max(acc[ch], v), ch)
            with loop("ch", c) as ch:
                out = ((b * oh + oy) * ow + ox) * c + ch
                if floating:
                    value = acc[ch] / tirx.Cast("float32", count[0]) if is_avg else acc[ch]
                    store(Y, _activation(op, value), out)
                else:
                    total = acc[ch]
                    if is_avg:  # rounding half away from zero, as the reference divides
                        half = tirx.truncdiv(count[0], i32(2))
                        total = select(total > 0, tirx.truncdiv(total + half, count[0]),
                                       tirx.truncdiv(total - half, count[0]))
                    store(Y, tirx.Cast(y.dtype, clamp(total, *p.act)), out)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(x.index,), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(x.index), TensorArg(y.index, writes=True)),
        macs=n * oh * ow * c * fh * fw, row_phases=(n * oh,),
        notes=f"{'float32 ' if floating else ''}cpu: channels in vector lanes, rows over "
              "threads",
    )
