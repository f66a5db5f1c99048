"""Real models made by others (../shared/models/real), end to end on the host, against the oracle
that fits each (see the README there): LiteRT BUILTIN_REF for the MediaPipe float models (within
a relative 1e-5), TFLM's interpreter for person_detect (LiteRT refuses its depthwise weights'
quantized dimension), bit for bit. The int16 layer tests are in test_int16_layers.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import edge_sdk
from edge_sdk.validate import compare, reference_outputs
from tests.conftest import ROOT
from tests.test_gpu import MALI, build_native, needs_pocl, run_runner

REAL = ROOT.parent / "shared" / "models" / "real"


def real(path: str):
    model = REAL / path
    if not model.exists():
        pytest.skip(f"{model} is absent: the real models live in ../shared (CI has them)")
    return model


@pytest.mark.parametrize("name", ["face_detection_short_range", "palm_detection_lite"])
def test_mediapipe_float_model_matches_litert(name):
    """float16 weights folded through DEQUANTIZE, two outputs, PRELU and RESIZE_BILINEAR
    (palm), PAD and CONCATENATION in float."""
    model = real(f"mediapipe/{name}.tflite")
    graph = edge_sdk.load(model)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, *shape)).astype(np.float32)
    result = edge_sdk.run(graph, board="host", inputs=x)
    expected = reference_outputs(model, [x.reshape(2, -1)])
    assert len(result.output_list) == 2
    for got, want in zip(result.output_list, expected, strict=True):
        verdict = compare(got, want)
        assert verdict["match"], verdict


@needs_pocl
@pytest.mark.parametrize("name", [
    "face_detection_short_range",
    pytest.param("palm_detection_lite", marks=pytest.mark.slow),
])
def test_mediapipe_detector_on_the_mali_board_matches_litert(name, tmp_path):
    """BlazeFace (float RELU, PAD and CONCATENATION on the GPU) and the palm detector (float
    PRELU and RESIZE_BILINEAR too) through the GPU path, two outputs each, the OpenCL kernels run
    on this CPU by PoCL, against LiteRT's reference kernels.
    The GPU schedules sum convolutions in their own order (tiles, lanes), so near-zero outputs
    differ by more than 1e-5 of themselves after 40 layers; the bar is 1e-5 of each output's
    largest value (measured: 2.6e-7 and 8.3e-7), as benchmarks/gpu_cuda.py reports on CUDA."""
    from edge_sdk.model_io import outputs_bytes, pack, unpack

    model = real(f"mediapipe/{name}.tflite")
    graph = edge_sdk.load(model)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, *shape)).astype(np.float32)
    runner, _ = build_native(model, MALI, tmp_path)
    proc, out = run_runner(runner, pack(graph, [x]), np.uint8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    n = outputs_bytes(graph)
    got = unpack(graph, [out[i * n:(i + 1) * n].tobytes() for i in range(2)])
    expected = reference_outputs(model, [x.reshape(2, -1)])
    assert len(got) == 2
    for ours, want in zip(got, expected, strict=True):
        error = np.abs(ours.reshape(want.shape).astype(np.float64) - want).max()
        assert error <= 1e-5 * np.abs(want).max(), (error, np.abs(want).max())


@pytest.mark.parametrize("name", [
    "face_detection_short_range",
    pytest.param("palm_detection_lite", marks=pytest.mark.slow),
])
def test_mediapipe_model_quantizes_then_compiles_bit_exact(name, tmp_path):
    """``edge-sdk quantize`` on the float MediaPipe model (float16 weights folded first; PRELU,
    RESIZE_BILINEAR, PAD, CONCATENATION; two outputs), then the int8 file it writes must run on
    our host build exactly as LiteRT runs it. Calibration is random images in [-1, 1] (what
    the models take), so the quality figure is only a sanity bound."""
    model = real(f"mediapipe/{name}.tflite")
    shape = edge_sdk.load(model).tensor(edge_sdk.load(model).inputs[0]).shape
    rng = np.random.default_rng(11)
    result = edge_sdk.quantize(model, rng.uniform(-1, 1, (12, *shape)).astype(np.float32),
                               progress=False)
    outputs = result.report["end_to_end"]["outputs"]
    assert len(outputs) == 2 and all(o["sqnr_db"] > 8 for o in outputs), outputs
    int8_model = tmp_path / f"{name}_int8.tflite"
    int8_model.write_bytes(result.model)
    graph = edge_sdk.load(int8_model)
    assert {op.opcode for op in graph.operators}.isdisjoint({"DEQUANTIZE", "QUANTIZE"})
    x = rng.integers(-128, 128, size=(2, *shape), dtype=np.int8)
    got = edge_sdk.run(graph, board="host", inputs=x).output_list
    for ours, want in zip(got, reference_outputs(int8_model, [x]), strict=True):
        np.testing.assert_array_equal(ours.reshape(want.shape), want)


@pytest.mark.slow
def test_mediapipe_face_detection_on_cortex_m4_matches_litert():
    """BlazeFace in float on the Cortex-M4 board (single-precision FPU, QEMU mps2-an386): 1.6 MB
    of arena and I/O, which the board's 4 MB of RAM holds."""
    model = real("mediapipe/face_detection_short_range.tflite")
    graph = edge_sdk.load(model)
    x = np.random.default_rng(3).uniform(-1, 1, size=(1, *graph.tensor(graph.inputs[0]).shape))
    x = x.astype(np.float32)
    result = edge_sdk.run(graph, board="mps2-an386", inputs=x)
    for got, want in zip(result.output_list, reference_outputs(model, [x.reshape(1, -1)]),
                         strict=True):
        verdict = compare(got, want)
        assert verdict["match"], verdict


