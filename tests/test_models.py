"""The four MLPerf Tiny int8 models, bit-exact to LiteRT's reference kernels.

Host: 20 random inputs each through the host build of the firmware (same protocol, a pipe).
QEMU (slow): 3 inputs each on the emulated Cortex-M4 board, over its UART on a TCP socket.
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from tests.conftest import MLPERF_INT8, random_inputs, reference, shared_model

# TensorFlow Lite Micro's total arena for the same models (../shared/BASELINES.md).
TFLM_ARENA = {"kws_ref_model": 24272, "vww_96_int8": 103680,
              "pretrainedResnet_quant": 55984, "ad01_int8": 3984}


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_host_bit_exact_20_inputs(name):
    path = shared_model(name)
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=20, seed=7)
    result = edge_sdk.run(graph, board="host", inputs=x)
    expected = reference(path, x)
    np.testing.assert_array_equal(result.outputs.reshape(expected.shape), expected)
    # The whole RAM we need (arena + the caller's input/output) stays under TFLM's arena.
    assert result.report["ram_bytes"] <= TFLM_ARENA[name]


@pytest.mark.parametrize("isa", ["dsp", "mve"])
@pytest.mark.parametrize("name", MLPERF_INT8)
def test_host_simd_kernels_bit_exact(name, isa):
    """The DSP and MVE kernel sets, built on the host (their micro-kernels' plain-C twins)."""
    path = shared_model(name)
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=5, seed=8)
    result = edge_sdk.run(graph, board="host", inputs=x, isa=isa)
    expected = reference(path, x)
    np.testing.assert_array_equal(result.outputs.reshape(expected.shape), expected)


@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an505", "mps3-an547"])
@pytest.mark.parametrize("name", MLPERF_INT8)
def test_simd_kernels_take_every_mac_layer_without_growing_the_arena(name, board):
    """On the DSP/MVE cores every conv, depthwise and FC layer of these models gets a SIMD
    kernel, and the arena is what the portable kernels need (no scratch beyond it)."""
    graph = edge_sdk.load(shared_model(name))
    b = edge_sdk.api.get_board(board)
    compiled = edge_sdk.api.compile_for(graph, b)
    portable = edge_sdk.api.compile_for(graph, b, isa="generic")
    assert compiled.memory.arena_bytes == portable.memory.arena_bytes
    prefix = ("MVE", "DSP") if b.target.mve else ("DSP",)
    for layer in compiled.layers():
        if layer["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert layer.get("variant", "").startswith(prefix), layer


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an505", "mps3-an547"])  # M4, M33, M55
@pytest.mark.parametrize("name", MLPERF_INT8)
def test_qemu_bit_exact(name, board):
    path = shared_model(name)
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=3, seed=11)
    result = edge_sdk.run(graph, board=board, inputs=x)
    expected = reference(path, x)
    np.testing.assert_array_equal(result.outputs.reshape(expected.shape), expected)
    timer = result.report["timer"]
    assert timer["kind"] == "systick-emulated"  # QEMU: DWT present but never moves
    # The count is the model's work: no Cortex-M instruction does more than 16 MACs (VMLADAVA.S8).
    assert all(n > result.report["macs"] / 16 for n in timer["instructions"])
    assert result.report["flash_bytes"] >= result.report["weights_bytes"]


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an500", "mps2-an385"])  # Cortex-M7; M3: portable C
def test_qemu_other_cores_bit_exact(board):
    path = shared_model("kws_ref_model")
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=2, seed=3)
    result = edge_sdk.run(graph, board=board, inputs=x)
    expected = reference(path, x)
    np.testing.assert_array_equal(result.outputs.reshape(expected.shape), expected)


FLOAT_MODELS = ["ad01_fp32", "pretrainedResnet", "vww_96_float"]


@pytest.mark.parametrize("name", FLOAT_MODELS)
def test_float_models_match_litert(name):
    """Float kernels keep TFLite's accumulation order: within 1e-5 relative (exact in practice)."""
    path = shared_model(name)
    graph = edge_sdk.load(path)
    x = np.random.default_rng(4).uniform(0, 1, (3, *graph.tensor(graph.inputs[0]).shape))
    x = x.astype(np.float32)
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    expected = reference(path, x)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-7)


def test_hybrid_model_is_refused_clearly():
    with pytest.raises(edge_sdk.EdgeSDKError, match="hybrid, dynamic-range quantized"):
        edge_sdk.compile(shared_model("kws_ref_model_float32"))
