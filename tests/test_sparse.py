"""Sparse weights: a DENSIFY of a sparse constant (CSR, and 1x4 block-sparse) folds into a dense
constant at load time, and the model then runs like any other; checked against LiteRT, which
densifies the same flatbuffer itself."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import ModelError
from edge_sdk.frontend.sparsity import DENSE, SPARSE_CSR, DimMetadata, Sparsity, densify
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.test_multi_io import litert


def sparse_weights(units=8, depth=16, block=1, seed=0, dtype="float32"):
    """A dense matrix with whole blocks of zeros, and its compressed form."""
    rng = np.random.default_rng(seed)
    dense = (rng.normal(0, 0.5, (units, depth)).astype(np.float32) if dtype == "float32"
             else rng.integers(-127, 128, (units, depth)).astype(np.int8))
    keep = rng.random((units, depth // block)) < 0.4
    dense *= np.repeat(keep, block, axis=1).astype(dense.dtype)
    segments, indices, values = [0], [], []
    for r in range(units):
        for c in np.nonzero(keep[r])[0]:
            indices.append(int(c))
            values.extend(dense[r, c * block:(c + 1) * block])
        segments.append(len(indices))
    csr = DimMetadata(SPARSE_CSR, 0, tuple(segments), tuple(indices))
    if block == 1:
        sp = Sparsity((0, 1), (), (DimMetadata(DENSE, units), csr))
    else:
        sp = Sparsity((0, 1, 2), (1,), (DimMetadata(DENSE, units), csr,
                                        DimMetadata(DENSE, block)))
    return dense, np.array(values, dtype=dense.dtype), sp


@pytest.mark.parametrize("block", [1, 4])
def test_densify_rebuilds_the_matrix(block):
    dense, values, sp = sparse_weights(block=block)
    np.testing.assert_array_equal(densify(values, dense.shape, sp), dense)


def test_inconsistent_sparsity_is_a_clear_error():
    dense, values, sp = sparse_weights()
    with pytest.raises(ModelError, match="sparse tensor"):
        densify(values[:-1], dense.shape, sp)


def fc_through_densify(block: int, dtype: str) -> bytes:
    dense, values, sp = sparse_weights(block=block, dtype=dtype)
    if dtype == "float32":
        spec = lambda name, shape: TensorSpec(name, shape, "float32")  # noqa: E731
        weights = TensorSpec("w_sparse", dense.shape, "float32", data=values, sparsity=sp)
    else:
        spec = lambda name, shape: TensorSpec(name, shape, "int8", (0.05,), (3,))  # noqa: E731
        weights = TensorSpec("w_sparse", dense.shape, "int8", (0.01,), (0,), data=values,
                             sparsity=sp)
    dense_w = TensorSpec("w", dense.shape, dtype, *((None, None) if dtype == "float32"
                                                   else ((0.01,), (0,))))
    tensors = [spec("x", (2, 16)), weights, dense_w, spec("y", (2, 8))]
    ops = [OpSpec("DENSIFY", [1], [2]),
           OpSpec("FULLY_CONNECTED", [0, 2, -1], [3], {"activation": "NONE"})]
    return build_model(tensors, ops, [0], [3])


@pytest.mark.parametrize("dtype", ["float32", "int8"])
@pytest.mark.parametrize("block", [1, 4])
def test_densify_folds_and_the_model_matches_litert(block, dtype):
    model = fc_through_densify(block, dtype)
    graph = parse(model)
    assert "DENSIFY" not in {s.opcode for s in edge_sdk.compile(graph).program.steps}
    rng = np.random.default_rng(block)
    x = (rng.normal(0, 1, (3, 2, 16)).astype(np.float32) if dtype == "float32"
         else rng.integers(-128, 128, (3, 2, 16), dtype=np.int8))
    (want,) = litert(model, [x])
    got = edge_sdk.run(graph, board="host", inputs=x).outputs.reshape(want.shape)
    if dtype == "float32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


def test_sparse_float16_weights_densify_then_dequantize(tmp_path):
    """MediaPipe's full-range face detector keeps sparse float16 weights: DENSIFY, then
    DEQUANTIZE to float32. The DEQUANTIZE was left unfolded (the fold read the DENSIFY's output
    before it had been made a constant) and the model was refused, blaming DEQUANTIZE."""
    dense, values, sp = sparse_weights(block=4)
    tensors = [TensorSpec("x", (2, 16), "float32"),
               TensorSpec("w_sparse", dense.shape, "float16", data=values.astype(np.float16),
                          sparsity=sp),
               TensorSpec("w16", dense.shape, "float16"),
               TensorSpec("w", dense.shape, "float32"),
               TensorSpec("y", (2, 8), "float32")]
    ops = [OpSpec("DENSIFY", [1], [2]), OpSpec("DEQUANTIZE", [2], [3]),
           OpSpec("FULLY_CONNECTED", [0, 3, -1], [4], {"activation": "NONE"})]
    model = build_model(tensors, ops, [0], [4])
    graph = parse(model)
    assert {s.opcode for s in edge_sdk.compile(graph).program.steps} == {"FULLY_CONNECTED"}
    x = np.random.default_rng(3).normal(0, 1, (3, 2, 16)).astype(np.float32)
    (want,) = litert(model, [x])
    got = edge_sdk.run(graph, board="host", inputs=x).outputs.reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
