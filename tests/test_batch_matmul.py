"""BATCH_MATMUL in int8, int16x8 and float32 against LiteRT's reference kernel: transposed
operands (adj_x/adj_y), broadcast batch dimensions, a constant right operand (weights), zero
points != 0, saturation."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.test_multi_io import litert

# lhs shape, rhs shape, adj_x, adj_y, rhs constant
CASES = {
    "plain": ((1, 4, 6), (1, 6, 5), False, False, False),
    "adj_x": ((2, 6, 4), (2, 6, 5), True, False, False),
    "adj_y": ((2, 4, 6), (2, 5, 6), False, True, False),
    "both_adj": ((3, 7, 4), (3, 5, 7), True, True, False),
    "broadcast_batch": ((2, 1, 4, 6), (1, 3, 6, 5), False, False, False),
    "rank2_vs_batched": ((4, 6), (3, 6, 5), False, False, False),
    "constant_rhs": ((2, 3, 4, 16), (16, 8), False, False, True),
    "attention_scores": ((1, 2, 5, 8), (1, 2, 5, 8), False, True, False),
}
QUANT = {"int8": ((0.05, 3), (0.04, -7), (0.09, 5)),
         "int16": ((0.0004, 0), (0.0003, 0), (0.002, 0))}


def out_shape(lhs, rhs, adj_x, adj_y):
    m = lhs[-1] if adj_x else lhs[-2]
    n = rhs[-2] if adj_y else rhs[-1]
    return (*np.broadcast_shapes(lhs[:-2], rhs[:-2]), m, n)


def model(dtype, lhs, rhs, adj_x, adj_y, rhs_const, seed=0):
    rng = np.random.default_rng(seed)
    q = QUANT.get(dtype)

    def spec(name, shape, k, data=None):
        if dtype == "float32":
            return TensorSpec(name, shape, dtype, data=data)
        return TensorSpec(name, shape, dtype, (q[k][0],), (q[k][1],), data=data)

    data = None
    if rhs_const:
        data = (rng.normal(0, 1, rhs).astype(np.float32) if dtype == "float32" else
                rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, rhs).astype(dtype))
    tensors = [spec("lhs", lhs, 0), spec("rhs", rhs, 1, data),
               spec("out", out_shape(lhs, rhs, adj_x, adj_y), 2)]
    inputs = [0] if rhs_const else [0, 1]
    return build_model(tensors, [OpSpec("BATCH_MATMUL", [0, 1], [2],
                                        {"adj_x": adj_x, "adj_y": adj_y})], inputs, [2])


def samples(dtype, shape, n, seed):
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.normal(0, 1, (n, *shape)).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, (n, *shape)).astype(dtype)


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_matmul_matches_litert(case, dtype):
    lhs, rhs, adj_x, adj_y, rhs_const = CASES[case]
    m = model(dtype, lhs, rhs, adj_x, adj_y, rhs_const)
    x = [samples(dtype, lhs, 3, 1)] + ([] if rhs_const else [samples(dtype, rhs, 3, 2)])
    (want,) = litert(m, x)
    (got,) = edge_sdk.run(parse(m), board="host", inputs=x).output_list
    if dtype == "float32":
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
    else:
        assert len(np.unique(want)) > 10
        np.testing.assert_array_equal(got.reshape(want.shape), want)
