"""A small real task: a CNN trained on scikit-learn's digits, exported to float TFLite and
ONNX, quantized to INT8, compiled. Accuracy may drop at most 1 point on the held-out split."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.onnx import onnx_to_tflite
from edge_sdk.frontend.tflite import parse
from edge_sdk.quantization import quantize
from tests.conftest import reference
from tests.models import digits_cnn

pytest.importorskip("sklearn", reason="scikit-learn provides the digits data (pip install "
                                      "scikit-learn; ./setup.sh installs it)")


@pytest.fixture(scope="module")
def data():
    return digits_cnn.dataset()


@pytest.fixture(scope="module")
def params():
    return digits_cnn.load()


def run_litert(model: bytes, xs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for x in xs:
        x = x.reshape(i["shape"])
        if i["dtype"] == np.int8:
            s, z = i["quantization"]
            v = (x.astype(np.float32) / np.float32(s)).astype(np.float64)
            x = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z, -128, 127).astype(np.int8)
        it.set_tensor(i["index"], x.astype(i["dtype"]))
        it.invoke()
        out.append(it.get_tensor(o["index"]).reshape(-1).astype(np.float64))
    return np.stack(out)


def accuracy(scores, labels):
    return float(np.mean(np.argmax(scores, 1) == labels))


def test_float_exports_match_the_trained_network(params, data, tmp_path):
    _, _, vx, _ = data
    logits = digits_cnn.forward(params, vx)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(run_litert(digits_cnn.to_tflite(params), vx), probs, atol=1e-5)
    onnx_path = tmp_path / "digits.onnx"
    digits_cnn.to_onnx(params, onnx_path)
    np.testing.assert_allclose(run_litert(onnx_to_tflite(onnx_path), vx), probs, atol=1e-5)


@pytest.mark.parametrize(("source", "method"), [("tflite", "minmax"), ("tflite", "percentile"),
                                                ("tflite", "kl"), ("onnx", "minmax")])
def test_int8_accuracy_drop_at_most_one_point(params, data, tmp_path, source, method):
    tx, _, vx, vy = data
    calibration = tx[:200]
    if source == "tflite":
        model = digits_cnn.to_tflite(params)
    else:
        model = tmp_path / "digits.onnx"
        digits_cnn.to_onnx(params, model)
        calibration = calibration.transpose(0, 3, 1, 2)  # ONNX users give NCHW data
    result = quantize(model, list(calibration), method=method, progress=False)
    float_acc = accuracy(digits_cnn.forward(params, vx), vy)
    int8_acc = accuracy(run_litert(result.model, vx), vy)
    assert float_acc > 0.9
    assert int8_acc >= float_acc - 0.01, f"float {float_acc:.4f}, int8 {int8_acc:.4f}"

    graph = parse(result.model, name=f"digits_{source}_{method}")
    ops = [o.opcode for o in graph.operators]
    if source == "onnx":  # the NCHW input is viewed as NHWC first (one channel: a RESHAPE)
        assert graph.tensor(graph.inputs[0]).shape == (1, 1, 8, 8)
        assert ops[0] == "RESHAPE"
        ops = ops[1:]
    assert ops[:2] == ["CONV_2D", "MAX_POOL_2D"]  # BN, ReLU fused
    x = np.stack([run_input for run_input in _int8_inputs(graph, vx[:10])])
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    expected = reference(result.model, x)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def _int8_inputs(graph, xs):
    t = graph.tensor(graph.inputs[0])
    s, z = t.quant.scale[0], t.quant.zero_point[0]
    for x in xs:
        v = (x.astype(np.float32) / np.float32(s)).astype(np.float64)
        yield np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + z, -128, 127).astype(
            np.int8).reshape(t.shape)


def test_onnx_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(edge_sdk.EdgeSDKError, match="not a valid ONNX model"):
        onnx_to_tflite(bad)
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Erf", ["x"], ["y"], name="erf0")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "erf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(edge_sdk.EdgeSDKError, match=r"operator erf .*has no TFLite form"):
        onnx_to_tflite(path)
