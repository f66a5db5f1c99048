"""SVDF in float32 and int8 against LiteRT's reference kernel, over several inferences in a row
(its memory is a variable tensor that carries over), for ranks 1 and 2, with and without bias."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model


def svdf_model(dtype, rank, with_bias, activation="NONE", batch=2, n_input=12, units=4,
               memory=5, seed=0):
    rng = np.random.default_rng(seed)
    filters = units * rank
    if dtype == "float32":
        tensors = [
            TensorSpec("x", (batch, n_input), "float32"),
            TensorSpec("wf", (filters, n_input), "float32",
                       data=rng.normal(0, 0.4, (filters, n_input)).astype(np.float32)),
            TensorSpec("wt", (filters, memory), "float32",
                       data=rng.normal(0, 0.4, (filters, memory)).astype(np.float32)),
            TensorSpec("b", (units,), "float32",
                       data=rng.normal(0, 0.2, units).astype(np.float32)),
            TensorSpec("state", (batch, filters * memory), "float32", variable=True),
            TensorSpec("y", (batch, units), "float32")]
    else:
        tensors = [
            TensorSpec("x", (batch, n_input), "int8", (0.05,), (7,)),
            TensorSpec("wf", (filters, n_input), "int8", (0.01,), (0,), 0,
                       rng.integers(-127, 128, (filters, n_input), dtype=np.int8)),
            TensorSpec("wt", (filters, memory), "int16", (0.0001,), (0,), 0,
                       rng.integers(-32767, 32768, (filters, memory), dtype=np.int16)),
            TensorSpec("b", (units,), "int32", (1e-6,), (0,), 0,
                       rng.integers(-20000, 20000, units).astype(np.int32)),
            TensorSpec("state", (batch, filters * memory), "int16", (0.004,), (0,),
                       variable=True),
            TensorSpec("y", (batch, units), "int8", (0.5,), (-3,))]
    inputs = [0, 1, 2, 3 if with_bias else -1, 4]
    op = OpSpec("SVDF", inputs, [5], {"rank": rank, "activation": activation})
    return build_model(tensors, [op], [0], [5])


def litert_sequence(model: bytes, xs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for x in xs:
        it.set_tensor(d["index"], x)
        it.invoke()
        out.append(it.get_tensor(o["index"]).copy())
    return np.stack(out)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
@pytest.mark.parametrize(("rank", "with_bias", "activation"),
                         [(1, True, "NONE"), (2, False, "RELU"), (2, True, "NONE")])
def test_svdf_over_a_sequence_of_inferences(dtype, rank, with_bias, activation):
    if dtype == "int8":
        activation = "RELU"  # TFLite's integer SVDF takes only RELU
    model = svdf_model(dtype, rank, with_bias, activation)
    rng = np.random.default_rng(rank)
    n = 8  # longer than the memory: old entries leave it
    xs = (rng.normal(0, 1, (n, 2, 12)).astype(np.float32) if dtype == "float32"
          else rng.integers(-128, 128, (n, 2, 12), dtype=np.int8))
    want = litert_sequence(model, xs)
    got = edge_sdk.run(parse(model), board="host", inputs=xs).outputs.reshape(want.shape)
    if dtype == "float32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        assert len(np.unique(want)) > 20
        np.testing.assert_array_equal(got, want)
