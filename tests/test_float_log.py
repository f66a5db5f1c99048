"""Float LOG (audio front ends take the log of a mel spectrogram): was refused as an unknown
operator. ``logf``, as LiteRT's reference ``std::log``: bit-exact on the host and Linux CPU
kernels; on the Cortex-M4 newlib's logf is within the --check float rule."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.validate import compare, reference_outputs


def log_model(tmp_path):
    path = tmp_path / "log.tflite"
    path.write_bytes(build_model([TensorSpec("x", (1, 64), "float32"),
                                  TensorSpec("y", (1, 64), "float32")],
                                 [OpSpec("LOG", [0], [1], {})], [0], [1]))
    x = np.abs(np.random.default_rng(0).normal(0, 10, (3, 64))).astype(np.float32)
    x[0, :4] = [0.0, -1.0, np.inf, 1e-30]  # -inf, NaN, inf, a tiny value: as LiteRT gives them
    return path, x


@pytest.mark.parametrize("board", ["host", "linux-x86_64"])
def test_float_log_is_bit_exact(board, tmp_path):
    path, x = log_model(tmp_path)
    (want,) = reference_outputs(path, [x])
    got = edge_sdk.run(edge_sdk.load(path), board=board, inputs=x).outputs.reshape(want.shape)
    np.testing.assert_array_equal(got, want)  # NaN in the same places counts as equal


@pytest.mark.slow
def test_float_log_on_the_cortex_m4(tmp_path):
    path, x = log_model(tmp_path)
    (want,) = reference_outputs(path, [x])
    got = edge_sdk.run(edge_sdk.load(path), board="mps2-an386", inputs=x).outputs
    assert compare(got, want)["match"]
