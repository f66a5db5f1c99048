"""int16x8 operators (int16 activations, zero point 0; int8 weights, int64 bias) against LiteRT's
reference kernels, bit for bit, on random int16 data over the whole range. TFLM's SEANet layer
models (test_int16_layers.py) cover CONV_2D, TRANSPOSE_CONV, ADD, SUB, PAD, LEAKY_RELU,
STRIDED_SLICE and QUANTIZE; these are the others that take int16."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
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


CASES = {
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
