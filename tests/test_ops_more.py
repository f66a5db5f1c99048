"""Bit-exactness of the element-wise, data-movement and reduction operators (see test_ops)."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.conftest import random_inputs, reference
from tests.test_ops import act, bias, weights


def const_i32(name, values):
    data = np.array(values, dtype=np.int32)
    return TensorSpec(name, data.shape, "int32", data=data)


def unary(opcode, in_q, out_q, shape=(1, 3, 4, 5)):
    tensors = [act("input", shape, *in_q), act("output", shape, *out_q)]
    return build_model(tensors, [OpSpec(opcode, [0], [1])], [0], [1])


def with_const(opcode, in_shape, out_shape, consts, options=None, in_q=(0.1, -7), out_q=None):
    tensors = [act("input", in_shape, *in_q), *consts,
               act("output", out_shape, *(out_q or in_q))]
    ins = list(range(len(consts) + 1))
    out = len(tensors) - 1
    return build_model(tensors, [OpSpec(opcode, ins, [out], options or {})], [0], [out])


def mul_model(broadcast: bool):
    shape = (1, 4, 5, 3)
    if broadcast:
        tensors = [act("input", shape, 0.05, 3), act("pooled", (1, 1, 1, 3), 0.05, 3),
                   act("product", shape, 0.01, -2)]
        ops = [OpSpec("AVERAGE_POOL_2D", [0], [1], {"filter": (4, 5)}),
               OpSpec("MUL", [0, 1], [2], {"activation": "RELU"})]
        return build_model(tensors, ops, [0], [2])
    tensors = [act("input", shape, 0.05, 3), weights("w", (3, 1, 1, 3), [0.02, 0.03, 0.01]),
               bias("b", 3, 0.05, [0.02, 0.03, 0.01]), act("conv", shape, 0.13, -20),
               act("product", shape, 0.011, 7)]
    ops = [OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": "VALID"}),
           OpSpec("MUL", [0, 3], [4])]
    return build_model(tensors, ops, [0], [4])


def concat_model(axis):
    shape = (1, 3, 4, 2)
    out_shape = list(shape)
    out_shape[axis] *= 2
    tensors = [act("input", shape, 0.1, 5), act("pooled", shape, 0.1, 5),
               act("output", tuple(out_shape), 0.1, 5)]
    ops = [OpSpec("AVERAGE_POOL_2D", [0], [1], {"filter": (2, 2), "padding": "SAME"}),
           OpSpec("CONCATENATION", [1, 0], [2], {"axis": axis})]
    return build_model(tensors, ops, [0], [2])


def slice_model(begin, end, strides, out_shape, **masks):
    consts = [const_i32("begin", begin), const_i32("end", end), const_i32("strides", strides)]
    return with_const("STRIDED_SLICE", (1, 6, 5, 4), out_shape, consts, masks)


CASES = {
    "logistic": lambda: unary("LOGISTIC", (0.08, 11), (1 / 256, -128)),
    "logistic_wide_input": lambda: unary("LOGISTIC", (0.3, -20), (1 / 256, -128)),
    "tanh": lambda: unary("TANH", (0.03, -4), (1 / 128, 0)),
    "tanh_wide_input": lambda: unary("TANH", (0.2, 30), (1 / 128, 0)),
    "hard_swish": lambda: unary("HARD_SWISH", (0.05, -10), (0.03, -100)),
    "hard_swish_large_range": lambda: unary("HARD_SWISH", (0.4, 5), (0.2, -60)),
    "relu_rescales": lambda: unary("RELU", (0.1, -5), (0.07, -128)),
    "relu6": lambda: unary("RELU6", (0.05, 10), (0.03, -128)),
    "relu_n1_to_1": lambda: unary("RELU_N1_TO_1", (0.02, 0), (0.01, 0)),
    "quantize_requantizes": lambda: unary("QUANTIZE", (0.1, 3), (0.037, -20)),
    "mul": lambda: mul_model(False),
    "mul_broadcast_relu": lambda: mul_model(True),
    "pad": lambda: with_const("PAD", (1, 3, 4, 2), (1, 6, 5, 2),
                              [const_i32("paddings", [[0, 0], [1, 2], [0, 1], [0, 0]])]),
    "padv2_value": lambda: with_const(
        "PADV2", (1, 3, 3, 2), (1, 5, 3, 2),
        [const_i32("paddings", [[0, 0], [2, 0], [0, 0], [0, 0]]),
         TensorSpec("value", (), "int8", (0.1,), (-7,), data=np.array(42, np.int8))]),
    "concat_channels": lambda: concat_model(3),
    "concat_height": lambda: concat_model(1),
    "strided_slice_masks": lambda: slice_model([0, 1, 0, 1], [1, 6, 5, 3], [1, 2, 1, 1],
                                               (1, 3, 5, 2), begin_mask=4, end_mask=4),
    "strided_slice_negative": lambda: slice_model([0, -1, 4, 0], [1, -7, 0, 4], [1, -2, -2, 1],
                                                  (1, 3, 2, 4)),
    "strided_slice_shrink": lambda: slice_model([0, 2, 0, 0], [1, 3, 5, 4], [1, 1, 1, 1],
                                                (1, 5, 4), shrink_axis_mask=2),
    "transpose": lambda: with_const("TRANSPOSE", (1, 3, 4, 5), (1, 5, 3, 4),
                                    [const_i32("perm", [0, 3, 1, 2])]),
    "mean_global_pool": lambda: with_const("MEAN", (1, 5, 6, 8), (1, 1, 1, 8),
                                           [const_i32("axis", [1, 2])], {"keep_dims": True},
                                           in_q=(0.1, -7), out_q=(0.03, 4)),
    "mean_global_pool_7x7": lambda: with_const("MEAN", (1, 7, 7, 3), (1, 1, 1, 3),
                                               [const_i32("axis", [2, 1])], {"keep_dims": True},
                                               in_q=(0.023, 20), out_q=(0.011, -9)),
    # MobileNetV2's head (same scale in and out): a multiplier rounded the wrong way was off by
    # one on 519 of 25,600 outputs; so was a 5x6 mean on 19 of 640.
    "mean_7x7x1280_same_scale": lambda: with_const(
        "MEAN", (1, 7, 7, 1280), (1, 1, 1, 1280), [const_i32("axis", [1, 2])],
        {"keep_dims": True}, in_q=(0.0235, -128), out_q=(0.0235, -128)),
    "mean_5x6_same_scale": lambda: with_const(
        "MEAN", (1, 5, 6, 32), (1, 1, 1, 32), [const_i32("axis", [1, 2])],
        {"keep_dims": True}, in_q=(0.05, 3), out_q=(0.05, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_bit_exact(case):
    model = CASES[case]()
    graph = parse(model, name=case)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=6, seed=len(case))
    expected = reference(model, x)
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


EXHAUSTIVE = {
    "LOGISTIC": ((0.08, 11), (1 / 256, -128)),
    "TANH": ((0.05, -4), (1 / 128, 0)),
    "HARD_SWISH": ((0.05, -10), (0.03, -100)),
    "RELU6": ((0.05, 10), (0.03, -128)),
    "QUANTIZE": ((0.1, 3), (0.037, -20)),
}


@pytest.mark.parametrize("opcode", sorted(EXHAUSTIVE))
def test_unary_ops_on_every_int8_value(opcode):
    in_q, out_q = EXHAUSTIVE[opcode]
    model = unary(opcode, in_q, out_q, shape=(1, 256))
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
    expected = reference(model, x)
    got = edge_sdk.run(parse(model, name=opcode.lower()), board="host", inputs=x).outputs
    assert len(np.unique(expected)) > 10  # the op really maps many values
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def float_io_model():
    """float -> QUANTIZE -> CONV_2D -> DEQUANTIZE -> float (the converter's default)."""
    shape = (1, 5, 5, 2)
    tensors = [
        TensorSpec("input", shape, "float32"),
        act("q", shape, 0.05, -3),
        weights("w", (4, 3, 3, 2), [0.01, 0.02, 0.015, 0.03]),
        bias("b", 4, 0.05, [0.01, 0.02, 0.015, 0.03]),
        act("conv", (1, 5, 5, 4), 0.08, 6),
        TensorSpec("output", (1, 5, 5, 4), "float32"),
    ]
    ops = [OpSpec("QUANTIZE", [0], [1]),
           OpSpec("CONV_2D", [1, 2, 3], [4], {"padding": "SAME", "activation": "RELU6"}),
           OpSpec("DEQUANTIZE", [4], [5])]
    return build_model(tensors, ops, [0], [5])


def test_float_input_and_output_model():
    model = float_io_model()
    graph = parse(model, name="float_io")
    rng = np.random.default_rng(5)
    x = rng.uniform(-8, 8, size=(5, 1, 5, 5, 2)).astype(np.float32)
    # Exact rounding ties (k + 0.5 steps of the scale) and out-of-range values.
    x[0].flat[:8] = np.array([0.025, -0.025, 0.075, -0.125, 1e6, -1e6, 0.0, 6.4], np.float32)
    expected = reference(model, x)
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def test_float_io_header_is_typed(tmp_path):
    compiled = edge_sdk.compile(parse(float_io_model(), name="float_io"))
    header = compiled.sources.header
    assert "int float_io_run(const float *input, float *output, uint8_t *arena);" in header
    assert "#define FLOAT_IO_INPUT_TYPE float" in header
