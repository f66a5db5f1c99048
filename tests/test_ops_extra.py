"""LEAKY_RELU, ABS, PRELU, MAXIMUM, MINIMUM and TRANSPOSE_CONV, int8, bit-exact to LiteRT's
reference kernels.

Unary ops run on every int8 value at once (so every table entry is checked); PRELU with a
per-channel and a single alpha, non-zero zero points everywhere; MAXIMUM/MINIMUM with
broadcasting and a constant operand; TRANSPOSE_CONV with SAME and VALID padding, strides 1-3,
per-channel and per-tensor weights, with and without bias. (int16x8 versions: test_int16_layers.)
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.conftest import random_inputs, reference
from tests.test_ops import act, bias, weights

EVERY_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)

UNARY = {
    "leaky_relu_0.2": ("LEAKY_RELU", (0.05, -10), (0.03, 20), {"alpha": 0.2}),
    "leaky_relu_0.01_same_scale": ("LEAKY_RELU", (0.1, 5), (0.1, 5), {"alpha": 0.01}),
    "leaky_relu_alpha_above_1": ("LEAKY_RELU", (0.02, 0), (0.05, -3), {"alpha": 1.7}),
    "abs_rescaled": ("ABS", (0.05, 7), (0.03, -128), {}),
    "abs_same_scale": ("ABS", (0.1, -3), (0.1, -3), {}),
}


@pytest.mark.parametrize("case", sorted(UNARY))
def test_unary_on_every_int8_value(case):
    opcode, in_q, out_q, options = UNARY[case]
    tensors = [act("input", (1, 256), *in_q), act("output", (1, 256), *out_q)]
    model = build_model(tensors, [OpSpec(opcode, [0], [1], options)], [0], [1])
    expected = reference(model, EVERY_INT8)
    got = edge_sdk.run(parse(model, name=case), board="host", inputs=EVERY_INT8).outputs
    assert len(np.unique(expected)) > 10
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def prelu_model(alpha_shape: tuple[int, ...]) -> bytes:
    rng = np.random.default_rng(5)
    alpha = TensorSpec("alpha", alpha_shape, "int8", (0.004,), (-20,), 0,
                       rng.integers(-128, 128, size=alpha_shape, dtype=np.int8))
    tensors = [act("input", (1, 5, 4, 6), 0.07, 9), alpha, act("output", (1, 5, 4, 6), 0.05, -6)]
    return build_model(tensors, [OpSpec("PRELU", [0, 1], [2])], [0], [2])


def max_min_model(opcode: str, constant: bool) -> bytes:
    shape = (1, 4, 5, 3)
    if constant:
        c = TensorSpec("floor", (1, 1, 1, 3), "int8", (0.05,), (3,), 0,
                       np.array([-40, 0, 25], np.int8).reshape(1, 1, 1, 3))
        tensors = [act("input", shape, 0.05, 3), c, act("output", shape, 0.05, 3)]
        return build_model(tensors, [OpSpec(opcode, [0, 1], [2])], [0], [2])
    tensors = [act("input", shape, 0.05, 3), act("pooled", (1, 1, 5, 3), 0.05, 3),
               act("output", shape, 0.05, 3)]
    ops = [OpSpec("AVERAGE_POOL_2D", [0], [1], {"filter": (4, 1)}),
           OpSpec(opcode, [1, 0], [2])]
    return build_model(tensors, ops, [0], [2])


def transpose_conv_model(in_hw, ic, oc, k, stride, padding, per_channel=True, with_bias=True,
                         activation="NONE") -> bytes:
    from edge_sdk.compiler.quantization import same_padding

    (ih, iw), (kh, kw), (sy, sx) = in_hw, k, stride
    if padding == "SAME":
        oh, ow = ih * sy, iw * sx
    else:
        oh, ow = (ih - 1) * sy + kh, (iw - 1) * sx + kw
    assert same_padding(oh, kh, sy, 1)[0] == ih or padding == "VALID"
    scales = list(np.random.default_rng(oc).uniform(0.003, 0.02, size=oc)) if per_channel \
        else [0.01]
    shape = TensorSpec("output_shape", (4,), "int32",
                       data=np.array([1, oh, ow, oc], np.int32))
    tensors = [shape, weights("w", (oc, kh, kw, ic), scales),
               act("input", (1, ih, iw, ic), 0.04, -9)]
    ins = [0, 1, 2]
    if with_bias:
        tensors.append(bias("b", oc, 0.04, scales if per_channel else scales * oc))
        ins.append(3)
    tensors.append(act("output", (1, oh, ow, oc), 0.06, 11))
    op = OpSpec("TRANSPOSE_CONV", ins, [len(tensors) - 1],
                {"padding": padding, "stride": stride, "activation": activation})
    return build_model(tensors, [op], [2], [len(tensors) - 1])


CASES = {
    "transpose_conv_same_s2": lambda: transpose_conv_model((4, 5), 3, 6, (3, 3), (2, 2), "SAME"),
    "transpose_conv_valid_s1": lambda: transpose_conv_model((3, 4), 4, 5, (2, 3), (1, 1),
                                                            "VALID"),
    "transpose_conv_same_s3_no_bias_per_tensor": lambda: transpose_conv_model(
        (2, 3), 2, 4, (4, 4), (3, 3), "SAME", per_channel=False, with_bias=False),
    "transpose_conv_valid_s2_relu": lambda: transpose_conv_model(
        (3, 3), 5, 3, (3, 2), (2, 1), "VALID", activation="RELU"),
    "prelu_per_channel": lambda: prelu_model((1, 1, 6)),
    "prelu_single_alpha": lambda: prelu_model((1,)),
    "maximum_broadcast": lambda: max_min_model("MAXIMUM", False),
    "minimum_broadcast": lambda: max_min_model("MINIMUM", False),
    "maximum_constant": lambda: max_min_model("MAXIMUM", True),
    "minimum_constant": lambda: max_min_model("MINIMUM", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_bit_exact(case):
    model = CASES[case]()
    graph = parse(model, name=case)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=6, seed=len(case))
    expected = reference(model, x)
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


# --- float32 ---------------------------------------------------------------------------------

def f32t(name, shape, data=None):
    return TensorSpec(name, shape, "float32", data=data)


def resize_model(opcode, in_shape, out_hw, dtype="float32", **options) -> bytes:
    size = TensorSpec("size", (2,), "int32", data=np.array(out_hw, np.int32))
    out_shape = (in_shape[0], *out_hw, in_shape[3])
    if dtype == "float32":
        x, y = f32t("input", in_shape), f32t("output", out_shape)
    else:
        x, y = act("input", in_shape, 0.05, 7), act("output", out_shape, 0.05, 7)
    return build_model([x, size, y], [OpSpec(opcode, [0, 1], [2], options)], [0], [2])


def float_prelu_fp16_model() -> bytes:
    """PRELU whose alpha is float16 behind a DEQUANTIZE (as MediaPipe stores weights)."""
    alpha = np.random.default_rng(9).uniform(-0.5, 0.5, size=(1, 1, 4)).astype(np.float16)
    tensors = [f32t("input", (1, 3, 5, 4)), TensorSpec("alpha16", (1, 1, 4), "float16",
                                                       data=alpha),
               f32t("alpha", (1, 1, 4)), f32t("output", (1, 3, 5, 4))]
    ops = [OpSpec("DEQUANTIZE", [1], [2]), OpSpec("PRELU", [0, 2], [3])]
    return build_model(tensors, ops, [0], [3])


def float_unary(opcode, **options) -> bytes:
    return build_model([f32t("input", (1, 4, 5, 3)), f32t("output", (1, 4, 5, 3))],
                       [OpSpec(opcode, [0], [1], options)], [0], [1])


def float_binary(opcode, **options) -> bytes:
    """``input`` and a pooled copy of it broadcast along H and W (one graph input)."""
    tensors = [f32t("input", (1, 4, 5, 3)), f32t("pooled", (1, 1, 1, 3)),
               f32t("output", (1, 4, 5, 3))]
    ops = [OpSpec("AVERAGE_POOL_2D", [0], [1], {"filter": (4, 5)}),
           OpSpec(opcode, [0, 1], [2], options)]
    return build_model(tensors, ops, [0], [2])


def float_transpose_conv(padding, stride) -> bytes:
    rng = np.random.default_rng(11)
    oh, ow = (6, 8) if padding == "SAME" else (7, 9)
    tensors = [TensorSpec("shape", (4,), "int32", data=np.array([1, oh, ow, 4], np.int32)),
               f32t("w", (4, 3, 3, 2), rng.standard_normal((4, 3, 3, 2)).astype(np.float32)),
               f32t("input", (1, 3, 4, 2)),
               f32t("b", (4,), rng.standard_normal(4).astype(np.float32)),
               f32t("output", (1, oh, ow, 4))]
    return build_model(tensors, [OpSpec("TRANSPOSE_CONV", [0, 1, 2, 3], [4], {
        "padding": padding, "stride": stride})], [2], [4])


FLOAT_CASES = {
    "float_leaky_relu": lambda: float_unary("LEAKY_RELU", alpha=0.3),
    "float_abs": lambda: float_unary("ABS"),
    "float_rsqrt": lambda: float_unary("RSQRT"),
    "float_relu_n1_to_1": lambda: float_unary("RELU_N1_TO_1"),
    "float_sub_relu": lambda: float_binary("SUB", activation="RELU"),
    "float_div": lambda: float_binary("DIV"),
    "float_maximum": lambda: float_binary("MAXIMUM"),
    "float_minimum": lambda: float_binary("MINIMUM"),
    "float_squared_difference": lambda: float_binary("SQUARED_DIFFERENCE"),
    "float_transpose_conv_same_s2": lambda: float_transpose_conv("SAME", (2, 2)),
    "float_transpose_conv_valid_s2": lambda: float_transpose_conv("VALID", (2, 2)),
    "bilinear_up_2x": lambda: resize_model("RESIZE_BILINEAR", (1, 4, 5, 3), (8, 10)),
    "bilinear_half_pixel": lambda: resize_model("RESIZE_BILINEAR", (1, 4, 5, 3), (7, 11),
                                                half_pixel_centers=True),
    "bilinear_align_corners_down": lambda: resize_model("RESIZE_BILINEAR", (1, 9, 7, 2), (4, 3),
                                                        align_corners=True),
    "nearest_float_half_pixel": lambda: resize_model("RESIZE_NEAREST_NEIGHBOR", (1, 4, 5, 3),
                                                     (9, 7), half_pixel_centers=True),
    "prelu_fp16_alpha": float_prelu_fp16_model,
}

INT8_RESIZE = {
    "bilinear_int8_2x": lambda: resize_model("RESIZE_BILINEAR", (1, 3, 4, 5), (6, 8),
                                             dtype="int8"),
    "bilinear_int8_half_pixel": lambda: resize_model("RESIZE_BILINEAR", (1, 4, 5, 3), (7, 11),
                                                     dtype="int8", half_pixel_centers=True),
    "bilinear_int8_align_corners_down": lambda: resize_model(
        "RESIZE_BILINEAR", (1, 9, 7, 2), (4, 3), dtype="int8", align_corners=True),
    "nearest_int8_2x": lambda: resize_model("RESIZE_NEAREST_NEIGHBOR", (1, 3, 4, 5), (6, 8),
                                            dtype="int8"),
    "nearest_int8_align_corners": lambda: resize_model(
        "RESIZE_NEAREST_NEIGHBOR", (1, 5, 4, 2), (3, 7), dtype="int8", align_corners=True),
}
CASES.update(INT8_RESIZE)


@pytest.mark.parametrize("case", sorted(FLOAT_CASES))
def test_float_op_matches_litert(case):
    from edge_sdk.validate import compare

    model = FLOAT_CASES[case]()
    graph = parse(model, name=case)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(len(case)).uniform(-2, 2, size=(3, *shape)).astype(np.float32)
    if "rsqrt" in case:  # its domain
        x = np.abs(x) + np.float32(0.05)
    expected = reference(model, x)
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    verdict = compare(got, expected)
    assert verdict["match"], verdict
