"""ADD, SUB, MUL, MAXIMUM, MINIMUM and SQUARED_DIFFERENCE, int8 (``reference_integer_ops::Add``/
``Mul``, their broadcast forms, ``MaximumMinimumBroadcastSlow``, SQUARED_DIFFERENCE's own).

``Prepare`` rescales both inputs to a common ``2 * max(scale1, scale2)`` with 20 bits of headroom
(``left_shift = 20``), adds, and rescales to the output, each step with TFLite's fixed-point
multiply. The float-to-double conversions follow the C++ (``2 * max`` happens in float). SUB is
the same arithmetic with the second input's multiplier negated, as TFLite's ``Prepare`` does.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from edge_sdk.compiler import gemmlowp
from edge_sdk.compiler.kernels.common import quantized_tensor, refuse, scale, zero_point
from edge_sdk.compiler.kernels.fixedpoint import (
    emit_multiply_by_quantized_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from edge_sdk.compiler.kernels.tir import (
    buffer_args,
    clamp,
    i32,
    kernel,
    loop_nest,
    output_nest,
    row_major_strides,
    scalar,
    select,
    store,
    strided_offset,
    thread_row_count,
)
from edge_sdk.compiler.program import Constant, Step, TensorArg
from edge_sdk.compiler.quantization import activation_range, f32, quantize_multiplier
from edge_sdk.ir import Graph, Operator, Tensor

LEFT_SHIFT = 20
LEFT_SHIFT_INT16 = 15


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


def binary_operands(op: Operator, graph: Graph, constants: bool = False
                    ) -> tuple[Tensor, Tensor, Tensor, tuple[int, ...], list[int], list[int]]:
    """``Prepare``'s checks for ADD/MUL: the two int8 inputs, the output, the output shape and
    each input's strides over it (0 where it broadcasts). ``constants``: an input may be a
    constant (the kernel then reads it from flash)."""
    a = quantized_tensor(op, graph, op.inputs[0], "first input")
    b = quantized_tensor(op, graph, op.inputs[1], "second input")
    y = quantized_tensor(op, graph, op.outputs[0], "output")
    if not a.dtype == b.dtype == y.dtype:
        raise refuse(op, f"inputs {a.dtype} and {b.dtype}, output {y.dtype}")
    for t in (a, b):
        if t.is_constant and not constants:
            raise refuse(op, f"constant input '{t.name}'")
    out_shape = tuple(y.shape) or (1,)
    try:
        a_strides = _broadcast_strides(a.shape, out_shape)
        b_strides = _broadcast_strides(b.shape, out_shape)
    except ValueError as err:
        raise refuse(op, str(err)) from None
    return a, b, y, out_shape, a_strides, b_strides


def _broadcast_binary(op: Operator, graph: Graph, func_name: str, body,
                      tables: tuple[Constant, ...] = (), threads: bool = False) -> Step:
    """Shared ADD/MUL skeleton: two int8 (or int16) inputs broadcast to the output shape.
    ``body(va, vb, a, b, y, *table_buffers)`` turns the zero-point-free inputs in ``va``/``vb``
    into the output value (before its zero point) in ``va``. An input may be a constant (a
    bias or a scale the model adds to a feature map): the kernel reads it from flash.
    ``threads``: the Linux CPU schedule, the output's rows (:func:`~.tir.thread_rows`)
    shared by the thread pool."""
    a, b, y, out_shape, a_strides, b_strides = binary_operands(op, graph, constants=True)
    act_min, act_max = activation_range(op.options.get("activation", "NONE"), scale(y),
                                        zero_point(y), y.dtype)

    with kernel(func_name) as k:
        specs = [("input1", (a.size,), a.dtype), ("input2", (b.size,), b.dtype),
                 *[(t.name.split("_", 1)[-1], (t.array.size,), t.dtype) for t in tables],
                 ("output", (y.size,), y.dtype)]
        bufs = buffer_args(*specs, rows=threads)
        A, B, T, Y = bufs[0], bufs[1], bufs[2:len(specs) - 1], bufs[len(specs) - 1]
        span = bufs[len(specs):]
        va, vb = scalar("a"), scalar("b")
        with output_nest(out_shape, span) as idx:
            store(va, i32(A[strided_offset(idx, a_strides)]) - zero_point(a))
            store(vb, i32(B[strided_offset(idx, b_strides)]) - zero_point(b))
            body(va, vb, a, b, y, *T)
            store(va, clamp(va[0] + zero_point(y), act_min, act_max))
            store(Y, tirx.Cast(y.dtype, va[0]), strided_offset(idx, row_major_strides(out_shape)))

    def operand(t: Tensor, role: str) -> TensorArg | Constant:
        if t.is_constant:
            return Constant(f"l{op.index}_{role}", np.asarray(t.data, t.dtype).reshape(-1))
        return TensorArg(t.index)

    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=tuple(t.index for t in (a, b) if not t.is_constant), outputs=(y.index,),
        func=k.func, func_name=func_name,
        args=(operand(a, "input1"), operand(b, "input2"), *tables,
              TensorArg(y.index, writes=True)),
        macs=y.size, notes="cpu: rows over threads" if threads else "",
        row_phases=(thread_row_count(out_shape),) if threads else (),
    )


def add_multipliers(a: Tensor, b: Tensor, y: Tensor, subtract: bool = False,
                    left_shift: int = LEFT_SHIFT) -> tuple[tuple[int, int], ...]:
    """``Prepare`` of int8 ADD (or SUB: the second multiplier negated): (multiplier, shift) for
    input 1, input 2 and the output."""
    twice_max = f32(2 * f32(max(scale(a), scale(b))))
    m2, s2 = quantize_multiplier(scale(b) / twice_max)
    return (quantize_multiplier(scale(a) / twice_max),
            (-m2 if subtract else m2, s2),
            quantize_multiplier(twice_max / f32((1 << left_shift) * scale(y))))


def lower_add(op: Operator, graph: Graph, func_name: str, threads: bool = False) -> Step:
    """ADD or SUB (same arithmetic, see the module docstring). int16 (TFLite's general-scale
    16x8 path) uses 15 bits of headroom instead of 20; the older power-of-two-scale int16 kernel
    (``pot_scale_int16``) is refused."""
    if graph.tensor(op.outputs[0]).dtype == "int16" and op.options.get("pot_scale_int16"):
        raise refuse(op, "int16 with pot_scale_int16 (the power-of-two-scale kernel); "
                         "re-convert the model with a current TFLite converter")
    shift = LEFT_SHIFT_INT16 if graph.tensor(op.outputs[0]).dtype == "int16" else LEFT_SHIFT

    def body(va, vb, a, b, y) -> None:
        (m1, s1), (m2, s2), (mo, so) = add_multipliers(a, b, y, op.opcode == "SUB", shift)
        store(va, va[0] * (1 << shift))
        store(vb, vb[0] * (1 << shift))
        emit_multiply_by_quantized_multiplier(va, m1, s1)
        emit_multiply_by_quantized_multiplier(vb, m2, s2)
        store(va, va[0] + vb[0])
        emit_multiply_by_quantized_multiplier(va, mo, so)

    return _broadcast_binary(op, graph, func_name, body, threads=threads)


def lower_mul(op: Operator, graph: Graph, func_name: str, threads: bool = False) -> Step:
    """MUL (``reference_integer_ops::Mul``): one requantization of the int32 product.

    ``Prepare`` computes ``input1_scale * input2_scale / output_scale`` in float, not double.
    """

    def body(va, vb, a, b, y) -> None:
        m, s = quantize_multiplier(f32(f32(scale(a) * scale(b)) / scale(y)))
        store(va, va[0] * vb[0])
        emit_multiply_by_quantized_multiplier(va, m, s)

    return _broadcast_binary(op, graph, func_name, body, threads=threads)


SQUARED_DIFFERENCE_LEFT_SHIFT = 7  # 255^2 * 2^14 still fits int32


def lower_squared_difference(op: Operator, graph: Graph, func_name: str) -> Step:
    """SQUARED_DIFFERENCE, int8 (``EvalQuantizedSquaredDifference``): both inputs rescaled to
    ``2 * max(scale1, scale2)`` with 7 bits of headroom, the difference squared in int32, then
    one requantization to the output (multipliers formed in double, as ``Prepare``)."""
    if graph.tensor(op.outputs[0]).dtype == "int16":
        raise refuse(op, "int16 tensors (TFLite has no int16 kernel for it either)")
    shift = SQUARED_DIFFERENCE_LEFT_SHIFT

    def body(va, vb, a, b, y) -> None:
        twice_max = 2.0 * float(max(f32(scale(a)), f32(scale(b))))
        m1, s1 = quantize_multiplier(scale(a) / twice_max)
        m2, s2 = quantize_multiplier(scale(b) / twice_max)
        mo, so = quantize_multiplier(twice_max * twice_max / float(f32((1 << 2 * shift)
                                                                      * f32(scale(y)))))
        store(va, va[0] * (1 << shift))
        store(vb, vb[0] * (1 << shift))
        emit_multiply_by_quantized_multiplier(va, m1, s1)
        emit_multiply_by_quantized_multiplier(vb, m2, s2)
        store(va, va[0] - vb[0])
        store(va, va[0] * va[0])
        emit_multiply_by_quantized_multiplier(va, mo, so)

    return _broadcast_binary(op, graph, func_name, body)


def _leading_sign_bits(v: int) -> int:
    """``CountLeadingSignBits`` of an int32."""
    if v >= 0:
        return 32 - v.bit_length() - 1
    return 32 - (2 * -v - 1).bit_length() if v != -(2**31) else 0


def division_tables(op: Operator, a_zp: int, b_zp: int) -> tuple[Constant, ...]:
    """Per raw int8 value: the divisor's ``GetReciprocal`` (multiplier, bits over unit) of its
    magnitude, and a dividend's leading sign bits as is and negated (a negative divisor flips
    both signs)."""
    inverse, over_unit, lsb_pos, lsb_neg = [], [], [], []
    for q in range(-128, 128):
        d = abs(q - b_zp)
        if d == 0:  # TFLite leaves division by zero undefined; we return the zero point
            inverse.append(0)
            over_unit.append(0)
        else:
            headroom_plus_one = 32 - d.bit_length()
            shifted = ((d << headroom_plus_one) - (1 << 31)) & 0xFFFFFFFF
            shifted = shifted - (1 << 32) if shifted >= 1 << 31 else shifted
            inverse.append(gemmlowp.one_over_one_plus_x_for_x_in_0_1(shifted))
            over_unit.append(31 - headroom_plus_one)
        lsb_pos.append(_leading_sign_bits(q - a_zp))
        lsb_neg.append(_leading_sign_bits(a_zp - q))
    prefix = f"l{op.index}"
    return (Constant(f"{prefix}_inverse", np.array(inverse, np.int32)),
            Constant(f"{prefix}_over_unit", np.array(over_unit, np.int32)),
            Constant(f"{prefix}_sign_bits", np.array(lsb_pos, np.int32)),
            Constant(f"{prefix}_sign_bits_negated", np.array(lsb_neg, np.int32)))


def lower_div(op: Operator, graph: Graph, func_name: str) -> Step:
    """DIV, int8 (``reference_ops::DivElementwise``): per element, the divisor's fixed-point
    reciprocal (``GetReciprocal``; tabulated per int8 value at compile time), the dividend
    shifted up by its leading sign bits and multiplied by it, then one rounding shift folded
    with the output multiplier ``input1_scale / (input2_scale * output_scale)`` (float32).
    Division by zero, which TFLite leaves undefined, gives the output zero point."""
    if graph.tensor(op.outputs[0]).dtype != "int8":
        raise refuse(op, f"{graph.tensor(op.outputs[0]).dtype} (int8 and float32 are supported)")
    tables = division_tables(op, zero_point(graph.tensor(op.inputs[0])),
                             zero_point(graph.tensor(op.inputs[1])))

    def body(va, vb, a, b, y, inverse, over_unit, sign_bits, sign_bits_negated) -> None:
        m, s = quantize_multiplier(f32(scale(a) / f32(scale(b) * scale(y))))
        headroom, divisor = scalar("headroom"), scalar("divisor")
        store(divisor, vb[0] + i32(zero_point(b) + 128))  # table index of the raw divisor
        raw_a = va[0] + i32(zero_point(a) + 128)
        store(headroom, select(vb[0] < i32(0), sign_bits_negated[raw_a], sign_bits[raw_a]))
        store(va, select(vb[0] < i32(0), i32(0) - va[0], va[0]) << headroom[0])
        store(va, saturating_rounding_doubling_high_mul(va[0], inverse[divisor[0]]))
        store(va, saturating_rounding_doubling_high_mul(va[0], i32(m)))
        # A right shift of 32 or more (a dividend of a few steps over a large divisor) is
        # undefined in TFLite's C++ (x86 gives +-saturation); the exact quotient is below half a
        # step there, so the result is the zero point.
        store(headroom, over_unit[divisor[0]] + headroom[0] - i32(s))
        store(va, select(headroom[0] > i32(31), i32(0),
                         rounding_divide_by_pot(va[0], tirx.min(headroom[0], i32(31)))))

    return _broadcast_binary(op, graph, func_name, body, tables)


def lower_maximum_minimum(op: Operator, graph: Graph, func_name: str) -> Step:
    """MAXIMUM / MINIMUM, int8 (``reference_ops::MaximumMinimumBroadcastSlow``): TFLite compares
    the raw int8 values and applies no requantization, whatever the three tensors' parameters,
    so neither do we."""
    a, b, y, out_shape, a_strides, b_strides = binary_operands(op, graph, constants=True)
    pick = tirx.max if op.opcode == "MAXIMUM" else tirx.min

    def operand(t: Tensor) -> TensorArg | Constant:
        if t.is_constant:
            return Constant(f"l{op.index}_{'input1' if t is a else 'input2'}",
                            np.asarray(t.data, t.dtype).reshape(-1))
        return TensorArg(t.index)

    with kernel(func_name) as k:
        A, B, Y = buffer_args(("input1", (a.size,), a.dtype), ("input2", (b.size,), b.dtype),
                              ("output", (y.size,), y.dtype))
        with loop_nest(out_shape) as idx:
            store(Y, pick(A[strided_offset(idx, a_strides)], B[strided_offset(idx, b_strides)]),
                  strided_offset(idx, row_major_strides(out_shape)))
    return Step(
        op_index=op.index, opcode=op.opcode, layer=y.name, kind="kernel",
        inputs=tuple(t.index for t in (a, b) if not t.is_constant), outputs=(y.index,),
        func=k.func, func_name=func_name,
        args=(operand(a), operand(b), TensorArg(y.index, writes=True)), macs=y.size,
    )
