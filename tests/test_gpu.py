"""GPU targets: OpenCL kernels run on the CPU through PoCL (Debian's pocl-opencl-icd) via the
generated runner, bit-exact to LiteRT; the CUDA path compiles to PTX and cross-builds for the
Jetson. (No GPU here; benchmarks/gpu_cuda.py checks the CUDA bundle on a real NVIDIA GPU.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.api import compile_for
from edge_sdk.cli import main
from edge_sdk.compiler.gpu import kernels as gpu_kernels
from edge_sdk.compiler.gpu.schedule import default_rules
from edge_sdk.errors import UnsupportedOpError
from edge_sdk.project.boards import get_board
from edge_sdk.project.generate import generate_project
from tests.conftest import random_inputs, reference, shared_model

MALI = "rk3399-mali-t860"


def _pocl_available() -> bool:
    return Path("/etc/OpenCL/vendors").is_dir() and any(Path("/etc/OpenCL/vendors").iterdir())


needs_pocl = pytest.mark.skipif(not _pocl_available(),
                                reason="no OpenCL ICD (./setup.sh installs pocl-opencl-icd)")


def build_native(model, board: str, tmp_path: Path) -> tuple[Path, edge_sdk.pipeline.CompiledModel]:
    """The board's project, built for this machine (`make CROSS= CPUFLAGS=`)."""
    b = get_board(board)
    compiled = compile_for(model, b)
    project = generate_project(compiled, b, tmp_path / "project", demo=False)
    subprocess.run(["make", "-s", "-C", str(project), "CROSS=", "CPUFLAGS="], check=True,
                   capture_output=True)
    return project / "build" / "runner", compiled


