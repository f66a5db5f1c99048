"""ONNX models on the operator library: which route a model takes, and that both are right.

A float ONNX model whose operators all have a TFLite form is translated onto the same operators
a `.tflite` has (``origin == "onnx"``) and gets the same kernels (the Linux CPU kernels' tiles and
threads, the GPU's); anything else goes through TVM's Relax importer (``origin == "relax"``).
Each model here is small and built with `onnx.helper`; onnxruntime is the oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.api import compile_for
from edge_sdk.cli import main
from edge_sdk.project.boards import get_board
from edge_sdk.quantization import quantize
from tests.test_gpu import MALI


def save(tmp_path: Path, name: str, nodes: list, inputs: list, outputs: list,
         weights: dict[str, np.ndarray] | None = None) -> Path:
    graph = helper.make_graph(nodes, name, inputs, outputs, [
        numpy_helper.from_array(v.astype(np.float32), k) for k, v in (weights or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def tensor(name: str, shape: list[int]):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_hardswish(tmp_path: Path) -> Path:
    """Conv -> HardSwish -> Conv -> HardSigmoid (MobileNetV3's activations), NCHW."""
    rng = np.random.default_rng(0)
    return save(tmp_path, "conv_hardswish", [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("HardSwish", ["c1"], ["h1"]),
        helper.make_node("Conv", ["h1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("HardSigmoid", ["c2"], ["y"]),
    ], [tensor("x", [1, 3, 16, 16])], [tensor("y", [1, 8, 8, 8])],
        {"w1": rng.standard_normal((8, 3, 3, 3)), "b1": rng.standard_normal(8),
         "w2": rng.standard_normal((8, 1, 3, 3))})


def onnxruntime(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_a_pytorch_style_model_runs_on_the_operator_library_and_matches(tmp_path):
    path = conv_hardswish(tmp_path)
    graph = edge_sdk.load(path)
    assert graph.origin == "onnx"
    ops = [op.opcode for op in graph.operators]
    # HardSwish is one operator, not its four-operator expansion; HardSigmoid's clip to [0, 1]
    # is a MAXIMUM and a MINIMUM.
    assert ops.count("HARD_SWISH") == 1 and "RELU6" not in ops
    assert {"MAXIMUM", "MINIMUM", "CONV_2D", "DEPTHWISE_CONV_2D"} <= set(ops)
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    result = edge_sdk.run(graph, board="host", inputs=x[None])
    np.testing.assert_allclose(result.output_list[0].reshape(1, 8, 8, 8), onnxruntime(path, x),
                               rtol=1e-4, atol=1e-5)


def test_the_linux_board_gives_it_the_threaded_cpu_kernels(tmp_path):
    compiled = compile_for(conv_hardswish(tmp_path), get_board("linux-x86_64"))
    convs = [s for s in compiled.program.steps if s.opcode.endswith("CONV_2D")]
    assert convs and all(s.notes.startswith("float32 cpu") and s.row_phases for s in convs)


def test_weights_generated_in_the_graph_take_the_relax_route(tmp_path):
    """A ConstantOfShape weight stays one value read through strides of 0 on the Relax route;
    translated, it would be a full tensor in flash."""
    fill = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])
    path = save(tmp_path, "generated", [
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(
            np.array([1024, 1024], np.int64))),
        helper.make_node("ConstantOfShape", ["shape"], ["w"], value=fill),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ], [tensor("x", [1, 1024])], [tensor("y", [1, 1024])])
    assert edge_sdk.load(path).origin == "relax"


def test_a_target_without_a_kernel_falls_back_to_the_relax_route(tmp_path):
    """LogSoftmax has a CPU kernel but none on the GPU: the Mali board compiles the model
    through TVM's legalized kernels instead of refusing it."""
    path = save(tmp_path, "log_softmax", [
        helper.make_node("LogSoftmax", ["x"], ["y"], axis=-1),
    ], [tensor("x", [1, 10])], [tensor("y", [1, 10])])
    graph = edge_sdk.load(path)
    assert graph.origin == "onnx"
    assert compile_for(graph, get_board("host")).program.graph.origin == "onnx"
    assert compile_for(graph, get_board(MALI)).program.graph.origin == "relax"


def test_a_model_that_only_flattens_its_input_copies_it(tmp_path):
    """input -> Flatten -> output: the output buffer is the caller's, so the reshape must copy
    (it aliased the input and left the output unwritten: an unused parameter, -Werror)."""
    path = save(tmp_path, "flatten", [helper.make_node("Flatten", ["x"], ["y"])],
                [tensor("x", [1, 2, 3, 4])], [tensor("y", [1, 24])])
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    result = edge_sdk.run(edge_sdk.load(path), board="host", inputs=x[None])
    np.testing.assert_array_equal(result.output_list[0].reshape(1, 24), x.reshape(1, 24))


def test_hardswish_and_hardsigmoid_quantize_and_run_bit_exact(tmp_path, capsys):
    path = conv_hardswish(tmp_path)
    calibration = np.random.default_rng(2).standard_normal((8, 1, 3, 16, 16)).astype(
        np.float32)
    int8 = tmp_path / "int8.tflite"
    int8.write_bytes(quantize(str(path), list(calibration), progress=False).model)
    ops = {op.opcode for op in edge_sdk.load(int8).operators}
    assert {"HARD_SWISH", "MAXIMUM", "MINIMUM"} <= ops
    np.save(tmp_path / "x.npy", calibration[:2, 0])
    assert main(["run", str(int8), "--input", str(tmp_path / "x.npy"), "--check"]) == 0
    assert "check: bit-exact against LiteRT" in capsys.readouterr().out


def test_a_tensor_of_nearly_one_value_calibrates(tmp_path):
    """x * 1e-6 + 1: a range of a few float32 steps around 1.0 has no 2048 float32 histogram
    bins (the calibration crashed with numpy's 'Too many bins for data range')."""
    path = save(tmp_path, "narrow", [
        helper.make_node("Mul", ["x", "k"], ["m"]),
        helper.make_node("Add", ["m", "one"], ["y"]),
    ], [tensor("x", [1, 16])], [tensor("y", [1, 16])],
        {"k": np.array([1e-6]), "one": np.array([1.0])})
    calibration = list(np.random.default_rng(3).standard_normal((4, 1, 16)).astype(np.float32))
    for method in ("minmax", "percentile", "kl"):
        assert quantize(str(path), calibration, method=method, progress=False).model


@pytest.mark.parametrize("board", ["host"])
def test_the_route_is_in_the_report(tmp_path, board):
    compiled = compile_for(conv_hardswish(tmp_path), get_board(board))
    report = edge_sdk.api.report(compiled, get_board(board))
    assert report["frontend"] == "onnx (translated onto the operator library)"


def test_a_bool_constant_builds_as_c(tmp_path):
    """A constant boolean mask (Where's condition, an attention mask) is printed as 1/0: as
    Python's True/False it stopped the C build ("'True' undeclared")."""
    cond = np.array([[True, False, True, False, False, True]])
    graph = helper.make_graph(
        [helper.make_node("Where", ["cond", "x", "zeros"], ["y"])], "where",
        [tensor("x", [1, 6])], [tensor("y", [1, 6])],
        [numpy_helper.from_array(cond, "cond"),
         numpy_helper.from_array(np.zeros((1, 6), np.float32), "zeros")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "where.onnx"
    onnx.save(model, str(path))
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 6)
    result = edge_sdk.run(edge_sdk.load(path), board="host", inputs=x)
    np.testing.assert_array_equal(result.outputs.reshape(1, 6), onnxruntime(path, x))


def test_an_infinite_constant_builds_as_c(tmp_path):
    """An attention mask filled with -inf (a transformers BERT export) then a softmax: the
    constant is printed as math.h's -INFINITY; as Python's text ("-inf") the C build stopped
    ("'inff' undeclared")."""
    cond = np.array([[True, False, True, True, False, True]])
    graph = helper.make_graph(
        [helper.make_node("Where", ["cond", "x", "fill"], ["masked"]),
         helper.make_node("Softmax", ["masked"], ["y"], axis=-1)], "mask",
        [tensor("x", [1, 6])], [tensor("y", [1, 6])],
        [numpy_helper.from_array(cond, "cond"),
         numpy_helper.from_array(np.full((1, 6), -np.inf, np.float32), "fill")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "mask.onnx"
    onnx.save(model, str(path))
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 6) / 4
    result = edge_sdk.run(edge_sdk.load(path), board="host", inputs=x)
    got = result.outputs.reshape(1, 6)
    assert (got[~cond] == 0).all()
    np.testing.assert_allclose(got, onnxruntime(path, x), rtol=1e-6, atol=1e-7)


def test_non_finite_floats_print_as_math_h_constants():
    from edge_sdk.codegen.c_model import _literal

    assert [_literal(v, "float32") for v in (np.inf, -np.inf, np.nan, 0.5)] == [
        "INFINITY", "-INFINITY", "NAN", "5.e-01f"]
    assert _literal(-np.inf, "float64") == "-INFINITY"


def resize(tmp_path: Path, mode: str, coordinates: str, nearest: str, scale: float) -> Path:
    """Conv -> Resize(scales) -> Conv, as PyTorch's Upsample/interpolate exports it."""
    rng = np.random.default_rng(2)
    extra = {"nearest_mode": nearest} if mode == "nearest" else {}
    size = int(8 * scale)
    return save(tmp_path, f"resize_{mode}_{coordinates}_{nearest}", [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c1", "", "scales"], ["r"], mode=mode,
                         coordinate_transformation_mode=coordinates, **extra),
        helper.make_node("Conv", ["r", "w2"], ["y"]),
    ], [tensor("x", [1, 3, 8, 8])], [tensor("y", [1, 4, size, size])],
        {"w1": rng.standard_normal((6, 3, 3, 3)), "w2": rng.standard_normal((4, 6, 1, 1)),
         "scales": np.array([1, 1, scale, scale])})


@pytest.mark.parametrize(("mode", "coordinates", "nearest", "scale"), [
    ("nearest", "asymmetric", "floor", 2.0),  # nn.Upsample(scale_factor=2): YOLO's neck
    ("nearest", "half_pixel", "round_prefer_ceil", 0.5),
    ("linear", "half_pixel", "round_prefer_floor", 2.0),  # align_corners=False
    ("linear", "align_corners", "round_prefer_floor", 2.0),
    ("linear", "pytorch_half_pixel", "round_prefer_floor", 0.5),
])
def test_resize_runs_as_the_tflite_kernels_and_matches(tmp_path, mode, coordinates, nearest,
                                                       scale):
    path = resize(tmp_path, mode, coordinates, nearest, scale)
    graph = edge_sdk.load(path)
    assert graph.origin == "onnx"
    opcode = "RESIZE_NEAREST_NEIGHBOR" if mode == "nearest" else "RESIZE_BILINEAR"
    assert opcode in [op.opcode for op in graph.operators]
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = onnxruntime(path, x)
    result = edge_sdk.run(graph, board="host", inputs=x[None])
    np.testing.assert_allclose(result.output_list[0].reshape(expected.shape), expected,
                               rtol=1e-4, atol=1e-5)


def test_a_resize_tflite_cannot_express_takes_the_relax_route_and_still_matches(tmp_path):
    """half_pixel with ties rounded down: every pixel of a 2x downscale sits on a tie, where
    TFLite's half-pixel nearest rounds up. The route that computes ONNX's meaning takes it."""
    path = resize(tmp_path, "nearest", "half_pixel", "round_prefer_floor", 0.5)
    graph = edge_sdk.load(path)
    assert graph.origin == "relax"
    x = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = onnxruntime(path, x)
    result = edge_sdk.run(graph, board="host", inputs=x[None])
    np.testing.assert_allclose(result.output_list[0].reshape(expected.shape), expected,
                               rtol=1e-4, atol=1e-5)


def silu_head(tmp_path: Path) -> Path:
    """Conv -> Sigmoid -> Mul(x, sigmoid(x)) -> Add of a per-channel constant: YOLO's SiLU and
    a broadcast, on an activation large enough for the pool to share."""
    rng = np.random.default_rng(5)
    return save(tmp_path, "silu_head", [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["y"]),
    ], [tensor("x", [1, 3, 48, 40])], [tensor("y", [1, 16, 48, 40])],
        # Weights large enough that the sigmoid sees the clamped ends of its exponential.
        {"w": 8 * rng.standard_normal((16, 3, 3, 3)), "bias": rng.standard_normal((1, 16, 1, 1))})


@pytest.mark.parametrize("threads", [1, 2])
def test_elementwise_layers_share_rows_over_threads_and_match(tmp_path, threads):
    """On a Linux board the float elementwise layers split their rows over the thread pool and
    the sigmoid's exponential is computed in vectors (not the C library's expf): the result
    still matches onnxruntime to float32 rounding, at 1 and 2 threads."""
    path = silu_head(tmp_path)
    compiled = compile_for(path, get_board("linux-x86_64"))
    shared = {s.opcode: s for s in compiled.program.steps if s.row_phases}
    assert {"LOGISTIC", "MUL", "ADD"} <= set(shared)
    assert shared["LOGISTIC"].row_phases == (48,)  # N*H rows of W*C values (NHWC inside)
    x = np.random.default_rng(6).standard_normal((1, 3, 48, 40)).astype(np.float32)
    expected = onnxruntime(path, x)
    result = edge_sdk.run(path, board="linux-x86_64", inputs=x[None], threads=threads)
    got = result.output_list[0].reshape(expected.shape)
    assert np.abs(expected).max() > 50  # the exponential's clamp is reached
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-5)