@pytest.mark.slow
def test_float_lstm_on_cortex_m4_matches_litert():
    model = real("tflm/trained_lstm.tflite")
    x = np.random.default_rng(6).uniform(0, 1, size=(2, 1, 28, 28)).astype(np.float32)
    got = edge_sdk.run(edge_sdk.load(model), board="mps2-an386", inputs=x).outputs
    (want,) = reference_outputs(model, [x.reshape(2, -1)])
    verdict = compare(got, want)
    assert verdict["match"], verdict


def tflm_outputs(model, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(str(model))
    shape = it.get_input_details(0)["shape"]
    outs = []
    for sample in x:
        it.set_input(sample.reshape(shape), 0)
        it.invoke()
        outs.append(it.get_output(0).copy())
    return np.stack(outs)


def check_person_detect(board: str, seed: int, samples: int) -> None:
    model = real("tflm/person_detect.tflite")
    graph = edge_sdk.load(model)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(samples, *shape), dtype=np.int8)
    got = edge_sdk.run(graph, board=board, inputs=x).outputs
    want = tflm_outputs(model, x)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_person_detect_matches_tflm():
    check_person_detect("host", seed=4, samples=3)


@pytest.mark.slow
def test_person_detect_on_cortex_m4_matches_tflm():
    check_person_detect("mps2-an386", seed=5, samples=1)


@pytest.mark.slow
@needs_pocl
def test_person_detect_on_the_mali_board_matches_tflm(tmp_path):
    """TFLM's person detector through the GPU path (OpenCL C, the linux-gpu runner), run on
    this CPU by PoCL: bit for bit with TFLM's interpreter."""
    model = real("tflm/person_detect.tflite")
    graph = edge_sdk.load(model)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(6).integers(-128, 128, size=(2, *shape), dtype=np.int8)
    runner, _ = build_native(model, MALI, tmp_path)
    proc, got = run_runner(runner, x, np.int8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    want = tflm_outputs(model, x)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_float_lstm_matches_litert_across_inferences():
    """TFLM's MNIST LSTM, float: UNIDIRECTIONAL_SEQUENCE_LSTM over 28 steps, then FC and
    SOFTMAX. Its hidden and cell state are variable tensors, which TFLite carries from one
    inference to the next: three samples in a row must agree with one LiteRT interpreter
    invoked three times, so the state must persist in our arena too."""
    model = real("tflm/trained_lstm.tflite")
    graph = edge_sdk.load(model)
    x = np.random.default_rng(6).uniform(0, 1, size=(3, 1, 28, 28)).astype(np.float32)
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    (want,) = reference_outputs(model, [x.reshape(3, -1)])
    verdict = compare(got, want)
    assert verdict["match"], verdict
    # the state matters: the same sample gives a different answer on a second inference
    again = edge_sdk.run(graph, board="host", inputs=np.stack([x[0], x[0]])).outputs
    assert not np.array_equal(again[0], again[1])


def litert_tensor_sequence(model, x: np.ndarray, tensor: int) -> np.ndarray:
    """One tensor of LiteRT's reference interpreter after each of several invocations of the
    same interpreter (so a stateful model carries its state from one to the next)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(model), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    results = []
    for sample in x:
        it.set_tensor(detail["index"], sample.reshape(detail["shape"]))
        it.invoke()
        results.append(it.get_tensor(tensor).copy())
    return np.stack(results)


INT8_LSTMS = ["trained_lstm_int8", "micro_speech_lstm"]


def check_int8_lstm(name: str, board: str, samples: int, seed: int) -> None:
    """The int8 LSTM (int16 gates and cell state, gemmlowp fixed point) layer by itself, whose
    int8 hidden sequence is rich (the model's softmax output mostly saturates), and the whole
    model; over several inferences in a row, since the state carries over."""
    model = real(f"tflm/{name}.tflite")
    graph = edge_sdk.load(model)
    x = np.random.default_rng(seed).integers(
        -128, 128, size=(samples, *graph.tensor(graph.inputs[0]).shape), dtype=np.int8)
    lstm_out = graph.operators[0].outputs[0]
    layer = dataclasses.replace(graph, operators=graph.operators[:1], outputs=(lstm_out,))
    got = edge_sdk.run(layer, board=board, inputs=x).outputs
    want = litert_tensor_sequence(model, x, lstm_out)
    assert len(np.unique(want)) > 50  # a real test of the arithmetic, not of saturation
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    got = edge_sdk.run(graph, board=board, inputs=x).outputs
    (want,) = reference_outputs(model, [x])
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("name", INT8_LSTMS)
def test_int8_lstm_matches_litert_across_inferences(name):
    check_int8_lstm(name, "host", samples=3, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("name", INT8_LSTMS)
def test_int8_lstm_on_cortex_m4_matches_litert(name):
    check_int8_lstm(name, "mps2-an386", samples=2, seed=8)
