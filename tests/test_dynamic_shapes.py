"""Models whose batch is left open (Keras: -1 in the shape signature) compute their shapes at
run time: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE. SHAPE was refused; now the chain folds at
the stored shape (batch 1), and edge-sdk says that it compiled that shape."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.validate import reference_outputs


def keras_style_model(path):
    rng = np.random.default_rng(0)
    tensors = [
        TensorSpec("x", (1, 4, 4, 2), "int8", (0.1,), (0,), signature=(-1, 4, 4, 2)),
        TensorSpec("shape", (4,), "int32"),
        TensorSpec("begin", (1,), "int32", data=np.array([0], np.int32)),
        TensorSpec("end", (1,), "int32", data=np.array([1], np.int32)),
        TensorSpec("strides", (1,), "int32", data=np.array([1], np.int32)),
        TensorSpec("batch", (), "int32"),
        TensorSpec("features", (), "int32", data=np.array(32, np.int32)),
        TensorSpec("new_shape", (2,), "int32"),
        TensorSpec("flat", (1, 32), "int8", (0.1,), (0,), signature=(-1, 32)),
        TensorSpec("w", (5, 32), "int8", (0.01,), (0,), 0,
                   rng.integers(-127, 128, (5, 32)).astype(np.int8)),
        TensorSpec("y", (1, 5), "int8", (0.2,), (0,), signature=(-1, 5))]
    ops = [OpSpec("SHAPE", [0], [1], {}),
           OpSpec("STRIDED_SLICE", [1, 2, 3, 4], [5], {"shrink_axis_mask": 1}),
           OpSpec("PACK", [5, 6], [7], {"axis": 0, "values_count": 2}),
           OpSpec("RESHAPE", [0, 7], [8], {"new_shape": [1, 32]}),
           OpSpec("FULLY_CONNECTED", [8, 9, -1], [10], {"activation": "NONE"})]
    path.write_bytes(build_model(tensors, ops, [0], [10]))
    return path


@pytest.mark.parametrize("board", ["host", "linux-x86_64"])
def test_an_open_batch_folds_and_runs_bit_exact(tmp_path, board):
    path = keras_style_model(tmp_path / "keras.tflite")
    graph = edge_sdk.load(path)
    assert graph.tensor(graph.inputs[0]).signature == (-1, 4, 4, 2)
    steps = [s.opcode for s in edge_sdk.compile(graph).program.steps]
    assert steps == ["RESHAPE", "FULLY_CONNECTED"]  # the shape arithmetic is gone
    x = np.random.default_rng(1).integers(-128, 128, (3, 1, 4, 4, 2)).astype(np.int8)
    got = edge_sdk.run(graph, board=board, inputs=x).outputs
    (want,) = reference_outputs(path, [x.reshape(3, -1)])
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_inspect_and_compile_say_the_shape_they_chose(tmp_path, capsys, monkeypatch):
    import edge_sdk.api as api

    path = keras_style_model(tmp_path / "keras.tflite")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr()
    assert "UNSUPPORTED" not in out.out
    assert "open dimensions: [-1, 4, 4, 2]; compiled at the shape the file stores" in out.out
    monkeypatch.setattr(api, "_WARNED_OPEN", set())  # said once per process: start afresh
    assert main(["compile", str(path), "-o", str(tmp_path / "c")]) == 0
    assert "warning" not in capsys.readouterr().err  # an open batch alone: compiled as 1, quiet
    monkeypatch.setattr(api, "_WARNED_OPEN", set())
    assert main(["-v", "compile", str(path), "-o", str(tmp_path / "d")]) == 0
    err = capsys.readouterr().err
    assert err.count("input 'x' leaves its batch open ([-1, 4, 4, 2]): compiled for batch 1") == 1


def open_length_model(path):
    """Audio-style: input [1, -1] (any length), stored as [1, 1]."""
    path.write_bytes(build_model(
        [TensorSpec("audio", (1, 1), "int8", (0.1,), (2,), signature=(1, -1)),
         TensorSpec("y", (1, 1), "int8", (0.1,), (2,), signature=(1, -1))],
        [OpSpec("RELU", [0], [1], {})], [0], [1]))
    return path


def test_input_shape_chooses_an_open_length(tmp_path, capsys):
    """An input of open length compiled silently as [1, 1]; --input-shape chooses the length
    (LiteRT propagates it to every tensor), and --check resizes the reference the same way."""
    path = open_length_model(tmp_path / "audio.tflite")
    x = np.random.default_rng(0).integers(-128, 128, (1, 16)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(path), "--input-shape", "audio:1,16", "--input",
                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), "--check"]) == 0
    assert "check: bit-exact" in capsys.readouterr().out
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(y.reshape(-1), np.maximum(x, 2).reshape(-1))
    assert main(["inspect", str(path), "--input-shape", "audio:1,16"]) == 0
    assert "input: audio [1, 16] int8" in capsys.readouterr().out


def test_an_open_length_is_a_warning(tmp_path, capsys, monkeypatch):
    import edge_sdk.api as api

    monkeypatch.setattr(api, "_WARNED_OPEN", set())
    path = open_length_model(tmp_path / "audio.tflite")
    assert main(["compile", str(path), "-o", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: input 'audio' has open dimensions [1, -1]: compiled for the "
                     "shape the model file stores, [1, 1] (choose another with --input-shape "
                     "audio:...)") == 1


@pytest.mark.parametrize(("given", "says"), [
    ("audio:2,16", "does not fit the input's shape [1, -1]"),
    ("speech:1,16", "the model's inputs are audio"),
    ("audio:1,x", "takes NAME:D1,D2,..."),
    ("audio", "takes NAME:D1,D2,..."),
])
def test_a_wrong_input_shape_is_one_line(tmp_path, capsys, given, says):
    path = open_length_model(tmp_path / "audio.tflite")
    assert main(["compile", str(path), "--input-shape", given, "-o", str(tmp_path / "c")]) == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err
