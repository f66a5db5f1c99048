"""L2_NORMALIZATION and LOG_SOFTMAX (int8, float32) against LiteRT's reference kernels.

The int8 rows are drawn at many magnitudes (and include all-zero-point rows, and rows whose sum
of squares passes 2^29), so the per-row integer inverse square root meets many inputs."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.conftest import reference


def model(opcode, shape, dtype, in_q=None, out_q=None):
    q = (lambda p: ((p[0],), (p[1],))) if dtype == "int8" else (lambda p: (None, None))
    tensors = [TensorSpec("x", shape, dtype, *q(in_q)), TensorSpec("y", shape, dtype, *q(out_q))]
    return build_model(tensors, [OpSpec(opcode, [0], [1])], [0], [1])


def int8_rows(rows, depth, zp, seed):
    rng = np.random.default_rng(seed)
    spread = np.exp(rng.uniform(0, np.log(128), (rows, 1)))  # 1 .. 128
    x = np.clip(np.round(rng.normal(0, 1, (rows, depth)) * spread) + zp, -128, 127)
    x[0] = zp        # sum of squares 0
    x[1] = zp
    x[1, 0] = zp + 1  # sum of squares 1
    x[-1] = np.where(np.arange(depth) % 2, 127, -128)  # the largest sum
    return x.astype(np.int8)


@pytest.mark.parametrize(("depth", "zp"), [(16, 0), (64, -5), (3, 20), (40000, 3)])
def test_int8_l2_normalization(depth, zp):
    rows = 600 if depth < 1000 else 4
    m = model("L2_NORMALIZATION", (rows, depth), "int8", (0.05, zp), (1 / 128, 0))
    x = int8_rows(rows, depth, zp, seed=depth)[None]
    want = reference(m, x)
    got = edge_sdk.run(parse(m), board="host", inputs=x).outputs
    if depth < 1000:
        assert len(np.unique(want)) > 50
    else:  # rows whose sum of squares passes 2^29: the reduction's other branch
        squares = ((x.astype(np.int64) - zp) ** 2).sum(axis=-1)
        assert (squares >= 1 << 29).any()
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_int8_l2_normalization_needs_tflite_output_params():
    m = model("L2_NORMALIZATION", (4, 8), "int8", (0.05, 0), (0.01, 0))
    with pytest.raises(edge_sdk.EdgeSDKError, match="1/128"):
        edge_sdk.compile(parse(m))


@pytest.mark.parametrize("opcode", ["L2_NORMALIZATION", "LOG_SOFTMAX"])
def test_float(opcode):
    m = model(opcode, (2, 7, 33), "float32")
    x = np.random.default_rng(1).normal(0, 4, (3, 2, 7, 33)).astype(np.float32)
    x[0, 0, 0] = 0.0  # a zero row: L2 divides by its epsilon
    want = reference(m, x)
    got = edge_sdk.run(parse(m), board="host", inputs=x).outputs
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("in_scale", "zp", "depth"), [(0.1, 3, 10), (0.05, -20, 100),
                                                         (0.5, 0, 7), (0.02, 10, 1000),
                                                         (0.004, -128, 64)])
def test_int8_log_softmax(in_scale, zp, depth):
    m = model("LOG_SOFTMAX", (4, depth), "int8", (in_scale, zp), (16 / 256, 127))
    x = np.random.default_rng(depth).integers(-128, 128, (3, 4, depth)).astype(np.int8)
    x[0, 0] = 5  # a constant row: every difference 0
    want = reference(m, x)
    got = edge_sdk.run(parse(m), board="host", inputs=x).outputs
    assert len(np.unique(want)) > 5
    np.testing.assert_array_equal(got.reshape(want.shape), want)