def run_runner(runner: Path, x: np.ndarray, out_dtype, tmp_path: Path, env=None):
    (tmp_path / "in.bin").write_bytes(np.ascontiguousarray(x).tobytes())
    proc = subprocess.run([str(runner), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    return proc, np.fromfile(tmp_path / "out.bin", dtype=out_dtype) if proc.returncode == 0 \
        else None


def check_bit_exact_on_pocl(name: str, tmp_path: Path, n: int = 3) -> None:
    path = shared_model(name)
    graph = edge_sdk.load(path)
    runner, _ = build_native(path, MALI, tmp_path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n, seed=5)
    proc, got = run_runner(runner, x, np.int8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "OpenCL device" in proc.stderr
    expected = reference(path, x)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


# The schedules' opt-in settings, not yet measured on a GPU: four-tap words (DOT4), short
# convolutions' weights staged in shared memory, softmax's row loops unrolled, longer unrolling.
OPT_IN = {"DOT4": True, "SHARED_WEIGHTS_BYTES": 16384, "ROW_UNROLL": True, "UNROLL": 512}


def set_variant(monkeypatch, variant: str) -> None:
    """"default", or "opt-in": every setting of OPT_IN."""
    from edge_sdk.compiler.gpu import schedule

    for key, value in OPT_IN.items() if variant == "opt-in" else ():
        monkeypatch.setattr(gpu_kernels if hasattr(gpu_kernels, key) else schedule, key, value)


@needs_pocl
@pytest.mark.parametrize("name", ["kws_ref_model", "ad01_int8"])
@pytest.mark.parametrize("variant", ["default", "opt-in"])
def test_int8_bit_exact_on_pocl(tmp_path, name, variant, monkeypatch):
    """Also with the opt-in settings: KWS's pointwise layers and every ad01 layer in four-tap
    words, KWS's first layer with its weights in shared memory, its softmax unrolled."""
    set_variant(monkeypatch, variant)
    check_bit_exact_on_pocl(name, tmp_path)


def test_staged_weights_are_named_only_where_staged(tmp_path, monkeypatch):
    """SHARED_WEIGHTS_BYTES: a short convolution whose weights fit gets them in shared memory
    and says so; one whose weights do not fit keeps the plain schedule and its name (it was
    reported as staged while its kernel read global memory)."""
    from edge_sdk.compiler.gpu import schedule
    from tests.test_ops import CASES

    path = tmp_path / "conv.tflite"
    path.write_bytes(CASES["conv_per_tensor_relu"]())  # 3 x 2x3x2 weights: 36 bytes
    for limit, want in ((16384, "weights in shared memory"), (16, "taps in a loop")):
        monkeypatch.setattr(schedule, "SHARED_WEIGHTS_BYTES", limit)
        gpu = compile_for(path, get_board(MALI)).gpu
        assert gpu.schedules[0] == f"edge-sdk: one thread per output, {want}"
        assert ("__local" in gpu.device.source) == (limit == 16384)


def test_four_tap_words_shorten_the_sums_that_schedules_see(tmp_path, monkeypatch):
    """With DOT4, a convolution's sum counts words of four taps: a 3x3x16 one (144 taps, 36
    words) runs one thread per output, a 3x3x32 one (72 words) still splits its sums; the
    kernels call edge_dp4a, and the CUDA source defines it."""
    from tests.test_ops import conv_model

    split = "edge-sdk: each sum split over a warp's lanes"
    for dot4, depth, want in ((False, 16, split), (True, 16,
                              "edge-sdk: one thread per output, taps in a loop"),
                              (True, 32, split)):
        monkeypatch.setattr(gpu_kernels, "DOT4", dot4)
        path = tmp_path / f"conv{depth}.tflite"
        path.write_bytes(conv_model((1, 8, 8, depth), 8, (3, 3), (1, 1), "SAME"))
        for board in (MALI, "jetson-orin-nano"):
            gpu = compile_for(path, get_board(board)).gpu
            assert gpu.schedules[0] == want
            assert ("edge_dp4a(" in gpu.device.source) == dot4
            assert ("int edge_dp4a(int a, int b, int c)" in gpu.device.source) == dot4


@needs_pocl
@pytest.mark.slow
def test_vww_int8_bit_exact_on_pocl(tmp_path):
    check_bit_exact_on_pocl("vww_96_int8", tmp_path, n=2)


@needs_pocl
@pytest.mark.slow
def test_resnet_int8_bit_exact_on_pocl(tmp_path):
    """ResNet's residual ADDs join differently quantized branches."""
    check_bit_exact_on_pocl("pretrainedResnet_quant", tmp_path, n=2)


@needs_pocl
def test_float_model_on_pocl_matches_litert(tmp_path):
    path = shared_model("ad01_fp32")
    graph = edge_sdk.load(path)
    runner, _ = build_native(path, MALI, tmp_path)
    x = np.random.default_rng(3).uniform(-1, 1, (3, *graph.tensor(graph.inputs[0]).shape))
    x = x.astype(np.float32)
    proc, got = run_runner(runner, x, np.float32, tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = reference(path, x)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)


def test_every_kernel_gets_a_named_schedule_with_many_threads():
    """The report names the schedule of every layer (a dlight rule, or one of ours); no launch
    runs a single thread but a one-row softmax (KWS's 12 scores: one thread keeps the row's
    maximum, sum and reciprocal in registers, where a split row would need them in memory)."""
    compiled = compile_for(shared_model("kws_ref_model"), get_board(MALI))
    kernels = [s for s in compiled.program.steps if s.kind == "kernel"]
    assert set(compiled.gpu.schedules) == {s.op_index for s in kernels}
    assert all(r.startswith(("dlight.gpu.", "edge-sdk: ")) for r in compiled.gpu.schedules.values())
    for launch in compiled.gpu.device.launches:
        assert np.prod(launch.block) > 1 or "softmax" in launch.kernel, launch
    softmax = [ln for ln in compiled.gpu.device.launches if "softmax" in ln.kernel]
    assert len(softmax) == 1 and tuple(softmax[0].grid) == (1, 1, 1)
    # KWS: a 10x4x1 first convolution (40 taps: one thread per output), four depthwise layers
    # (one thread per output), four 1x1x64 pointwise ones (64 taps: each sum split over lanes),
    # the FC a GEMV, softmax one thread per row (its sums in TFLite's order).
    one_thread = "edge-sdk: one thread per output, taps in a loop"
    rules = [(s.opcode, compiled.gpu.schedules[s.op_index]) for s in kernels]
    assert rules[:3] == [("CONV_2D", one_thread), ("DEPTHWISE_CONV_2D", one_thread),
                         ("CONV_2D", "edge-sdk: each sum split over a warp's lanes")]
    assert [r for op, r in rules if op == "DEPTHWISE_CONV_2D"] == [one_thread] * 4
    assert dict(rules)["FULLY_CONNECTED"] == "dlight.gpu.GEMV"
    assert dict(rules)["SOFTMAX"] == "edge-sdk: one thread per row, every stage in registers"
    names = [type(r).__name__ for r in default_rules(compiled.gpu.target.tvm_target)]
    assert names[0] == "Matmul" and "Matmul" not in [
        type(r).__name__ for r in default_rules(compiled.gpu.target.tvm_target, matmul=False)]


def test_a_schedule_that_leaves_a_stage_unbound_is_not_taken():
    """dlight's Matmul on an ONNX convolution whose padding stage writes an argument left that
    stage bound to no thread (it ended up on the host, where nothing ran it: PoCL read stale
    memory). The check names it; GPU builds keep the buffer inside, where Matmul inlines it."""
    import onnx
    from tvm.s_tir import dlight as dl
    from tvm.target import Target

    from edge_sdk.compiler.gpu.schedule import unfinished
    from edge_sdk.compiler.relax_lower import pointer_params
    from edge_sdk.frontend.relax_onnx import load_onnx

    case = (Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
            / "pytorch-converted" / "test_Conv2d_strided" / "model.onnx")
    func = load_onnx(case).operators[0].options["prim_func"]  # the Relax route's kernel
    target = Target("cuda")
    with target:
        as_argument = dl.gpu.Matmul().apply(pointer_params(func)[0], target, False)
        inside = dl.gpu.Matmul().apply(pointer_params(func, scratch_args=False)[0], target, False)
    assert unfinished(as_argument.mod["main"]) == "stage 'pad_temp' is bound to no GPU thread"
    assert unfinished(inside.mod["main"]) is None


def test_cuda_compiles_to_ptx_and_cross_builds_for_jetson(tmp_path):
    out = tmp_path / "jetson"
    assert main(["compile", str(shared_model("kws_ref_model")), "--board", "jetson-orin-nano",
                 "-o", str(out)]) == 0
    ptx = (out / "kws_ref_model_kernels.ptx").read_text()
    assert ".target sm_87" in ptx and ".version 8.2" in ptx
    report = json.loads((out / "report.json").read_text())
    assert report["gpu"]["device_code"] == "ptx"
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    source = (out / "kws_ref_model.c").read_text()
    launched = set(re.findall(r'\{"(\w+_kernel\w*)", \{', source))
    assert launched and launched <= entries
    assert "__global__" in (out / "kws_ref_model_kernels.cu").read_text()
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc is not installed (./setup.sh installs it)")
    b = get_board("jetson-orin-nano")
    project = generate_project(compile_for(shared_model("ad01_int8"), b), b, tmp_path / "p",
                               demo=False)
    subprocess.run(["make", "-s", "-C", str(project)], check=True, capture_output=True)
    head = (project / "build" / "runner").read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[18] == 183  # EM_AARCH64


@needs_pocl
def test_missing_device_kind_is_one_clear_line(tmp_path):
    path = shared_model("ad01_int8")
    graph = edge_sdk.load(path)
    runner, _ = build_native(path, MALI, tmp_path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 1)
    proc, _ = run_runner(runner, x, np.int8, tmp_path, env={"EDGE_OPENCL_DEVICE": "gpu"})
    if proc.returncode == 0:
        pytest.skip("this machine has an OpenCL GPU")
    assert proc.returncode == 1
    assert "no OpenCL device of the kind asked for (EDGE_OPENCL_DEVICE=gpu)" in proc.stderr


def test_unsupported_gpu_operator_is_refused_before_any_work(tmp_path):
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

    model = build_model([TensorSpec("x", (1, 8), "int8", (0.05,), (0,)),
                         TensorSpec("y", (1, 8), "int8", (0.01,), (0,))],
                        [OpSpec("MUL", [0, 0], [1])], inputs=[0], outputs=[1])
    path = tmp_path / "mul.tflite"
    path.write_bytes(model)
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(MUL, int8\) is not supported "
                       "on GPU targets"):
        compile_for(path, get_board(MALI))


def test_a_refused_operator_is_named_with_its_output_type():
    """TFLM's int16 TRANSPOSE_CONV takes its int32 output shape as its first input: the
    refusal names int16 too, not only int32."""
    path = (Path(__file__).resolve().parents[2] / "shared" / "models" / "real"
            / "tflm_int16_layers" / "transpose_conv" / "transpose_conv0.tflite")
    if not path.exists():
        pytest.skip(f"{path} is not here (../shared ships with the project's CI)")
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(TRANSPOSE_CONV, int32 -> int16\)"):
        compile_for(path, get_board(MALI))


@needs_pocl
def test_deploy_over_ssh_to_an_opencl_board(tmp_path):
    """`edge-sdk deploy` to an OpenCL board: a real sshd on loopback, PoCL as the device."""
    from tests import sshd as sshd_mod

    try:
        server = sshd_mod.start(tmp_path / "sshd")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    try:
        path = shared_model("ad01_int8")
        graph = edge_sdk.load(path)
        x = random_inputs(graph.tensor(graph.inputs[0]).shape, 2, seed=9)
        result = edge_sdk.api.deploy(path, "linux-x86_64-opencl", server.host, port=server.port,
                                     identity=server.identity, known_hosts=server.known_hosts,
                                     remote_dir=str(tmp_path / "remote"), inputs=x, bench=5)
    finally:
        server.stop()
    expected = reference(path, x)
    np.testing.assert_array_equal(result.outputs.reshape(expected.shape), expected)
    assert result.report["gpu"]["device_code"] == "opencl-c"
    assert result.report["latency"]["p50_ns"] > 0


@needs_pocl
def test_two_inputs_two_outputs_and_add_of_different_scales_on_pocl(tmp_path):
    """Several inputs and outputs through the GPU bundle (packed as on every board), and ADD of
    two tensors quantized differently, broadcast: that ADD used to keep TVM busy for minutes."""
    from edge_sdk.frontend.tflite_writer import OpSpec, build_model
    from edge_sdk.model_io import outputs_bytes, pack, unpack
    from tests.test_multi_io import litert, sample_inputs
    from tests.test_ops import act

    tensors = [act("image", (1, 4, 4, 3), 0.05, 3), act("bias_row", (1, 1, 4, 3), 0.13, -20),
               act("sum", (1, 4, 4, 3), 0.11, -4), act("pooled", (1, 1, 1, 3), 0.11, -4)]
    ops = [OpSpec("ADD", [0, 1], [2], {"activation": "RELU"}),
           OpSpec("AVERAGE_POOL_2D", [2], [3], {"filter": (4, 4), "stride": (1, 1)})]
    model = tmp_path / "two_in_two_out.tflite"
    model.write_bytes(build_model(tensors, ops, [0, 1], [3, 2]))
    graph = edge_sdk.load(model)
    runner, _ = build_native(model, MALI, tmp_path)
    xs = sample_inputs(3)
    proc, out = run_runner(runner, pack(graph, xs), np.uint8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    n = outputs_bytes(graph)
    got = unpack(graph, [out[i * n:(i + 1) * n].tobytes() for i in range(3)])
    for ours, want in zip(got, litert(model.read_bytes(), xs), strict=True):
        np.testing.assert_array_equal(ours.reshape(want.shape), want)


@needs_pocl
@pytest.mark.slow
@pytest.mark.parametrize("case", ["conv_same_stride2_per_channel", "conv_valid_relu6_dilated",
                                  "conv_per_tensor_relu", "conv_saturates", "conv_1x1_zero_points",
                                  "conv_words_split_lanes", "depthwise_same_stride2",
                                  "depthwise_multiplier2_relu"])
@pytest.mark.parametrize("variant", ["default", "opt-in"])
def test_convolution_schedules_are_bit_exact_on_pocl(case, variant, tmp_path, monkeypatch):
    """Our convolution schedules (one thread per output; sums split over lanes) and dlight's
    Matmul, by default and with the opt-in settings (four-tap words where the input depth is a
    multiple of 4, a padding word of four zero points; short sums' weights in shared memory):
    strides, dilation, SAME/VALID padding, saturation, zero points, channel multipliers."""
    from tests.test_ops import CASES

    set_variant(monkeypatch, variant)
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(CASES[case]())
    graph = edge_sdk.load(path)
    runner, compiled = build_native(path, MALI, tmp_path)
    assert set(compiled.gpu.schedules.values()) <= {
        "dlight.gpu.Matmul", "edge-sdk: each sum split over a warp's lanes",
        "edge-sdk: one thread per output, taps in a loop",
        "edge-sdk: one thread per output, weights in shared memory"}
    op = graph.operators[0]
    words = op.opcode == "CONV_2D" and graph.tensor(op.inputs[0]).shape[3] % 4 == 0
    assert ("edge_dp4a(" in compiled.gpu.device.source) == (variant == "opt-in" and words)
    if op.opcode == "CONV_2D" and not words:  # short sums (12 and 27 taps)
        assert (compiled.gpu.schedules[0] == "edge-sdk: one thread per output, weights in "
                "shared memory") == (variant == "opt-in")
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 2, seed=3)
    proc, got = run_runner(runner, x, np.int8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = reference(path, x)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


@needs_pocl
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_concatenation_pad_and_clamps_on_pocl(dtype, tmp_path):
    """CONCATENATION of two inputs, PAD (int8: the zero point fills), then RELU6 in float:
    moves and clamps, so bit for bit with LiteRT."""
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
    from edge_sdk.model_io import outputs_bytes, pack, unpack
    from tests.test_multi_io import litert

    def t(name, shape):
        return (TensorSpec(name, shape, "int8", (0.05,), (3,)) if dtype == "int8"
                else TensorSpec(name, shape, "float32"))

    pads = np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32)
    tensors = [t("a", (1, 3, 4, 2)), t("b", (1, 3, 4, 3)), t("c", (1, 3, 4, 5)),
               TensorSpec("pads", pads.shape, "int32", data=pads), t("d", (1, 6, 5, 5))]
    ops = [OpSpec("CONCATENATION", [0, 1], [2], {"axis": -1}), OpSpec("PAD", [2, 3], [4])]
    if dtype == "float32":
        tensors.append(t("e", (1, 6, 5, 5)))
        ops.append(OpSpec("RELU6", [4], [5]))
    model = tmp_path / "m.tflite"
    model.write_bytes(build_model(tensors, ops, [0, 1], [len(tensors) - 1]))
    graph = edge_sdk.load(model)
    rng = np.random.default_rng(9)
    xs = [(rng.integers(-128, 128, (2, 1, 3, 4, k), dtype=np.int8) if dtype == "int8"
           else rng.uniform(-9, 9, (2, 1, 3, 4, k)).astype(np.float32)) for k in (2, 3)]
    runner, _ = build_native(model, MALI, tmp_path)
    proc, out = run_runner(runner, pack(graph, xs), np.uint8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    n = outputs_bytes(graph)
    (got,) = unpack(graph, [out[i * n:(i + 1) * n].tobytes() for i in range(2)])
    (want,) = litert(model.read_bytes(), xs)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_nvrtc_leaves_the_text_encoding_as_it_was():
    """NVRTC set the calling thread's C locale to "C": after a Jetson compile, Python's default
    text encoding there was ASCII and reading a UTF-8 file without naming the encoding failed
    (the README's operator-table test, run after the Jetson compile test)."""
    import locale

    from edge_sdk.compiler.gpu.nvrtc import compile_ptx

    before = locale.getpreferredencoding(False)
    assert ".version" in compile_ptx('extern "C" __global__ void k(int *a) { a[0] = 1; }', "sm_87")
    assert locale.getpreferredencoding(False) == before


GPU_RESIZE_PRELU = ["prelu_per_channel", "prelu_single_alpha", "bilinear_int8_2x",
                    "bilinear_int8_half_pixel", "bilinear_int8_align_corners_down",
                    "nearest_int8_2x", "nearest_int8_align_corners", "bilinear_up_2x",
                    "bilinear_half_pixel", "bilinear_align_corners_down",
                    "nearest_float_half_pixel", "prelu_fp16_alpha"]


@needs_pocl
@pytest.mark.parametrize("case", GPU_RESIZE_PRELU)
def test_prelu_and_resize_on_pocl_match_litert_exactly(case, tmp_path):
    """PRELU and RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR as GPU kernels (what MediaPipe's palm
    detector needs), int8 and float32, each bit for bit with LiteRT: the interpolation tables
    are the CPU kernels', and float terms are added in TFLite's order with no contraction."""
    from tests.test_ops_extra import CASES, FLOAT_CASES

    model = tmp_path / f"{case}.tflite"
    model.write_bytes({**CASES, **FLOAT_CASES}[case]())
    graph = edge_sdk.load(model)
    tin = graph.tensor(graph.inputs[0])
    rng = np.random.default_rng(len(case))
    x = (rng.integers(-128, 128, (3, *tin.shape), dtype=np.int8) if tin.dtype == "int8"
         else rng.uniform(-2, 2, (3, *tin.shape)).astype(np.float32))
    runner, compiled = build_native(model, MALI, tmp_path)
    assert {s.opcode for s in compiled.program.steps if s.kind == "kernel"} & {
        "PRELU", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"}
    proc, got = run_runner(runner, x, np.dtype(tin.dtype), tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = reference(model, x)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def _float_elementwise_case(case: str) -> bytes:
    """Float element-wise models from test_ops_extra, plus MUL with a constant operand."""
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
    from tests.test_ops_extra import FLOAT_CASES, float_binary, float_unary

    if case in FLOAT_CASES:
        return FLOAT_CASES[case]()
    if case == "float_mul_constant":
        scale = np.array([0.5, -2.0, 3.25], np.float32).reshape(1, 1, 1, 3)
        tensors = [TensorSpec("input", (1, 4, 5, 3), "float32"),
                   TensorSpec("scale", scale.shape, "float32", data=scale),
                   TensorSpec("output", (1, 4, 5, 3), "float32")]
        return build_model(tensors, [OpSpec("MUL", [0, 1], [2], {"activation": "RELU6"})],
                           [0], [2])
    opcode = case.removeprefix("float_").upper()
    return float_binary(opcode) if opcode == "MUL" else float_unary(opcode)


EXACT_FLOAT_GPU = ["float_leaky_relu", "float_abs", "float_relu_n1_to_1", "float_mul_constant",
                   "float_hard_swish"]
# Binary cases take their second operand from an average pool (test_ops_extra.float_binary),
# whose float sum runs in the GPU's order: an ulp off LiteRT's before the operator is reached.
ROUNDED_FLOAT_GPU = ["float_sub_relu", "float_div", "float_maximum", "float_minimum",
                     "float_squared_difference", "float_mul", "float_rsqrt", "float_logistic",
                     "float_tanh"]


@needs_pocl
@pytest.mark.parametrize("case", EXACT_FLOAT_GPU + ROUNDED_FLOAT_GPU)
def test_float_elementwise_on_pocl_matches_litert(case, tmp_path):
    """Float binary and unary operators as GPU kernels, against LiteRT: bit for bit where each
    element is a few IEEE operations on the input; exp, tanh and sqrt are the GPU's own (a few
    ulp from the C library's) and the binary cases read a pooled operand, so those within 1e-6
    relative."""
    model = tmp_path / f"{case}.tflite"
    model.write_bytes(_float_elementwise_case(case))
    graph = edge_sdk.load(model)
    x = np.random.default_rng(len(case)).uniform(-4, 4, (3, *graph.tensor(graph.inputs[0]).shape))
    x = x.astype(np.float32)
    if "rsqrt" in case:  # its domain
        x = np.abs(x) + np.float32(0.05)
    runner, _ = build_native(model, MALI, tmp_path)
    proc, got = run_runner(runner, x, np.float32, tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = reference(model, x)
    got = got.reshape(expected.shape)
    if case in EXACT_FLOAT_GPU:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@needs_pocl
@pytest.mark.parametrize("opcode, out_q, options", [
    ("LOGISTIC", (1.0 / 256, -128), {}), ("TANH", (1.0 / 128, 0), {}),
    ("HARD_SWISH", (0.04, -20), {}), ("LEAKY_RELU", (0.03, 20), {"alpha": 0.2}),
    ("ABS", (0.03, -128), {}), ("RSQRT", (0.1, -128), {}), ("GELU", (0.03, -40), {}),
])
def test_int8_table_operators_on_pocl_on_every_value(opcode, out_q, options, tmp_path):
    """int8 unary operators as a GPU gather from the CPU kernels' 256-entry table, run on every
    int8 value (RSQRT: every positive one), bit for bit with LiteRT. (ELU shares the table code;
    LiteRT's reference resolver has no int8 ELU, so it is checked against TFLM on the CPU.)"""
    from edge_sdk.frontend.tflite_writer import OpSpec, build_model
    from tests.test_ops import act

    in_q = (0.02, -60) if opcode == "RSQRT" else (0.05, -10)
    tensors = [act("input", (1, 256), *in_q), act("output", (1, 256), *out_q)]
    model = tmp_path / f"{opcode}.tflite"
    model.write_bytes(build_model(tensors, [OpSpec(opcode, [0], [1], options)], [0], [1]))
    x = np.arange(-128, 128, dtype=np.int8)
    x = (x[x > in_q[1]] if opcode == "RSQRT" else x).reshape(1, 1, -1)  # RSQRT: x > 0 only
    x = np.resize(x, (1, 1, 256))  # the model's 256 inputs, the values repeated to fill
    runner, compiled = build_native(model, MALI, tmp_path)
    assert [s.opcode for s in compiled.program.steps if s.kind == "kernel"] == [opcode]
    proc, got = run_runner(runner, x, np.int8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = reference(model, x)
    assert len(np.unique(expected)) > 10
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


@needs_pocl
@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_transpose_on_pocl(dtype, tmp_path):
    """TRANSPOSE (NCHW -> NHWC, as every PyTorch export has at its input) was refused by the GPU
    path; a move, so bit for bit with LiteRT, int8 and float32."""
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
    from edge_sdk.model_io import outputs_bytes, pack, unpack
    from tests.test_multi_io import litert

    def t(name, shape):
        return (TensorSpec(name, shape, "int8", (0.05,), (3,)) if dtype == "int8"
                else TensorSpec(name, shape, "float32"))

    perm = np.array([0, 2, 3, 1], np.int32)
    model = tmp_path / "t.tflite"
    model.write_bytes(build_model(
        [t("x", (1, 3, 5, 4)), TensorSpec("perm", (4,), "int32", data=perm), t("y", (1, 5, 4, 3))],
        [OpSpec("TRANSPOSE", [0, 1], [2])], [0], [2]))
    graph = edge_sdk.load(model)
    rng = np.random.default_rng(4)
    x = (rng.integers(-128, 128, (2, 1, 3, 5, 4), dtype=np.int8) if dtype == "int8"
         else rng.normal(0, 3, (2, 1, 3, 5, 4)).astype(np.float32))
    runner, _ = build_native(model, MALI, tmp_path)
    proc, out = run_runner(runner, pack(graph, [x]), np.uint8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    n = outputs_bytes(graph)
    (got,) = unpack(graph, [out[i * n:(i + 1) * n].tobytes() for i in range(2)])
    (want,) = litert(model.read_bytes(), [x])
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@needs_pocl
@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize(("axes", "keep"), [((1, 2), False), ((1, 2), True), ((3,), False)])
def test_mean_on_pocl(dtype, axes, keep, tmp_path):
    """MEAN (a global average pool as converters write it) was refused by the GPU path; the CPU
    kernel's arithmetic: int8 bit for bit with LiteRT, float32 within rounding."""
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
    from edge_sdk.model_io import outputs_bytes, pack, unpack
    from edge_sdk.validate import compare
    from tests.test_multi_io import litert

    def t(name, shape, q=(0.05, 3)):
        return (TensorSpec(name, shape, "int8", (q[0],), (q[1],)) if dtype == "int8"
                else TensorSpec(name, shape, "float32"))

    out = [d for a, d in enumerate((1, 6, 5, 8)) if a not in axes]
    if keep:
        out = [1 if a in axes else d for a, d in enumerate((1, 6, 5, 8))]
    model = tmp_path / "m.tflite"
    model.write_bytes(build_model(
        [t("x", (1, 6, 5, 8)), TensorSpec("axes", (len(axes),), "int32",
                                          data=np.array(axes, np.int32)),
         t("y", tuple(out), (0.03, -7))],
        [OpSpec("MEAN", [0, 1], [2], {"keep_dims": keep})], [0], [2]))
    graph = edge_sdk.load(model)
    rng = np.random.default_rng(5)
    x = (rng.integers(-128, 128, (2, 1, 6, 5, 8), dtype=np.int8) if dtype == "int8"
         else rng.normal(0, 3, (2, 1, 6, 5, 8)).astype(np.float32))
    runner, _ = build_native(model, MALI, tmp_path)
    proc, raw = run_runner(runner, pack(graph, [x]), np.uint8, tmp_path)
    assert proc.returncode == 0, proc.stderr
    n = outputs_bytes(graph)
    (got,) = unpack(graph, [raw[i * n:(i + 1) * n].tobytes() for i in range(2)])
    (want,) = litert(model.read_bytes(), [x])
    if dtype == "int8":
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    else:
        assert compare(got, want)["match"]
