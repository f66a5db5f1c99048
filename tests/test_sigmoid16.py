"""int16x8 LOGISTIC and TANH against LiteRT's reference kernels, on every int16 input.

TFLite's int16 kernels interpolate between 256 knots of sigmoid (see
:mod:`edge_sdk.compiler.kernels.sigmoid16`); the knots we ship were measured from LiteRT, and the
first test measures them again, so a LiteRT whose table changed fails here by name.
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.compiler.kernels.sigmoid16 import SIGMOID_KNOTS, input_rescale
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.test_multi_io import litert

EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 1, 65536)
Q15 = 1 / 32768


def single_op(opcode: str, in_scale: float, out_scale: float = Q15) -> bytes:
    tensors = [TensorSpec("x", (1, 65536), "int16", (in_scale,), (0,)),
               TensorSpec("y", (1, 65536), "int16", (out_scale,), (0,))]
    return build_model(tensors, [OpSpec(opcode, [0], [1])], [0], [1])


def test_knots_are_what_litert_interpolates():
    """At input scale 1/6144, TANH's rescaled input is exactly 2x, so x = 128k lands on knot k
    with interpolation weight 0 and LiteRT outputs ``knot[k] - 32768``: the knots, read off."""
    assert input_rescale("TANH", 1 / 6144) == (16384, 13)
    out = litert(single_op("TANH", 1 / 6144), [EVERY_INT16])[0].reshape(-1)
    measured = [int(out[32768 + 128 * k]) + 32768 for k in range(255)]
    assert measured == list(SIGMOID_KNOTS[:255])
    assert SIGMOID_KNOTS[255] == 65535  # the last knot shows only in segment 254's slope


@pytest.mark.parametrize("opcode", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("in_scale", [
    2**-12,   # power of two: LOGISTIC's and TANH's multiply-by-3 path
    2**-11,   # TANH's second power-of-two path; a general scale for LOGISTIC
    1 / 6144, 0.0003, 3.1e-5, 0.001,
    0.37,     # almost every input saturates
    4.0,      # the multiplier needs no shift at all
])
def test_int16_activation_bit_exact_on_every_input(opcode, in_scale):
    model = single_op(opcode, in_scale)
    want = litert(model, [EVERY_INT16])[0]
    got = edge_sdk.run(parse(model), board="host", inputs=EVERY_INT16).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    assert len(np.unique(want)) > 2


def test_two_activations_share_one_knot_table():
    """LOGISTIC then TANH on its output: one ``const`` knot array in the model, both bit-exact."""
    tensors = [TensorSpec("x", (1, 4, 5, 3), "int16", (0.0007,), (0,)),
               TensorSpec("s", (1, 4, 5, 3), "int16", (Q15,), (0,)),
               TensorSpec("y", (1, 4, 5, 3), "int16", (Q15,), (0,))]
    model = build_model(tensors, [OpSpec("LOGISTIC", [0], [1]), OpSpec("TANH", [1], [2])],
                        [0], [2])
    x = np.random.default_rng(5).integers(-32768, 32768, (3, 1, 4, 5, 3), dtype=np.int16)
    want = litert(model, [x])[0]
    got = edge_sdk.run(parse(model), board="host", inputs=x).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    compiled = edge_sdk.compile(parse(model))
    assert [c.name for c in compiled.program.constants] == ["sigmoid_knots_q16"]


@pytest.mark.parametrize(("in_scale", "out_scale", "match"), [
    (0.001, 1 / 16384, "1/32768"),
    (8.0, Q15, "too large"),
])
def test_int16_activation_refusals_say_why(in_scale, out_scale, match):
    with pytest.raises(edge_sdk.EdgeSDKError, match=rf"LOGISTIC.*{match}"):
        edge_sdk.compile(parse(single_op("LOGISTIC", in_scale, out_scale)))


@pytest.mark.slow
@pytest.mark.parametrize("opcode", ["LOGISTIC", "TANH"])
def test_int16_activation_on_cortex_m4(opcode):
    """The same kernel in firmware on the Cortex-M4 board (QEMU mps2-an386), 65,536 inputs."""
    model = single_op(opcode, 0.0003)
    want = litert(model, [EVERY_INT16])[0]
    got = edge_sdk.run(parse(model), board="mps2-an386", inputs=EVERY_INT16).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)