def test_a_small_elementwise_layer_stays_on_one_thread(tmp_path):
    compiled = compile_for(conv_hardswish(tmp_path), get_board("linux-x86_64"))
    assert not [s for s in compiled.program.steps
                if s.opcode in ("HARD_SWISH", "MAXIMUM", "MINIMUM") and s.row_phases]


def test_the_relax_route_counts_multiply_accumulates(tmp_path):
    """inspect, the report and the run-time budget read each step's MACs: on the Relax route
    they were 0 for every model."""
    from edge_sdk.frontend.relax_onnx import load_onnx

    graph = load_onnx(conv_hardswish(tmp_path))
    steps = compile_for(graph, get_board("host")).program.steps
    convs = [s.macs for s in steps if s.opcode.startswith("conv2d")]
    # 8x8 outputs x 8 channels, times 3x3x3 weights each; the depthwise one 3x3 each.
    assert convs == [8 * 8 * 8 * 27, 8 * 8 * 8 * 9]
    assert all(s.macs > 0 for s in steps)

    fill = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])
    path = save(tmp_path, "generated", [
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(
            np.array([256, 128], np.int64))),
        helper.make_node("ConstantOfShape", ["shape"], ["w"], value=fill),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ], [tensor("x", [4, 256])], [tensor("y", [4, 128])])
    (matmul,) = [s for s in compile_for(load_onnx(path), get_board("host")).program.steps
                 if s.opcode.startswith("matmul")]
    assert matmul.macs == 4 * 128 * 256


def test_a_refusal_names_the_operators_inside_an_if(tmp_path):
    """silero-VAD's shape: an If whose branch pads by amounts known only at run time. The one
    line names the Pad inside the If, not only the top-level operators."""
    def branch(name: str, node) -> onnx.GraphProto:
        return helper.make_graph([node], name, [], [
            helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, ["a", "b"])])

    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"],
                          then_branch=branch("then", helper.make_node("Pad", ["x", "pads"],
                                                                      ["t"])),
                          else_branch=branch("else", helper.make_node("Relu", ["x"], ["e"])))],
        "vad", [tensor("x", [1, 4]), helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                helper.make_tensor_value_info("pads", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])])
    path = tmp_path / "vad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(edge_sdk.EdgeSDKError) as err:
        edge_sdk.load(path)
    message = str(err.value)
    assert "\n" not in message and "If (inside: Pad, Relu)" in message
