"""GELU (exact and tanh-approximated) and ELU in int8 (256-entry tables of the float function,
as TFLite's Prepare tabulates it) and float32. Oracle: LiteRT's reference kernels for GELU; for
ELU, which the reference resolver does not register, LiteRT's builtin kernel without the XNNPACK
delegate (XNNPACK computes int8 ELU its own way: 11 of 256 values differ by one)."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model


def litert(model: bytes, x: np.ndarray, ref: bool) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.BUILTIN_REF if ref else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    kw = {"experimental_op_resolver_type": kind}
    it = Interpreter(model_content=model, **kw)
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(o["index"]).copy()


def unary(opcode, dtype, in_q=None, out_q=None, options=None, shape=(1, 256)):
    q = (lambda p: ((p[0],), (p[1],))) if dtype == "int8" else (lambda p: (None, None))
    tensors = [TensorSpec("x", shape, dtype, *q(in_q)), TensorSpec("y", shape, dtype, *q(out_q))]
    return build_model(tensors, [OpSpec(opcode, [0], [1], options or {})], [0], [1])


INT8 = [((0.05, 3), (0.03, -60)), ((0.1, -20), (0.07, -100)), ((0.02, 0), (0.01, -128)),
        ((0.3, 10), (0.2, -30))]


@pytest.mark.parametrize(("opcode", "options"), [("GELU", {"approximate": False}),
                                                  ("GELU", {"approximate": True}),
                                                  ("ELU", {})])
@pytest.mark.parametrize("params", range(len(INT8)))
def test_int8_every_input_value(opcode, options, params):
    in_q, out_q = INT8[params]
    if opcode == "ELU":
        out_q = (out_q[0], 60)  # ELU's range is [-1, inf): room below zero
    model = unary(opcode, "int8", in_q, out_q, options)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)  # every int8 value
    want = litert(model, x, ref=opcode != "ELU")
    got = edge_sdk.run(parse(model), board="host", inputs=x[None]).outputs
    assert len(np.unique(want)) > 20
    np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize(("opcode", "options"), [("GELU", {"approximate": False}),
                                                  ("GELU", {"approximate": True}),
                                                  ("ELU", {})])
def test_float(opcode, options):
    model = unary(opcode, "float32", options=options, shape=(1, 500))
    x = np.random.default_rng(0).normal(0, 3, (1, 500)).astype(np.float32)
    want = litert(model, x, ref=opcode != "ELU")
    got = edge_sdk.run(parse(model), board="host", inputs=x[None]).outputs
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-6)
