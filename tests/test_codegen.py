"""The generated C: warning-free on every Cortex-M target, and two models link together."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import edge_sdk
from edge_sdk.compiler.targets import TARGETS
from edge_sdk.frontend.tflite import parse
from edge_sdk.pipeline import compile_graph
from tests.conftest import ROOT, random_inputs, reference, shared_model
from tests.test_ops_more import CASES as MORE_CASES
from tests.test_ops_more import float_io_model

CORTEX_M = [t for t in TARGETS if t.startswith("cortex-m")]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """For each kernel set: kws (conv, depthwise, pool, FC, softmax) and resnet (residual ADD,
    padded convolutions), both arena preferences, plus a model with every table/float kernel."""
    out = tmp_path_factory.mktemp("c")
    files: dict[str, list[str]] = {}
    for isa in ("generic", "dsp", "mve"):
        models = [compile_graph(edge_sdk.load(shared_model(name)), isa=isa, prefer=prefer)
                  for name in ("kws_ref_model", "pretrainedResnet_quant")
                  for prefer in ("memory", "speed")]
        models += [compile_graph(parse(float_io_model(), name="float_io"), isa=isa),
                   compile_graph(parse(MORE_CASES["hard_swish"](), name="hswish"), isa=isa)]
        for i, m in enumerate(models):
            (out / isa / str(i)).mkdir(parents=True)
            (out / isa / str(i) / m.sources.header_name).write_text(m.sources.header)
            (out / isa / str(i) / m.sources.source_name).write_text(m.sources.source)
        files[isa] = [f"{isa}/{i}/{m.sources.source_name}" for i, m in enumerate(models)]
    return out, files


@pytest.mark.parametrize("cpu", CORTEX_M)
def test_compiles_warning_free_for(cpu, sources):
    """Each core's own kernel set (what `compile --board` gives it), -Wall -Wextra -Werror, at
    every optimization level users build with (Zephyr defaults to -Os): the inline assembly must
    find its registers whatever GCC keeps live around it."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (./setup.sh installs it)")
    out, files = sources
    target = TARGETS[cpu]
    isa = "mve" if target.mve else "dsp" if target.dsp else "generic"
    flags = target.cflags.split()
    for name in files[isa]:
        for level in ("-O2", "-Os", "-O3", "-Og", "-O0"):
            proc = subprocess.run(
                ["arm-none-eabi-gcc", *flags, "-std=c99", level, "-Wall", "-Wextra", "-Werror",
                 "-ffp-contract=off", "-c", str(out / name), "-o", str(out / f"{cpu}.o")],
                capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr


def test_simd_kernels_refuse_a_core_without_the_extension(sources):
    """DSP code built for a Cortex-M3, or MVE code for an M4, stops with a clear #error."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (./setup.sh installs it)")
    out, files = sources
    for isa, cpu, words in (("dsp", "cortex-m3", "DSP extension"), ("mve", "cortex-m4", "MVE")):
        proc = subprocess.run(["arm-none-eabi-gcc", *TARGETS[cpu].cflags.split(), "-std=c99",
                               "-c", str(out / files[isa][0]), "-o", str(out / "x.o")],
                              capture_output=True, text=True)
        assert proc.returncode != 0 and words in proc.stderr, proc.stderr


def test_generated_c_has_no_runtime_or_heap(sources):
    out, files = sources
    for name in (f for group in files.values() for f in group):
        text = (out / name).read_text()
        for banned in ("malloc", "free(", "TVMBackend", "tvm/", "TVM_DLL"):
            assert banned not in text, f"{banned} in {name}"
        # weights and tables are const arrays (flash): int8, q15 pairs (DSP), int32, float
        assert re.search(r"static const (int8_t|int16_t|int32_t|float) \w+\[", text), name


def test_two_models_link_into_one_program(tmp_path):
    """kws and ad01 in one executable: prefixed symbols, separate arenas, both still exact."""
    kws, ad01 = shared_model("kws_ref_model"), shared_model("ad01_int8")
    a, b = edge_sdk.compile(kws), edge_sdk.compile(ad01)
    for m in (a, b):
        (tmp_path / m.sources.header_name).write_text(m.sources.header)
        (tmp_path / m.sources.source_name).write_text(m.sources.source)
    (tmp_path / "main.c").write_text("""
#include <stdio.h>
#include "kws_ref_model.h"
#include "ad01_int8.h"
static uint8_t arena_a[KWS_REF_MODEL_ARENA_SIZE], arena_b[AD01_INT8_ARENA_SIZE];
int main(void) {
  static int8_t in_a[KWS_REF_MODEL_INPUT_SIZE], out_a[KWS_REF_MODEL_OUTPUT_SIZE];
  static int8_t in_b[AD01_INT8_INPUT_SIZE], out_b[AD01_INT8_OUTPUT_SIZE];
  if (fread(in_a, 1, sizeof in_a, stdin) != sizeof in_a) return 1;
  if (fread(in_b, 1, sizeof in_b, stdin) != sizeof in_b) return 1;
  if (kws_ref_model_run(in_a, out_a, arena_a) || ad01_int8_run(in_b, out_b, arena_b)) return 2;
  fwrite(out_a, 1, sizeof out_a, stdout);
  fwrite(out_b, 1, sizeof out_b, stdout);
  return 0;
}
""")
    exe = tmp_path / "both"
    subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    "-I", str(tmp_path), str(tmp_path / "main.c"),
                    str(tmp_path / "kws_ref_model.c"), str(tmp_path / "ad01_int8.c"), "-lm",
                    "-o", str(exe)], check=True)
    xa = random_inputs((1, 49, 10, 1), 1, seed=1)
    xb = random_inputs((1, 640), 1, seed=2)
    out = subprocess.run([str(exe)], input=xa.tobytes() + xb.tobytes(), capture_output=True,
                         check=True).stdout
    got_a = np.frombuffer(out[:12], np.int8)
    got_b = np.frombuffer(out[12:], np.int8)
    np.testing.assert_array_equal(got_a, reference(kws, xa).reshape(-1))
    np.testing.assert_array_equal(got_b, reference(ad01, xb).reshape(-1))


def reused_temporaries(code: str) -> list[str]:
    """Temporaries TVM's C printer introduced (``v_...``, e.g. for min/max operands) that are
    read again after a store to a buffer their value loaded: the printer caches a temporary by
    the printed expression within a block, so a kernel that clamps the same scalar load twice
    around a store to it silently reads the stale value."""
    lines = code.splitlines()
    found = []
    for n, line in enumerate(lines):
        m = re.match(r"\s*\w+ (v_\w*) = (.+);$", line)
        if not m:
            continue
        var, loaded = m.group(1), set(re.findall(r"(\w+)\[", m.group(2)))
        stored = False
        for later in lines[n + 1:]:
            if later.startswith("}"):
                break
            if stored and re.search(rf"\b{var}\b", later):
                found.append(f"{var} = {m.group(2)[:60]} read after a store: {later.strip()}")
                break
            if any(re.match(rf"\s*{b}\[[^=]*\] = ", later) for b in loaded):
                stored = True
    return found


def test_the_scan_catches_a_reused_temporary():
    stale = ("static void k(int32_t* acc_ptr) {\n  int32_t v__1 = acc_ptr[0];\n"
             "  acc_ptr[0] = (v__1) < (7) ? (v__1) : (7);\n  acc_ptr[0] = 3;\n"
             "  int32_t v__2 = (v__1) < (9) ? (v__1) : (9);\n}\n")
    assert len(reused_temporaries(stale)) == 1


@pytest.mark.parametrize("board", ["host", "mps2-an386", "mps3-an547"])
def test_no_temporary_is_read_stale(board):
    """The generated C of models whose kernels clamp and requantize scalars in place (the int8
    LSTM's cell and hidden state, softmax, the MLPerf layers) never reads a stale temporary."""
    from edge_sdk.api import compile_for
    from edge_sdk.codegen.tvm_c import generate_kernels
    from edge_sdk.project.boards import get_board

    models = [ROOT.parent / "shared" / "models" / "real" / "tflm" / "trained_lstm_int8.tflite",
              shared_model("ad01_int8"), shared_model("kws_ref_model")]
    for model in models:
        if not model.exists():
            pytest.skip(f"{model} is absent")
        program = compile_for(edge_sdk.load(model), get_board(board)).program
        assert reused_temporaries(generate_kernels(program).code) == [], model.name


HOSTILE_NAMES = ["a/*b", "x*/y", "??/\nnext", "bidi\u202eevil\u202c", "tab\there", "ünï ∑ name",
                 "end??/"]


@pytest.mark.parametrize("board", ["host", "mps2-an386"])
def test_hostile_tensor_and_model_names_build_warning_free(tmp_path, board):
    """Names from the model file went into C comments as they were: '/*' (-Wcomment), '??/'
    and a line break (a trigraph splicing lines), a bidi control character (-Wbidi-chars),
    all fatal under -Werror; a non-ASCII file name gave non-ASCII C identifiers. Names are
    now ASCII and inert in comments; the model builds and runs bit-exact."""
    import edge_sdk
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
    from tests.conftest import random_inputs, reference

    tensors = [TensorSpec(HOSTILE_NAMES[k % len(HOSTILE_NAMES)] + str(k), (1, 8), "int8",
                          (0.1,), (0,)) for k in range(3)]
    path = tmp_path / "modèle ü.tflite"
    path.write_bytes(build_model(tensors, [OpSpec("RELU", [0], [1], {}),
                                           OpSpec("RELU6", [1], [2], {})], [0], [2]))
    graph = edge_sdk.load(path)
    assert graph.name.isascii() and graph.name.isidentifier()
    x = random_inputs((1, 8), 2, seed=1)
    got = edge_sdk.run(graph, board=board, inputs=x).outputs
    np.testing.assert_array_equal(got.reshape(2, 1, 8), reference(path, x))
    source = edge_sdk.compile(graph).sources.source
    assert source.isascii() and "??" not in source and "\u202e" not in source


def test_each_kernel_is_defined_in_layer_order_under_a_comment_naming_its_layers():
    """kws on the DSP kernels: the depthwise kernel serves layers 1, 3, 5, 7 and says so where it
    is defined, with its variant; definitions follow the layers, not the names."""
    model = compile_graph(edge_sdk.load(shared_model("kws_ref_model")), isa="dsp")
    source = model.sources.source
    comment = re.search(r"/\* kws_ref_model_l1_depthwise_conv_2d: DEPTHWISE_CONV_2D, layers 1, 3, "
                        r"5, 7 \('[^']*'\); DSP: [^*]*\*/\nstatic void "
                        r"kws_ref_model_l1_depthwise_conv_2d\(", source)
    assert comment, source[:2000]
    defined = [int(m.group(1)) for m in re.finditer(
        r"^static void kws_ref_model_l(\d+)_\w+\(", source, re.M)]
    assert defined == sorted(defined) and defined[:3] == [0, 1, 2]
