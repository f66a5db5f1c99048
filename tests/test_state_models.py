"""Models with state, made by TensorFlow's converter (tests/models/state_models.py), inference
after inference against LiteRT's reference kernels, bit for bit: stacked int8 LSTMs whose hidden
states have non-zero zero points, and streaming models whose past frames live in resource
variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE; microWakeWord's format)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import ModelError, UnsupportedOpError
from edge_sdk.frontend.variables import resolve_variables
from edge_sdk.ir import Operator, QuantParams, Tensor
from tests.conftest import ROOT
from tests.test_real_models import litert_tensor_sequence

STATE = ROOT / "tests" / "models" / "state"
LSTMS = ["lstm_stacked_int8", "lstm_stacked_wide_int8"]
STREAMS = ["stream_int8_state", "stream_float_state"]


def check_sequence(name: str, board: str, samples: int = 6) -> np.ndarray:
    """Several inferences in a row on one arena (the state carries over), against one LiteRT
    interpreter invoked as often."""
    model = STATE / f"{name}.tflite"
    graph = edge_sdk.load(model)
    x = np.random.default_rng(5).integers(
        -128, 128, size=(samples, *graph.tensor(graph.inputs[0]).shape), dtype=np.int8)
    got = edge_sdk.run(graph, board=board, inputs=x).outputs
    want = litert_tensor_sequence(model, x, graph.outputs[0])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    return want


@pytest.mark.parametrize("name", LSTMS)
def test_stacked_int8_lstm_matches_litert_across_inferences(name):
    graph = edge_sdk.load(STATE / f"{name}.tflite")
    lstms = [op for op in graph.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstms) >= 2
    # What the model exercises: int8 hidden states off zero, and a cell clip past int16's range.
    hidden = [graph.tensor(op.inputs[18]) for op in lstms]
    assert all(h.quant.zero_point[0] != 0 for h in hidden)
    cell = graph.tensor(lstms[0].inputs[19])
    assert lstms[0].options["cell_clip"] / cell.quant.scale[0] > 32767
    for op in lstms:  # each layer's hidden sequence by itself, then the whole model
        layer = dataclasses.replace(graph, operators=graph.operators[:op.index + 1],
                                    outputs=(op.outputs[0],))
        x = np.random.default_rng(op.index).integers(
            -128, 128, size=(3, *graph.tensor(graph.inputs[0]).shape), dtype=np.int8)
        got = edge_sdk.run(layer, board="host", inputs=x).outputs
        want = litert_tensor_sequence(STATE / f"{name}.tflite", x, op.outputs[0])
        assert len(np.unique(want)) > 20
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    check_sequence(name, "host")


def test_int8_state_starts_at_its_zero_point_in_the_generated_c():
    """The first call on a zeroed arena sets each int8 state to its zero point (TFLite's reset
    value), once: the generated C says so where a reader looks."""
    from edge_sdk.pipeline import compile_graph

    graph = edge_sdk.load(STATE / "lstm_stacked_int8.tflite")
    source = compile_graph(graph).sources.source
    h = graph.tensor(graph.operators[0].inputs[18])
    assert "memset(arena + " in source and f", {h.quant.zero_point[0] % 256}, " in source
    assert "if (*state_ready != 0x45444745u)" in source


@pytest.mark.parametrize("name", STREAMS)
def test_streaming_model_with_resource_variables_matches_litert(name):
    graph = edge_sdk.load(STATE / f"{name}.tflite")
    opcodes = [op.opcode for op in graph.operators]
    assert "READ_VARIABLE" in opcodes and "ASSIGN_VARIABLE" in opcodes
    assert "VAR_HANDLE" not in opcodes and "CALL_ONCE" not in opcodes
    assert graph.tensor(graph.outputs[0]).dtype == "uint8"
    want = check_sequence(name, "host", samples=8)
    assert len({tuple(w.reshape(-1)) for w in want}) > 4  # the outputs move with the stream


def test_streaming_model_on_linux_board_matches_litert():
    check_sequence("stream_int8_state", "linux-x86_64")
    check_sequence("lstm_stacked_int8", "linux-x86_64")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stream_int8_state", "lstm_stacked_int8"])
def test_state_models_on_cortex_m4_match_litert(name):
    check_sequence(name, "mps2-an386", samples=3)


def test_inspect_lists_the_variables_operators(capsys):
    from edge_sdk.cli import main

    assert main(["inspect", str(STATE / "stream_int8_state.tflite")]) == 0
    out, err = capsys.readouterr()
    assert "not a valid" not in out + err
    assert "READ_VARIABLE" in out and "ASSIGN_VARIABLE" in out


# --- resolve_variables on hand-made subgraphs: the refusals -----------------------------------

def _subgraphs(init_ops, init_tensors):
    q = QuantParams((0.5,), (3,))
    main = [
        Tensor(0, "x", (1, 4), "int8", q),
        Tensor(1, "handle", (), "resource"),
        Tensor(2, "read", (1, 4), "int8", q),
        Tensor(3, "y", (1, 4), "int8", q),
    ]
    ops = [
        Operator(0, "CALL_ONCE", (), (), {"init_subgraph_index": 1}),
        Operator(1, "VAR_HANDLE", (), (1,), {"container": "", "shared_name": "past"}),
        Operator(2, "READ_VARIABLE", (1,), (2,), {}),
        Operator(3, "ADD", (0, 2), (3,), {"activation": "NONE"}),
        Operator(4, "ASSIGN_VARIABLE", (1, 0), (), {}),
    ]
    return main, ops, lambda k: (init_tensors, init_ops)


def test_resolve_variables_makes_a_variable_tensor_with_the_initialisers_value():
    q = QuantParams((0.5,), (3,))
    init_tensors = [Tensor(0, "h", (), "resource"),
                    Tensor(1, "zeros", (1, 4), "int8", q, data=np.full((1, 4), 3, np.int8))]
    init_ops = [Operator(0, "VAR_HANDLE", (), (0,), {"container": "", "shared_name": "past"}),
                Operator(1, "ASSIGN_VARIABLE", (0, 1), (), {})]
    tensors, ops, read = _subgraphs(init_ops, init_tensors)
    tensors, ops = resolve_variables(tensors, ops, read, 2)
    assert [op.opcode for op in ops] == ["READ_VARIABLE", "ADD", "ASSIGN_VARIABLE"]
    assert [op.index for op in ops] == [0, 1, 2]
    state = tensors[1]
    assert state.is_variable and state.dtype == "int8" and state.shape == (1, 4)
    np.testing.assert_array_equal(state.initial, np.full((1, 4), 3))
    assert ops[0].inputs == (1,) and ops[2].inputs == (0,) and ops[2].outputs == (1,)


def test_resolve_variables_refuses_an_initialiser_that_computes():
    q = QuantParams((0.5,), (3,))
    init_tensors = [Tensor(0, "h", (), "resource"),
                    Tensor(1, "a", (1, 4), "int8", q, data=np.zeros((1, 4), np.int8)),
                    Tensor(2, "b", (1, 4), "int8", q)]
    init_ops = [Operator(0, "VAR_HANDLE", (), (0,), {"container": "", "shared_name": "past"}),
                Operator(1, "ADD", (1, 1), (2,), {"activation": "NONE"}),
                Operator(2, "ASSIGN_VARIABLE", (0, 2), (), {})]
    tensors, ops, read = _subgraphs(init_ops, init_tensors)
    with pytest.raises(UnsupportedOpError, match=r"initialiser \(subgraph 1\) runs ADD"):
        resolve_variables(tensors, ops, read, 2)


def test_resolve_variables_refuses_a_variable_used_as_two_shapes():
    q = QuantParams((0.5,), (3,))
    init_tensors = [Tensor(0, "h", (), "resource"),
                    Tensor(1, "zeros", (1, 5), "int8", q, data=np.zeros((1, 5), np.int8))]
    init_ops = [Operator(0, "VAR_HANDLE", (), (0,), {"container": "", "shared_name": "past"}),
                Operator(1, "ASSIGN_VARIABLE", (0, 1), (), {})]
    tensors, ops, read = _subgraphs(init_ops, init_tensors)
    with pytest.raises(ModelError, match="variable 'past' is read, assigned or initialised as "
                                         "different tensors"):
        resolve_variables(tensors, ops, read, 2)


@pytest.mark.parametrize("board", ["mps2-an386", "host"])
def test_unrolled_gru_stores_its_shared_weights_once(board):
    """Keras unrolls the GRU into 12 copies of its step, all reading one weight matrix; the
    compiled model stores each distinct array once (before: once per step, 5.9x a real unrolled
    keyword spotter's file) and stays bit-exact."""
    from edge_sdk.api import compile_for
    from edge_sdk.project.boards import get_board
    from edge_sdk.validate import reference_outputs

    model = STATE / "gru_unrolled_int8.tflite"
    graph = edge_sdk.load(model)
    program = compile_for(graph, get_board(board)).program
    weights = sum(c.nbytes for c in program.constants)
    assert weights < model.stat().st_size  # the file also holds every operator's scales
    assert program.constant_aliases  # the repeats are names for one array
    x = np.random.default_rng(2).integers(
        -128, 128, size=(2, *graph.tensor(graph.inputs[0]).shape), dtype=np.int8)
    got = edge_sdk.run(graph, board=board, inputs=x).outputs
    (want,) = reference_outputs(model, [x])
    np.testing.assert_array_equal(got.reshape(want.shape), want)
