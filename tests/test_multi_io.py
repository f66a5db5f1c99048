"""Models with several inputs and outputs, end to end against LiteRT's reference kernels.

The graph: two int8 inputs of different shapes and quantization; ADD with broadcasting of
both, SUB, and a pooled branch. Three outputs, one of them a graph output that later layers
also read, one of odd size (so the packed layout pads before the next tensor).
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.errors import UsageError
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, build_model
from tests.test_ops import act


def two_in_three_out() -> bytes:
    tensors = [
        act("image", (1, 4, 4, 3), 0.05, 3),       # 0: input 0
        act("bias_row", (1, 1, 4, 3), 0.13, -20),  # 1: input 1 (broadcast along H)
        act("sum", (1, 4, 4, 3), 0.11, -4),        # 2: output 0, also read by SUB and the pool
        act("diff", (1, 4, 4, 3), 0.07, 9),        # 3: output 2
        act("pooled", (1, 1, 1, 3), 0.11, -4),     # 4: output 1 (3 bytes: padding follows)
    ]
    ops = [OpSpec("ADD", [0, 1], [2], {"activation": "NONE"}),
           OpSpec("SUB", [2, 0], [3], {"activation": "RELU"}),
           OpSpec("AVERAGE_POOL_2D", [2], [4], {"filter": (4, 4), "stride": (1, 1)})]
    return build_model(tensors, ops, [0, 1], [2, 4, 3])


def litert(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    outs: list[list[np.ndarray]] = [[] for _ in it.get_output_details()]
    for k in range(len(inputs[0])):
        for d, x in zip(it.get_input_details(), inputs, strict=True):
            it.set_tensor(d["index"], x[k].reshape(d["shape"]))
        it.invoke()
        for o, d in zip(outs, it.get_output_details(), strict=True):
            o.append(it.get_tensor(d["index"]).copy())
    return [np.stack(o) for o in outs]


def sample_inputs(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(-128, 128, size=(n, 1, 4, 4, 3), dtype=np.int8),
            rng.integers(-128, 128, size=(n, 1, 1, 4, 3), dtype=np.int8)]


def test_generated_api_takes_one_pointer_per_tensor():
    compiled = edge_sdk.compile(parse(two_in_three_out(), name="multi"))
    header = compiled.sources.header
    assert ("int multi_run(const int8_t *input_0, const int8_t *input_1, int8_t *output_0, "
            "int8_t *output_1, int8_t *output_2, uint8_t *arena);") in header
    assert "#define MULTI_NUM_INPUTS 2" in header and "#define MULTI_NUM_OUTPUTS 3" in header
    # output 1 has 3 bytes: output 2 starts at the next 16-byte boundary after it
    assert "#define MULTI_OUTPUT_1_OFFSET 48" in header
    assert "#define MULTI_OUTPUT_2_OFFSET 64" in header
    assert "#define MULTI_OUTPUTS_BYTES 112" in header
    assert "#define MULTI_INPUT_SIZE" not in header  # no unnumbered names when there are several


def test_host_matches_reference_on_every_output():
    model = two_in_three_out()
    x = sample_inputs()
    expected = litert(model, x)
    result = edge_sdk.run(parse(model, name="multi"), board="host", inputs=x)
    assert len(result.output_list) == 3 and isinstance(result.outputs, tuple)
    for got, want in zip(result.output_list, expected, strict=True):
        np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_inputs_by_key_and_float_data():
    """A mapping keyed input_0/input_1 (what an .npz holds), float data quantized per input."""
    model = two_in_three_out()
    graph = parse(model, name="multi")
    x = sample_inputs(2)
    floats = {"input_1": (x[1].astype(np.float32) + 20) * 0.13,
              "input_0": (x[0].astype(np.float32) - 3) * 0.05}
    got = edge_sdk.run(graph, board="host", inputs=floats).output_list
    for g, w in zip(got, litert(model, x), strict=True):
        np.testing.assert_array_equal(g.reshape(w.shape), w)
    with pytest.raises(UsageError, match="input_1"):
        edge_sdk.run(graph, board="host", inputs={"input_0": x[0]})
    with pytest.raises(UsageError, match="2 inputs"):
        edge_sdk.run(graph, board="host", inputs=x[0])


def test_cli_npz_in_npz_out_and_check(tmp_path, capsys):
    model_path = tmp_path / "multi.tflite"
    model_path.write_bytes(two_in_three_out())
    x = sample_inputs(3)
    np.savez(tmp_path / "x.npz", input_0=x[0], input_1=x[1])
    out = tmp_path / "y.npz"
    assert main(["run", str(model_path), "--input", str(tmp_path / "x.npz"), "--output",
                 str(out), "--check"]) == 0
    assert "check: bit-exact" in capsys.readouterr().out
    with np.load(out) as y:
        assert sorted(y.files) == ["output_0", "output_1", "output_2"]
        for k, want in enumerate(litert(model_path.read_bytes(), x)):
            np.testing.assert_array_equal(y[f"output_{k}"].reshape(want.shape), want)
    # several outputs cannot go to one .npy: refused before any work, nothing written
    assert main(["run", str(model_path), "--output", str(tmp_path / "y.npy")]) != 0
    assert ".npz" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an386"])
def test_board_matches_reference(board):
    model = two_in_three_out()
    x = sample_inputs(2)
    result = edge_sdk.run(parse(model, name="multi"), board=board, inputs=x)
    for got, want in zip(result.output_list, litert(model, x), strict=True):
        np.testing.assert_array_equal(got.reshape(want.shape), want)
