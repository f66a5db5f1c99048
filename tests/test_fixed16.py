"""gemmlowp's int16 ``logistic`` and ``tanh`` (the integer LSTM's gates), in both back ends of
``edge_sdk.compiler.kernels.fixed16``.

``data/gemmlowp_int16_samples.json`` holds gemmlowp's own results (``fixedpoint/fixedpoint.h``,
scalar path, compiled once outside this project) for 682 inputs spread over the int16 range,
plus the edges; all 65536 inputs of each function were checked the same way when the module was
written. Here the Python model must reproduce those samples, and the C that TVM generates from
the same algorithm must equal the Python model on every int16 input.
"""

from __future__ import annotations

import ctypes
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tvm

from edge_sdk.compiler.kernels import fixed16
from edge_sdk.compiler.kernels.tir import binder, buffer_args, i32, kernel, loop, store

SAMPLES = json.loads((Path(__file__).parent / "data" / "gemmlowp_int16_samples.json").read_text())
FUNCTIONS = [("logistic", 3)] + [("tanh", bits) for bits in (0, 3, 4, 5, 6)]


def python_model(name: str, bits: int, raw: int) -> int:
    return fixed16.logistic_py(raw, bits) if name == "logistic" else fixed16.tanh_py(raw, bits)


@pytest.mark.parametrize(("name", "bits"), FUNCTIONS)
def test_python_model_matches_gemmlowp(name, bits):
    key = f"{'logistic' if name == 'logistic' else 'tanh'}_q{bits}"
    got = [python_model(name, bits, v) for v in SAMPLES["inputs"]]
    assert got == SAMPLES[key]


def c_function(name: str, bits: int, tmp: Path):
    """The TIR of ``fixed16.<name>`` over an int16 array, through TVM's C printer and gcc."""
    func_name = f"{name}_q{bits}"
    with kernel(func_name) as k:
        x, y = buffer_args(("x", (65536,), "int16"), ("y", (65536,), "int16"))
        ar = fixed16.TirArith(binder())
        with loop("i", 65536) as i:
            fn = fixed16.logistic if name == "logistic" else fixed16.tanh
            store(y, tvm.tirx.Cast("int16", fn(ar, i32(x[i]), bits)), i)
    mod = tvm.IRModule({func_name: k.func, "unused": k.func})
    source = tvm.compile(mod, target="c").mod.inspect_source()
    match = re.search(rf"^TVM_DLL void {func_name}\(.*?\n\}}\n", source, re.M | re.S)
    assert match, source[:2000]
    c_file = tmp / f"{func_name}.c"
    c_file.write_text("#include <stdint.h>\n#include <stdbool.h>\n"
                      + match.group(0).replace("TVM_DLL ", ""))
    lib = tmp / f"{func_name}.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(c_file)], check=True)
    return getattr(ctypes.CDLL(str(lib)), func_name)


@pytest.mark.parametrize(("name", "bits"), FUNCTIONS)
def test_generated_c_matches_python_model_on_every_input(name, bits, tmp_path):
    fn = c_function(name, bits, tmp_path)
    x = np.arange(-32768, 32768, dtype=np.int16)
    y = np.zeros_like(x)
    fn(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p))
    want = np.array([python_model(name, bits, int(v)) for v in x], dtype=np.int16)
    np.testing.assert_array_equal(y, want)
