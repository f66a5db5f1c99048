"""int16x8 operators (int16 activations, zero point 0; int8 weights, int64 bias) against LiteRT's
reference kernels, bit for bit, on random int16 data over the whole range. TFLM's SEANet layer
models (test_int16_layers.py) cover CONV_2D, TRANSPOSE_CONV, ADD, SUB, PAD, LEAKY_RELU,
STRIDED_SLICE and QUANTIZE; these are the others that take int16."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.validate import reference_outputs
from tests.test_multi_io import litert

RNG = np.random.default_rng(0)


def a16(name, shape, scale):
    return TensorSpec(name, shape, "int16", (scale,), (0,))


def const_i32(name, values):
    data = np.array(values, np.int32)
    return TensorSpec(name, data.shape, "int32", data=data)


def depthwise() -> bytes:
    scales = list(RNG.uniform(0.002, 0.02, size=6))
    w = TensorSpec("w", (1, 3, 3, 6), "int8", tuple(scales), (0,) * 6, 3,
                   RNG.integers(-127, 128, size=(1, 3, 3, 6), dtype=np.int8))
    b = TensorSpec("b", (6,), "int64", tuple(0.001 * s for s in scales), (0,) * 6, 0,
                   RNG.integers(-20000, 20000, size=(6,), dtype=np.int64))
    tensors = [a16("x", (1, 6, 5, 3), 0.001), w, b, a16("y", (1, 6, 5, 6), 0.002)]
    return build_model(tensors, [OpSpec("DEPTHWISE_CONV_2D", [0, 1, 2], [3], {
        "padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "depth_multiplier": 2})],
        [0], [3])


def two_inputs(opcode, shape_b, out_shape, options=None, scales=(0.001, 0.002, 0.0005)):
    tensors = [a16("x", (1, 4, 4, 3), scales[0]), a16("p", shape_b, scales[1]),
               a16("y", out_shape, scales[2])]
    return build_model(tensors, [OpSpec(opcode, [0, 1], [2], options or {})], [0, 1], [2])


def fully_connected(per_channel: bool, activation: str, bias_dtype: str = "int64") -> bytes:
    units, depth = 7, 24
    scales = list(RNG.uniform(0.002, 0.02, size=units)) if per_channel else [0.01]
    w = TensorSpec("w", (units, depth), "int8", tuple(scales), (0,) * len(scales), 0,
                   RNG.integers(-127, 128, size=(units, depth), dtype=np.int8))
    b = TensorSpec("b", (units,), bias_dtype, tuple(0.001 * s for s in scales),
                   (0,) * len(scales), 0,
                   RNG.integers(-200000, 200000, size=(units,)).astype(bias_dtype))
    tensors = [a16("x", (3, depth), 0.001), w, b, a16("y", (3, units), 0.004)]
    return build_model(tensors, [OpSpec("FULLY_CONNECTED", [0, 1, 2], [3],
                                        {"activation": activation})], [0], [3])


def pool(opcode, padding, filter_=(3, 3), stride=(2, 2), activation="NONE"):
    if padding == "SAME":
        out = (-(-7 // stride[0]), -(-8 // stride[1]))
    else:
        out = ((7 - filter_[0]) // stride[0] + 1, (8 - filter_[1]) // stride[1] + 1)
    tensors = [a16("x", (1, 7, 8, 3), 0.001), a16("y", (1, *out, 3), 0.001)]
    return build_model(tensors, [OpSpec(opcode, [0], [1], {
        "padding": padding, "filter": filter_, "stride": stride, "activation": activation})],
        [0], [1])


CASES = {
    "fully_connected_per_tensor": lambda: fully_connected(False, "NONE"),
    "fully_connected_per_channel_relu": lambda: fully_connected(True, "RELU"),
    "average_pool_same": lambda: pool("AVERAGE_POOL_2D", "SAME"),
    "average_pool_valid_relu6": lambda: pool("AVERAGE_POOL_2D", "VALID", activation="RELU6"),
    "max_pool_same": lambda: pool("MAX_POOL_2D", "SAME"),
    "max_pool_valid": lambda: pool("MAX_POOL_2D", "VALID", (2, 2)),
    "depthwise_multiplier2_same": depthwise,
    "mul_broadcast": lambda: two_inputs("MUL", (1, 1, 1, 3), (1, 4, 4, 3)),
    "concatenation": lambda: two_inputs("CONCATENATION", (1, 4, 4, 3), (1, 4, 4, 6),
                                        {"axis": 3}, (0.001, 0.001, 0.001)),
    "maximum_broadcast": lambda: two_inputs("MAXIMUM", (1, 1, 1, 3), (1, 4, 4, 3),
                                            scales=(0.001, 0.001, 0.001)),
    "relu_rescaled": lambda: build_model([a16("x", (1, 4, 4, 3), 0.001),
                                          a16("y", (1, 4, 4, 3), 0.0007)],
                                         [OpSpec("RELU", [0], [1])], [0], [1]),
    "transpose": lambda: build_model([a16("x", (1, 4, 5, 3), 0.001),
                                      const_i32("perm", [0, 2, 1, 3]),
                                      a16("y", (1, 5, 4, 3), 0.001)],
                                     [OpSpec("TRANSPOSE", [0, 1], [2])], [0], [2]),
    "resize_nearest": lambda: build_model([a16("x", (1, 3, 4, 2), 0.001), const_i32("size", [6, 8]),
                                           a16("y", (1, 6, 8, 2), 0.001)],
                                          [OpSpec("RESIZE_NEAREST_NEIGHBOR", [0, 1], [2])],
                                          [0], [2]),
    "resize_bilinear_half_pixel": lambda: build_model(
        [a16("x", (1, 3, 4, 2), 0.001), const_i32("size", [7, 9]), a16("y", (1, 7, 9, 2), 0.001)],
        [OpSpec("RESIZE_BILINEAR", [0, 1], [2], {"half_pixel_centers": True})], [0], [2]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_int16_op_bit_exact(case):
    model = CASES[case]()
    graph = parse(model, name=case)
    rng = np.random.default_rng(len(case))
    xs = [rng.integers(-32768, 32768, size=(4, *graph.tensor(t).shape), dtype=np.int16)
          for t in graph.inputs]
    want = litert(model, xs)[0]
    got = edge_sdk.run(graph, board="host", inputs=xs).output_list[0]
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_int16_fully_connected_with_int32_bias_matches_tflm():
    """TFLite allows an int32 bias on an int16x8 FULLY_CONNECTED; LiteRT's reference kernel reads
    it as int64 (its outputs are then garbage), TFLite Micro reads it right: our oracle here."""
    from tflite_micro.python.tflite_micro import runtime

    model = fully_connected(True, "NONE", "int32")
    x = np.random.default_rng(3).integers(-32768, 32768, size=(3, 3, 24), dtype=np.int16)
    it = runtime.Interpreter.from_bytes(model)
    want = []
    for sample in x:
        it.set_input(sample, 0)
        it.invoke()
        want.append(it.get_output(0).copy())
    got = edge_sdk.run(parse(model), board="host", inputs=x).outputs
    np.testing.assert_array_equal(got.reshape(np.shape(want)), np.stack(want))


def test_int16_squared_difference_is_refused_by_name():
    """LiteRT 2.3 has no int16 SQUARED_DIFFERENCE ("only supports FLOAT32 and INT32"): neither
    do we, and we say so before any work."""
    model = two_inputs("SQUARED_DIFFERENCE", (1, 4, 4, 3), (1, 4, 4, 3))
    with pytest.raises(edge_sdk.EdgeSDKError, match=r"SQUARED_DIFFERENCE.*int16"):
        edge_sdk.compile(parse(model))


@pytest.mark.parametrize(("in_scale", "depth"), [(0.001, 10), (0.0003, 100), (0.002, 7),
                                                 (0.0001, 1000)])
def test_int16_softmax(in_scale, depth):
    tensors = [a16("x", (4, depth), in_scale), a16("y", (4, depth), 1 / 32768)]
    model = build_model(tensors, [OpSpec("SOFTMAX", [0], [1], {"beta": 1.0})], [0], [1])
    x = np.random.default_rng(depth).integers(-32768, 32768, (2, 4, depth), dtype=np.int16)
    x[0, 0] = 123  # a constant row
    want = litert(model, [x])[0]
    got = edge_sdk.run(parse(model), board="host", inputs=x).outputs
    assert len(np.unique(want)) > 5
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("out_scale", [0.001, 0.0004])
def test_int16_abs(out_scale):
    model = build_model([a16("x", (1, 4, 4, 3), 0.001), a16("y", (1, 4, 4, 3), out_scale)],
                        [OpSpec("ABS", [0], [1])], [0], [1])
    x = np.random.default_rng(2).integers(-32768, 32768, (3, 1, 4, 4, 3), dtype=np.int16)
    x[0, 0, 0, 0, 0] = -32768  # |-32768| does not fit int16
    want = litert(model, [x])[0]
    got = edge_sdk.run(parse(model), board="host", inputs=x).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("board", ["host", "linux-x86_64"])
def test_quantize_int16_to_int32(board):
    """QUANTIZE int16 -> int32 (met in SEANet layers) was refused; TFLite's Requantize with the
    int32 range, bit-exact with LiteRT."""
    model = build_model([TensorSpec("x", (1, 64), "int16", (0.003,), (0,)),
                         TensorSpec("y", (1, 64), "int32", (0.00011,), (7,))],
                        [OpSpec("QUANTIZE", [0], [1], {})], [0], [1])
    x = np.random.default_rng(0).integers(-32768, 32768, (3, 64)).astype(np.int16)
    got = edge_sdk.run(parse(model, name="widen"), board=board, inputs=x).outputs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "widen.tflite"
        path.write_bytes(model)
        (want,) = reference_outputs(path, [x])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.reshape(want.shape), want)
