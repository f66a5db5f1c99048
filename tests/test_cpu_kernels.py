"""The Linux CPU kernel sets (``cpu``, ``cpu-avx2``, ``cpu-vnni``, ``cpu-dotprod``): int8
bit-exact to LiteRT, float32 within 1e-5, on awkward one-operator shapes.

Fast set: each case built for ``linux-x86_64`` and run natively (this machine's kernel set:
``cpu-vnni`` where it has AVX-512 VNNI or AVX-VNNI, ``cpu-avx2`` where it has AVX2). Slow set:
the same cases for ``linux-x86_64-v3`` (AVX2) and ``linux-x86_64-v4`` (VNNI) natively where this
CPU can run them, and for ``rpi5`` (Arm ``sdot``) and ``linux-armv7`` (plain vectors) under
qemu-user. The cases are the Cortex-M SIMD kernels'
(tests/test_simd_kernels.py) plus shapes that hit these kernels' own edges: tiles of four pixels
with and without a remainder, partial lane blocks, odd channel counts (pairs and quads padded),
fully-connected tiles of four blocks with a tail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.api import compile_for, cpu_features_missing_here, cpu_isa
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.project.boards import get_board
from tests.conftest import random_inputs, reference, shared_model
from tests.test_ops import conv_model, fc_model
from tests.test_simd_kernels import CASES as SIMD_CASES

RNG = np.random.default_rng(11)

INT8 = {name: build for name, (build, *_) in SIMD_CASES.items()
        if not name.startswith(("add", "sub"))}
INT8.update({
    "conv1x1_ic3_oc40_w9": lambda: conv_model((1, 2, 9, 3), 40, (1, 1), (1, 1), "VALID",
                                              in_q=(0.03, -120)),
    "conv3x3_same_ic33_oc17_w8": lambda: conv_model((1, 5, 8, 33), 17, (3, 3), (1, 1), "SAME"),
    "conv3x3_valid_s2_ic5_oc24_batch2": lambda: conv_model((2, 9, 11, 5), 24, (3, 3), (2, 2),
                                                           "VALID", "RELU"),
    "fc_d33_u70_batch2_per_channel": lambda: fc_model(2, 33, 70, per_channel=True),
    "fc_d256_u128": lambda: fc_model(1, 256, 128, "RELU"),
    # large enough for the threads: a classifier, and batches with a leftover block
    "fc_d576_u1000_threads": lambda: fc_model(1, 576, 1000, "RELU"),
    "fc_d600_u330_batch3_threads": lambda: fc_model(3, 600, 330, per_channel=True),
    "depthwise3x3_same_c40": lambda: conv_model((1, 6, 7, 40), 40, (3, 3), (1, 1), "SAME",
                                                depthwise=True),
    # whole blocks and a small accumulator bound: requantized as vectors, in double precision,
    # with a left shift (tiny output scale)
    "conv1x1_oc16_left_shift_vector": lambda: conv_model((1, 4, 5, 8), 16, (1, 1), (1, 1),
                                                         "VALID", out_q=(0.0001, 3)),
    "depthwise3x3_c32_vector": lambda: conv_model((1, 5, 6, 32), 32, (3, 3), (2, 2), "SAME",
                                                  depthwise=True, in_q=(0.05, -128)),
    # depth 1024: |accumulator| may pass 2^22, so the integer requantization stays
    "conv1x1_ic1024_oc16_scalar": lambda: conv_model((1, 2, 3, 1024), 16, (1, 1), (1, 1),
                                                     "VALID"),
})


def pruned_channels_model() -> bytes:
    """A 1x1 convolution whose channels 3 and 11 have all-zero weights and +-2^30 biases, as
    converters leave pruned channels: their output is a constant the kernel must still give."""
    model = conv_model((1, 3, 5, 24), 16, (1, 1), (1, 1), "VALID")
    graph = parse(model)
    op = graph.operators[0]
    w = graph.tensor(op.inputs[1])
    b = graph.tensor(op.inputs[2])
    wdata, bdata = w.data.copy(), b.data.copy()
    wdata[[3, 11]] = 0
    bdata[3], bdata[11] = 2**30, -(2**30) - 128
    tensors = [TensorSpec(t.name, t.shape, t.dtype, t.quant.scale if t.quant else None,
                          t.quant.zero_point if t.quant else None,
                          t.quant.axis if t.quant else 0,
                          wdata if t is w else bdata if t is b else t.data)
               for t in graph.tensors]
    return build_model(tensors, [OpSpec("CONV_2D", list(op.inputs), list(op.outputs),
                                        {"padding": "VALID"})], list(graph.inputs),
                       list(graph.outputs))


INT8["conv1x1_pruned_channels_vector"] = pruned_channels_model
VECTOR_REQUANT = {"conv1x1_oc16_left_shift_vector": True, "depthwise3x3_c32_vector": True,
                  "conv1x1_ic1024_oc16_scalar": False, "conv1x1_pruned_channels_vector": True}


def f32_tensor(name, shape, data=None):
    return TensorSpec(name, shape, "float32", data=data)


def float_conv(in_shape, oc, k, stride, padding, depthwise=False, act="NONE"):
    from edge_sdk.compiler.quantization import conv_geometry

    n, h, w, c = in_shape
    (oh, ow), _ = conv_geometry(padding, (h, w), k, stride, (1, 1))
    channels = c if depthwise else oc
    wshape = (1, *k, channels) if depthwise else (channels, *k, c)
    opts = {"padding": padding, "stride": stride, "dilation": (1, 1), "activation": act}
    if depthwise:
        opts["depth_multiplier"] = 1
    tensors = [f32_tensor("x", in_shape),
               f32_tensor("w", wshape, RNG.normal(size=wshape).astype(np.float32)),
               f32_tensor("b", (channels,), RNG.normal(size=channels).astype(np.float32)),
               f32_tensor("y", (n, oh, ow, channels))]
    return build_model(tensors, [OpSpec("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
                                        [0, 1, 2], [3], opts)], [0], [3])


def float_fc(batch, depth, units):
    tensors = [f32_tensor("x", (batch, depth)),
               f32_tensor("w", (units, depth), RNG.normal(size=(units, depth)).astype(np.float32)),
               f32_tensor("b", (units,), RNG.normal(size=units).astype(np.float32)),
               f32_tensor("y", (batch, units))]
    return build_model(tensors, [OpSpec("FULLY_CONNECTED", [0, 1, 2], [3],
                                        {"activation": "RELU6"})], [0], [3])


FLOAT = {
    "conv3x3_same_ic5_oc20_w7": lambda: float_conv((1, 6, 7, 5), 20, (3, 3), (1, 1), "SAME"),
    "conv1x1_ic16_oc8_w8_relu": lambda: float_conv((1, 3, 8, 16), 8, (1, 1), (1, 1), "VALID",
                                                   act="RELU"),
    "depthwise3x3_s2_c12": lambda: float_conv((1, 9, 9, 12), 12, (3, 3), (2, 2), "SAME", True),
    "fc_d70_u90_batch3": lambda: float_fc(3, 70, 90),
    "fc_d576_u1000_threads": lambda: float_fc(1, 576, 1000),
    "fc_d700_u410_batch2_threads": lambda: float_fc(2, 700, 410),
}


def check_int8(case: str, board: str) -> list[str]:
    model = INT8[case]()
    graph = parse(model, name=case)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 3, seed=len(case))
    result = edge_sdk.run(graph, board=board, inputs=x)
    want = reference(model, x)
    np.testing.assert_array_equal(result.outputs.reshape(want.shape), want)
    return [layer.get("variant", "") for layer in result.report["layers"]]


def expected_note(board: str, case: str) -> str:
    isa = cpu_isa(get_board(board).llvm_target)
    if "depthwise" in case and "multiplier" not in case:
        return "cpu: "
    if "multiplier" in case:
        return ""  # depth multiplier 2: the portable kernel
    return {"cpu": "cpu (scalar)", "cpu-avx2": "cpu (vpmaddwd)", "cpu-vnni": "cpu (vpdpbusd)",
            "cpu-dotprod": "cpu (sdot)"}[isa]


@pytest.mark.parametrize("case", sorted(INT8))
def test_int8_cpu_kernel_on_this_machine(case):
    notes = check_int8(case, "linux-x86_64")
    assert notes[0].startswith(expected_note("linux-x86_64", case))
    if case in VECTOR_REQUANT:
        assert ("vector requantization" in notes[0]) == VECTOR_REQUANT[case]


@pytest.mark.parametrize("case", sorted(FLOAT))
def test_float_cpu_kernel_within_1e5_of_litert(case):
    """LLVM fuses multiply-adds where the CPU has FMA, so these differ from LiteRT's reference
    in the last bits (the portable C kernels, built without contraction, match it exactly)."""
    model = FLOAT[case]()
    graph = parse(model, name=case)
    shape = graph.tensor(graph.inputs[0]).shape
    x = RNG.uniform(-2, 2, size=(2, *shape)).astype(np.float32)
    result = edge_sdk.run(graph, board="linux-x86_64", inputs=x)
    assert result.report["layers"][0]["variant"].startswith("float32 cpu")
    want = reference(model, x)
    np.testing.assert_allclose(result.outputs.reshape(want.shape), want, rtol=1e-5, atol=1e-5)


def test_each_board_gets_its_cpu_kernel_set():
    assert cpu_isa(get_board("rpi5").llvm_target) == "cpu-dotprod"
    assert cpu_isa(get_board("rpi4").llvm_target) == "cpu"
    assert cpu_isa(get_board("linux-armv7").llvm_target) == "cpu"


def test_x86_boards_get_their_kernel_sets():
    assert cpu_isa(get_board("linux-x86_64-v3").llvm_target) == "cpu-avx2"
    assert cpu_isa(get_board("linux-x86_64-v4").llvm_target) == "cpu-vnni"


def kernel_disassembly(board_name: str, model: str, objdump: str, tmp_path) -> str:
    from edge_sdk.codegen.llvm import build_kernel_object

    board = get_board(board_name)
    compiled = compile_for(edge_sdk.load(shared_model(model)), board)
    obj = build_kernel_object(compiled.program, compiled.sources.function_of_step,
                              board.llvm_target, Path(tmp_path) / "kernels.o")
    return subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True,
                          check=True).stdout


def test_vnni_kernels_use_vpdpbusd(tmp_path):
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump is not installed (binutils; ./setup.sh installs it)")
    text = kernel_disassembly("linux-x86_64-v4", "kws_ref_model", objdump, tmp_path)
    assert text.count("vpdpbusd") >= 4
    assert "vpmaddwd" not in text


def test_a_board_beyond_this_cpu_is_refused_before_it_runs(monkeypatch):
    """Running linux-x86_64-v4 code on a CPU without AVX-512 would die on an illegal
    instruction: refused first, saying which features are missing and what to use instead."""
    import edge_sdk.api

    monkeypatch.setattr(edge_sdk.api, "host_cpu_flags", lambda: {"avx2", "fma", "sse4_2"})
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    with pytest.raises(edge_sdk.errors.UsageError, match=r"avx512vnni.*--board linux-x86_64 "):
        edge_sdk.run(parse(INT8["fc_d256_u128"]()), board="linux-x86_64-v4")


@pytest.mark.slow
@pytest.mark.parametrize("board", ["linux-x86_64-v3", "linux-x86_64-v4"])
@pytest.mark.parametrize("case", sorted(INT8))
def test_int8_each_x86_kernel_set_natively(board, case):
    missing = cpu_features_missing_here(get_board(board))
    if missing:
        pytest.skip(f"this machine's CPU lacks {', '.join(missing)}")
    notes = check_int8(case, board)
    assert notes[0].startswith(expected_note(board, case))


def test_rpi5_kernels_use_sdot(tmp_path):
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump is None:
        pytest.skip("aarch64-linux-gnu-objdump is not installed (./setup.sh installs it)")
    from edge_sdk.codegen.llvm import build_kernel_object

    board = get_board("rpi5")
    compiled = compile_for(edge_sdk.load(shared_model("kws_ref_model")), board)
    obj = build_kernel_object(compiled.program, compiled.sources.function_of_step,
                              board.llvm_target, Path(tmp_path) / "kernels.o")
    text = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    assert text.count("\tsdot\t") >= 4


@pytest.mark.slow
@pytest.mark.parametrize("board", ["rpi5", "linux-armv7"])
@pytest.mark.parametrize("case", sorted(INT8))
def test_int8_cpu_kernel_under_qemu_user(board, case):
    emulator = get_board(board).linux["emulator"]
    if shutil.which(emulator) is None:
        pytest.skip(f"{emulator} is not installed (./setup.sh installs it)")
    notes = check_int8(case, board)
    assert notes[0].startswith(expected_note(board, case))


def int8_binary(opcode: str, a_shape, b_shape, out_shape) -> bytes:
    """One int8 ADD/SUB/MUL with broadcasting (a residual add, an SE-block scale); the second
    operand a constant (one input keeps the LiteRT oracle simple)."""
    b = np.random.default_rng(8).integers(-128, 128, b_shape, dtype=np.int8)
    tensors = [TensorSpec("a", a_shape, "int8", (0.05,), (3,)),
               TensorSpec("b", b_shape, "int8", (0.04,), (-7,), data=b),
               TensorSpec("y", out_shape, "int8", (0.08 if opcode != "MUL" else 0.01,), (2,))]
    options = {"activation": "RELU"} if opcode == "ADD" else {}
    return build_model(tensors, [OpSpec(opcode, [0, 1], [2], options)], [0], [2])


@pytest.mark.parametrize(("opcode", "a_shape", "b_shape"), [
    ("ADD", (1, 40, 24, 32), (1, 40, 24, 32)),  # a residual
    ("SUB", (1, 40, 24, 32), (1, 1, 1, 32)),
    ("MUL", (2, 20, 24, 40), (2, 1, 1, 40)),  # squeeze-and-excite's scale, batch 2
])
def test_int8_elementwise_rows_over_threads_bit_exact(opcode, a_shape, b_shape):
    model = int8_binary(opcode, a_shape, b_shape, a_shape)
    compiled = compile_for(parse(model), get_board("linux-x86_64"))
    (step,) = compiled.program.steps
    assert step.row_phases == (a_shape[0] * a_shape[1],)
    x = random_inputs(a_shape, 2, seed=7)
    want = reference(model, x)
    got = edge_sdk.run(parse(model), board="linux-x86_64", inputs=x, threads=2).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def assert_equal_to_litert_at_2_threads(model: bytes, dtype: str, shape, seed: int) -> None:
    """Two random inputs of ``shape`` (int8 over its range, float32 normal), the
    linux-x86_64 board at 2 threads against LiteRT's reference kernels, bit for bit."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(-128, 128, (2, *shape), dtype=np.int8) if dtype == "int8"
         else rng.normal(0, 3, (2, *shape)).astype(np.float32))
    want = reference(model, x)
    got = edge_sdk.run(parse(model), board="linux-x86_64", inputs=x, threads=2).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def pool_model(opcode: str, dtype: str, shape, filter_, stride, padding, activation) -> bytes:
    n, h, w, c = shape
    oh = -(-h // stride[0]) if padding == "SAME" else (h - filter_[0]) // stride[0] + 1
    ow = -(-w // stride[1]) if padding == "SAME" else (w - filter_[1]) // stride[1] + 1
    q = ((0.05,), (-3,)) if dtype == "int8" else (None, None)
    tensors = [TensorSpec("x", shape, dtype, *q), TensorSpec("y", (n, oh, ow, c), dtype, *q)]
    return build_model(tensors, [OpSpec(opcode, [0], [1], {
        "padding": padding, "stride": stride, "filter": filter_, "activation": activation})],
        [0], [1])


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize(("opcode", "shape", "filter_", "stride", "padding", "activation"), [
    ("MAX_POOL_2D", (1, 56, 48, 32), (3, 3), (2, 2), "SAME", "NONE"),  # ResNet's stem pool
    ("AVERAGE_POOL_2D", (1, 40, 36, 24), (3, 3), (1, 1), "SAME", "RELU6"),  # edges: fewer taps
    ("AVERAGE_POOL_2D", (2, 61, 60, 16), (2, 2), (2, 2), "VALID", "NONE"),  # odd rows dropped
    ("MAX_POOL_2D", (1, 41, 37, 48), (5, 5), (1, 1), "SAME", "RELU"),  # YOLO's SPPF
])
def test_pooling_rows_over_threads_bit_exact(dtype, opcode, shape, filter_, stride, padding,
                                            activation):
    """Channels in vector lanes and rows over 2 threads: int8 and float32 (averages too)
    equal LiteRT's reference kernels bit for bit."""
    model = pool_model(opcode, dtype, shape, filter_, stride, padding, activation)
    compiled = compile_for(parse(model), get_board("linux-x86_64"))
    (step,) = compiled.program.steps
    assert step.row_phases and "rows over threads" in step.notes
    assert_equal_to_litert_at_2_threads(model, dtype, shape, seed=9)


@pytest.mark.parametrize("kind", ["int8", "float32"])
def test_a_large_fully_connected_layer_shares_its_tiles_over_threads(kind):
    """The cases named *_threads above run bit-exact (int8) and within 1e-5 (float) at the
    machine's thread count; here: their tiles are rows for the pool, small layers stay
    on one thread."""
    cases = INT8 if kind == "int8" else FLOAT
    board = get_board("linux-x86_64")
    for case, make in cases.items():
        if not case.startswith("fc"):
            continue
        (step,) = compile_for(parse(make(), name=case), board).program.steps
        assert bool(step.row_phases) == case.endswith("_threads"), case
        assert ("tiles over threads" in step.notes) == case.endswith("_threads"), case


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_pad_rows_over_threads_bit_exact(dtype):
    """A PyTorch padding TFLite's SAME cannot express (1 before, 1 after, stride 2) arrives as
    PAD: on a Linux board its rows are shared by the pool; equal to LiteRT bit for bit."""
    shape, pads = (1, 56, 56, 24), np.array([[0, 0], [1, 1], [2, 1], [0, 0]], np.int32)
    out = tuple(int(d + a + b) for d, (a, b) in zip(shape, pads, strict=True))
    q = ((0.05,), (-3,)) if dtype == "int8" else (None, None)
    model = build_model([TensorSpec("x", shape, dtype, *q),
                         TensorSpec("pads", (4, 2), "int32", data=pads),
                         TensorSpec("y", out, dtype, *q)],
                        [OpSpec("PAD", [0, 1], [2], {})], [0], [2])
    (step,) = compile_for(parse(model), get_board("linux-x86_64")).program.steps
    assert step.row_phases == (out[0] * out[1],)
    assert_equal_to_litert_at_2_threads(model, dtype, shape, seed=10)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_transpose_rows_over_threads_bit_exact(dtype):
    """An NCHW model's input transpose (what a PyTorch export starts with on the operator
    library): rows over the pool, equal to LiteRT."""
    shape, perm = (1, 3, 96, 112), np.array([0, 2, 3, 1], np.int32)
    out = tuple(shape[p] for p in perm)
    q = ((0.05,), (-3,)) if dtype == "int8" else (None, None)
    model = build_model([TensorSpec("x", shape, dtype, *q),
                         TensorSpec("perm", (4,), "int32", data=perm),
                         TensorSpec("y", out, dtype, *q)],
                        [OpSpec("TRANSPOSE", [0, 1], [2], {})], [0], [2])
    (step,) = compile_for(parse(model), get_board("linux-x86_64")).program.steps
    assert step.row_phases == (96,)
    assert_equal_to_litert_at_2_threads(model, dtype, shape, seed=11)
