"""MEAN and SUM over every kind of axis set, rank and keep_dims, in int8, int16x8 and float32.

Oracles: LiteRT's reference kernels for MEAN (every case here takes the same integer route
there; before, we implemented only axes (1, 2) with keep_dims) and for float SUM; TFLite Micro
for integer SUM, because LiteRT's reference SUM reads int8/int16 data as uint8 (see
``edge_sdk/compiler/kernels/reduce.py``), which the last test shows rather than assumes.
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.conftest import reference

# (shape, axes, keep_dims, (input scale, zp), (output scale, zp))
CASES = {
    "hw_keep": ((1, 7, 7, 24), [1, 2], True, (0.05, 3), (0.02, -5)),
    "hw_keep_same_params": ((1, 7, 7, 24), [1, 2], True, (0.05, 3), (0.05, 3)),
    "hw_flat": ((1, 5, 6, 16), [1, 2], False, (0.05, 3), (0.02, -5)),
    "nchw_hw_same_params": ((1, 16, 7, 7), [2, 3], True, (0.05, 3), (0.05, 3)),
    "negative_axes": ((1, 7, 7, 8), [-3, -2], True, (0.05, 3), (0.03, 1)),
    "axis_repeated": ((2, 4, 6), [1, -2], False, (0.04, -9), (0.02, 4)),
    "middle_axis_3d": ((2, 10, 16), [1], False, (0.05, 3), (0.03, 1)),
    "last_axis": ((3, 40), [1], True, (0.05, -7), (0.01, 2)),
    "non_adjacent": ((2, 3, 4, 5), [0, 2], False, (0.07, 11), (0.05, -3)),
    "all_axes": ((3, 5, 2), [0, 1, 2], False, (0.02, -100), (0.01, 7)),
    "saturating": ((1, 4, 4, 6), [1, 2], True, (0.5, 0), (0.01, 0)),
}


def reduce_model(opcode, dtype, shape, axes, keep, in_q, out_q):
    rank = len(shape)
    resolved = {a % rank for a in axes}
    out_shape = tuple(1 if i in resolved else d for i, d in enumerate(shape)) if keep else tuple(
        d for i, d in enumerate(shape) if i not in resolved)
    if dtype == "int16":  # symmetric activations
        in_q, out_q = (in_q[0] / 200, 0), (out_q[0] / 200, 0)
    quant = (lambda q: ((q[0],), (q[1],))) if dtype != "float32" else (lambda q: (None, None))
    tensors = [TensorSpec("input", shape, dtype, *quant(in_q)),
               TensorSpec("axes", (len(axes),), "int32", data=np.array(axes, np.int32)),
               TensorSpec("output", out_shape, dtype, *quant(out_q))]
    return build_model(tensors, [OpSpec(opcode, [0, 1], [2], {"keep_dims": keep})], [0], [2])


def sample(dtype, shape, n=3, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.normal(0, 2, (n, *shape)).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, (n, *shape)).astype(dtype)


def tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model)
    out = []
    for s in x:
        it.set_input(s.reshape(it.get_input_details(0)["shape"]), 0)
        it.invoke()
        out.append(it.get_output(0).copy())
    return np.stack(out)


def ours(model: bytes, x: np.ndarray) -> np.ndarray:
    return edge_sdk.run(parse(model), board="host", inputs=x).outputs


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_integer_mean_matches_litert(case, dtype):
    shape, *rest = CASES[case]
    model = reduce_model("MEAN", dtype, shape, *rest)
    x = sample(dtype, shape)
    want = reference(model, x)
    np.testing.assert_array_equal(ours(model, x).reshape(want.shape), want)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("case", ["hw_keep", "middle_axis_3d", "non_adjacent", "all_axes"])
def test_integer_sum_matches_tflm(case, dtype):
    shape, axes, keep, in_q, (_, out_zp) = CASES[case]
    count = int(np.prod([shape[a % len(shape)] for a in axes]))
    # an output scale that keeps the sums of random data mostly inside the output range
    model = reduce_model("SUM", dtype, shape, axes, keep, in_q, (in_q[0] * count / 2, out_zp))
    x = sample(dtype, shape, seed=1)
    want = tflm(model, x)
    got = ours(model, x).reshape(want.shape)
    if want.size >= 8:
        assert len(np.unique(want)) > 3
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("opcode", ["MEAN", "SUM"])
@pytest.mark.parametrize("case", ["hw_keep", "negative_axes", "non_adjacent", "all_axes"])
def test_float_reduction_matches_litert(case, opcode):
    shape, *rest = CASES[case]
    model = reduce_model(opcode, "float32", shape, *rest)
    x = sample("float32", shape, seed=2)
    want = reference(model, x)
    np.testing.assert_allclose(ours(model, x).reshape(want.shape), want, rtol=1e-5, atol=1e-6)


def test_litert_reference_sum_reads_int8_as_uint8():
    """Why integer SUM is checked against TFLite Micro: LiteRT's reference kernel sums int8
    values as if they were uint8 (-1 counts as 255) and writes the result as uint8."""
    shape, axes, keep, in_q, (_, out_zp) = CASES["middle_axis_3d"]
    model = reduce_model("SUM", "int8", shape, axes, keep, in_q, (in_q[0] * 5, out_zp))
    x = sample("int8", shape, n=1, seed=1)
    assert not np.array_equal(reference(model, x), tflm(model, x))
    assert np.array_equal(ours(model, x).reshape(-1), tflm(model, x).reshape(-1))


# Large enough for the Linux CPU schedule (lower_reduce_rows): blocks of 16 kept values.
CPU_CASES = {
    "global_pool": ((1, 32, 28, 48), [1, 2], True, (0.05, 3), (0.02, -5)),
    "batch_and_middle": ((2, 40, 30, 32), [1, 2], False, (0.04, -9), (0.03, 1)),
    "between_kept": ((2, 24, 8, 64), [1], False, (0.05, 3), (0.03, 1)),
}


@pytest.mark.parametrize("dtype", ["int8", "float32"])
@pytest.mark.parametrize("case", sorted(CPU_CASES))
def test_the_linux_cpu_reduction_shares_rows_and_matches_litert_bit_for_bit(case, dtype):
    """Vector lanes over the kept channels and threads over blocks of them, yet each output
    sums its inputs in the reference's order: int8 and float32 equal LiteRT bit for bit, at 2
    threads."""
    from edge_sdk.api import compile_for
    from edge_sdk.project.boards import get_board

    shape, *rest = CPU_CASES[case]
    model = reduce_model("MEAN", dtype, shape, *rest)
    compiled = compile_for(parse(model), get_board("linux-x86_64"))
    (step,) = compiled.program.steps
    assert step.row_phases and "rows over threads" in step.notes
    x = sample(dtype, shape, n=2, seed=4)
    want = reference(model, x)
    got = edge_sdk.run(parse(model), board="linux-x86_64", inputs=x, threads=2).outputs
    np.testing.assert_array_equal(got.reshape(want.shape), want)
