"""Model outputs that no operator writes: the model's input passed through, a constant, or a
tensor listed twice. LiteRT returns the input / the constant; edge-sdk gave all-zero outputs
(exit 0) or C that failed -Werror ("unused parameter 'output'") and blamed the toolchain. Each
such output now gets its own buffer and a copy step, on every CPU target."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.validate import reference_outputs
from tests.conftest import random_inputs


def act(name: str, shape: tuple[int, ...]) -> TensorSpec:
    return TensorSpec(name, shape, "int8", (0.1,), (0,))


def model(kind: str) -> bytes:
    x, relu = act("input", (1, 8)), act("relu", (1, 8))
    const = TensorSpec("const", (1, 4), "int8", (0.5,), (0,), 0,
                       np.array([[-7, 0, 5, 127]], np.int8))
    relu_op = [OpSpec("RELU", [0], [1], {})]
    return {
        "input_passed_through": lambda: build_model([x, relu], relu_op, [0], [1, 0]),
        "constant_output": lambda: build_model([x, relu, const], relu_op, [0], [1, 2]),
        "output_listed_twice": lambda: build_model([x, relu], relu_op, [0], [1, 1]),
        "no_operators": lambda: build_model([x], [], [0], [0]),
    }[kind]()


KINDS = ["input_passed_through", "constant_output", "output_listed_twice", "no_operators"]


@pytest.mark.parametrize("board", ["host", "linux-x86_64"])
@pytest.mark.parametrize("kind", KINDS)
def test_output_that_no_operator_writes(kind, board, tmp_path):
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(model(kind))
    x = random_inputs((1, 8), 3, seed=5)
    got = edge_sdk.run(edge_sdk.load(path), board=board, inputs=x).output_list
    want = reference_outputs(path, [x.reshape(3, -1)])
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.reshape(w.shape), w)
        assert np.any(w != 0)  # an all-zero result would pass for the old bug


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_output_that_no_operator_writes_on_the_cortex_m4(kind, tmp_path):
    path = tmp_path / f"{kind}.tflite"
    path.write_bytes(model(kind))
    x = random_inputs((1, 8), 2, seed=6)
    got = edge_sdk.run(edge_sdk.load(path), board="mps2-an386", inputs=x).output_list
    for g, w in zip(got, reference_outputs(path, [x.reshape(2, -1)]), strict=True):
        np.testing.assert_array_equal(g.reshape(w.shape), w)


def test_the_copy_is_named_in_the_c(tmp_path):
    path = tmp_path / "const.tflite"
    path.write_bytes(model("constant_output"))
    edge_sdk.write_compiled(edge_sdk.compile(edge_sdk.load(path)), tmp_path / "out")
    source = (tmp_path / "out" / "const.c").read_text()
    assert "memcpy(output_1, const_output1_value, 4);" in source
    assert "output 1 is the model's constant 'const'" in source
