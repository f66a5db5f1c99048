"""LEAKY_RELU, ABS, PRELU, MAXIMUM and MINIMUM, int8, bit-exact to LiteRT's reference kernels.

Unary ops run on every int8 value at once (so every table entry is checked); PRELU with a
per-channel and a single alpha, non-zero zero points everywhere; MAXIMUM/MINIMUM with
broadcasting and a constant operand.
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.conftest import random_inputs, reference
from tests.test_ops import act

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


CASES = {
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
