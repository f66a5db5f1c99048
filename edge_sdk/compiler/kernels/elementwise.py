"""ADD, int8 (``reference_integer_ops::Add`` / ``BroadcastAdd4DSlow``), with broadcasting.

``Prepare`` rescales both inputs to a common ``2 * max(scale1, scale2)`` with 20 bits of headroom
(``left_shift = 20``), adds, and rescales to the output, each step with TFLite's fixed-point
multiply. The float-to-double conversions follow the C++ (``2 * max`` happens in float).
"""

from __future__ import annotations

from tvm import tirx

from edge_sdk.compiler.kernels.common import int8_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import emit_multiply_by_quantized_multiplier
from edge_sdk.compiler.kernels.tir import buffer_args, clamp, i32, kernel, loop, scalar, store
from edge_sdk.compiler.program import Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, f32, quantize_multiplier
from edge_sdk.frontend.tflite import Graph, Operator

LEFT_SHIFT = 20


def _broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Row-major strides of ``shape`` aligned to ``out_shape``; 0 where the input broadcasts."""
    padded = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    strides, running = [0] * len(out_shape), 1
    for axis in reversed(range(len(out_shape))):
        if padded[axis] == out_shape[axis]:
            strides[axis] = running
        elif padded[axis] != 1:
            raise ValueError(f"shape {shape} does not broadcast to {out_shape}")
        running *= padded[axis]
    return strides


def lower_add(op: Operator, graph: Graph, func_name: str) -> Step:
    a = int8_tensor(op, graph, op.inputs[0], "first input")
    b = int8_tensor(op, graph, op.inputs[1], "second input")
    y = int8_tensor(op, graph, op.outputs[0], "output")
    for t in (a, b):
        if t.is_constant:
            raise refuse(op, f"constant input '{t.name}'")
    out_shape = tuple(y.shape) or (1,)
    try:
        a_strides = _broadcast_strides(a.shape, out_shape)
        b_strides = _broadcast_strides(b.shape, out_shape)
    except ValueError as err:
        raise refuse(op, str(err)) from None

    twice_max = f32(2 * f32(max(scale(a), scale(b))))
    m1, s1 = quantize_multiplier(scale(a) / twice_max)
    m2, s2 = quantize_multiplier(scale(b) / twice_max)
    mo, so = quantize_multiplier(twice_max / f32((1 << LEFT_SHIFT) * scale(y)))
    act_min, act_max = activation_range(op.options["activation"], scale(y), zero_point(y))

    with kernel(func_name) as k:
        A, B, Y = buffer_args(
            ("input1", (a.size,), "int8"),
            ("input2", (b.size,), "int8"),
            ("output", (y.size,), "int8"),
        )
        va, vb = scalar("a"), scalar("b")
        loops = [loop(f"i{axis}", d) for axis, d in enumerate(out_shape)]
        idx = []
        for lp in loops:
            idx.append(lp.__enter__())
        a_off = sum((v * s for v, s in zip(idx, a_strides, strict=True) if s), i32(0))
        b_off = sum((v * s for v, s in zip(idx, b_strides, strict=True) if s), i32(0))
        y_off = i32(0)
        for v, d in zip(idx, out_shape, strict=True):
            y_off = y_off * d + v
        store(va, (i32(A[a_off]) - zero_point(a)) * (1 << LEFT_SHIFT))
        store(vb, (i32(B[b_off]) - zero_point(b)) * (1 << LEFT_SHIFT))
        emit_multiply_by_quantized_multiplier(va, m1, s1)
        emit_multiply_by_quantized_multiplier(vb, m2, s2)
        store(va, va[0] + vb[0])
        emit_multiply_by_quantized_multiplier(va, mo, so)
        store(Y, tirx.Cast("int8", clamp(va[0] + zero_point(y), act_min, act_max)), y_off)
        for lp in reversed(loops):
            lp.__exit__(None, None, None)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=(a.index, b.index), outputs=(y.index,), func=k.func, func_name=func_name,
        args=(TensorArg(a.index), TensorArg(b.index), TensorArg(y.index, writes=True)),
        macs=y.size,
    )
