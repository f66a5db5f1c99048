"""Broken models against LiteRT: nothing LiteRT rejects is compiled, nothing ends in a traceback.

The mutants (``tests/mutants.py``) rewrite one field of a real model each: tensor indices,
shapes, types, buffers, scales, zero points, opcode indices and operator options, plus byte
flips outside the weights. ``benchmarks/robustness.py`` runs thousands and prints the table.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import reference, shared_model
from mutants import litert_verdict, mutants, sites

import edge_sdk
from edge_sdk.errors import EdgeSDKError, ModelError
from edge_sdk.frontend.tflite import parse
from edge_sdk.pipeline import compile_graph


def ours(raw: bytes) -> str | None:
    """None when edge-sdk loads and compiles ``raw``, else its one-line refusal. Anything but
    an EdgeSDKError propagates and fails the test."""
    try:
        compile_graph(parse(raw, name="mutant"))
    except EdgeSDKError as err:
        assert "\n" not in str(err), f"a refusal of several lines: {err}"
        return str(err)
    return None


def sweep(name: str, count: int, seed: int, capsys) -> dict[str, int]:
    path = shared_model(name)
    raw = path.read_bytes()
    graph = edge_sdk.load(path)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(1, *shape[1:]), dtype=np.int8)
    counts = {"both refuse": 0, "both accept": 0, "we refuse, LiteRT runs": 0}
    compiled_rejected = []
    for m in mutants(raw, count, seed=seed):
        verdict = litert_verdict(m.raw, [x])
        try:
            refusal = ours(m.raw)
        except Exception as err:
            pytest.fail(f"{m.what}: {type(err).__name__} escaped: {err}")
        if refusal is None and not verdict.accepted:
            compiled_rejected.append(f"{m.what} (LiteRT: {verdict.error})")
        elif refusal is None:
            counts["both accept"] += 1
        else:
            counts["both refuse" if not verdict.accepted else "we refuse, LiteRT runs"] += 1
    with capsys.disabled():
        print(f"\n{name}: {count} mutants: {counts}, compiled but LiteRT rejects: "
              f"{len(compiled_rejected)}")
    assert not compiled_rejected, "; ".join(compiled_rejected)
    return counts


def test_no_mutant_litert_rejects_is_compiled(capsys):
    counts = sweep("kws_ref_model", 200, 0, capsys)
    assert counts["both refuse"] > 10 and counts["both accept"] > 10  # the sweep bites


@pytest.mark.slow
def test_no_mutant_of_a_larger_model_litert_rejects_is_compiled(capsys):
    sweep("vww_96_int8", 400, 1, capsys)


def _mutate(raw: bytes, what: str, value) -> bytes:
    site = next(s for s in sites(raw) if s.what == what)
    buf = bytearray(raw)
    struct.pack_into(site.fmt, buf, site.pos, value)
    return bytes(buf)


@pytest.fixture(scope="module")
def kws() -> tuple[bytes, dict[str, int]]:
    path = shared_model("kws_ref_model")
    graph = edge_sdk.load(path)
    first = {}
    for op in graph.operators:
        first.setdefault(op.opcode, op.index)
    return path.read_bytes(), first


@pytest.mark.parametrize("field, value, message", [
    # the cases: a negative index silently meant "from the end"
    ("operator {SOFTMAX} input 0", -1, "-1 means absent"),
    ("operator {DEPTHWISE_CONV_2D} input 2", -2, "refers to tensor -2"),
    ("operator {FULLY_CONNECTED} input 0", -2, "refers to tensor -2"),
    # LiteRT's convolutions take no absent bias ("was optional but was expected"); found by
    # benchmarks/robustness.py at 1,600 mutants per model
    ("operator {CONV_2D} input 2", -1, "need their bias tensor"),
    ("operator {DEPTHWISE_CONV_2D} input 2", -1, "need their bias tensor"),
    ("operator {FULLY_CONNECTED} input 1", 10_000, "refers to tensor 10000"),
    ("graph input 0", 10_000, "graph input refers to tensor 10000"),
    ("operator {CONV_2D} Conv2DOptions.StrideW", 0, "stride"),
    ("operator {CONV_2D} Conv2DOptions.FusedActivationFunction", 5, "SIGN_BIT"),
    ("operator {CONV_2D} Conv2DOptions.FusedActivationFunction", 100, "UNKNOWN(100)"),
    ("operator {SOFTMAX} opcode index", 1000, "operator code 1000"),
    ("tensor 0 scale 0", float("nan"), "scale nan"),
    ("tensor 0 scale 0", 0.0, "scale 0.0"),
    ("tensor 0 zero point 0", 300, "zero point 300"),
])
def test_broken_field_is_refused_by_name(kws, field, value, message):
    raw, first = kws
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(_mutate(raw, field.format(**first), value), name="mutant")


def test_optional_bias_may_be_absent(kws, tmp_path):
    """-1 where TFLite allows it (a fully connected layer's bias) still compiles, and runs
    like LiteRT."""
    raw, first = kws
    mutant = _mutate(raw, f"operator {first['FULLY_CONNECTED']} input 2", -1)
    graph = parse(mutant, name="nobias")
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8)
    got = edge_sdk.run(graph, board="host", inputs=x, workdir=tmp_path / "run").outputs
    np.testing.assert_array_equal(got.reshape(1, -1), reference(mutant, x[None])[0])


def test_truncated_and_scrambled_files_are_one_line(kws):
    raw, _ = kws
    for cut in (9, 100, len(raw) // 3, len(raw) - 5):
        with pytest.raises(ModelError, match=r"corrupt|not a valid"):
            parse(raw[:cut], name="cut")


@pytest.mark.parametrize("model, position, flip, where", [
    ("kws_ref_model", 264, 0x8F, "Buffer"),                 # a vector at an odd address
    ("vww_96_int8", 245820, 0x3F, "QuantizationParameters"),  # a misaligned field
])
def test_misaligned_flatbuffer_parts_are_refused_as_litert_does(model, position, flip, where):
    """Two byte flips that the verifier let through at 1,600 mutants per model: everything
    lay inside the file, but not at the alignment flatbuffers' own verifier demands."""
    buf = bytearray(shared_model(model).read_bytes())
    buf[position] ^= flip
    graph = edge_sdk.load(shared_model(model))
    x = np.zeros((1, *graph.tensor(graph.inputs[0]).shape[1:]), np.int8)
    assert not litert_verdict(bytes(buf), [x]).accepted
    with pytest.raises(ModelError, match=rf"corrupt or truncated: .*{where}.* is misaligned"):
        parse(bytes(buf), name="mutant")


def input_for(raw: bytes, x: np.ndarray) -> np.ndarray | None:
    """``x``, or random data of the shape the mutant declares for its input when that is
    another small, fully known shape; None when it declares a shape too large to feed (the
    model may be valid: onnxruntime's refusal would then be about our input, not the model)."""
    import onnx

    try:
        dims = [d.dim_value for d in onnx.load_from_string(raw).graph.input[0].type
                .tensor_type.shape.dim]
    except Exception:
        return x
    if dims and all(0 < d <= 64 for d in dims) and tuple(dims) != x.shape:
        return np.random.default_rng(2).normal(0, 1, dims).astype(np.float32)
    if dims and all(d > 0 for d in dims) and tuple(dims) != x.shape:
        return None
    return x


def test_onnx_mutants_are_refused_where_onnxruntime_refuses_them(capsys, tmp_path):
    """ONNX at the protobuf level (tests/onnx_mutants.py), onnxruntime as the second opinion:
    nothing it refuses is compiled, nothing escapes as a traceback, and a mutant both accept
    runs on the host with onnxruntime's outputs (the float rule of --check)."""
    from onnx_mutants import onnx_mutants, ort_verdict, sample_model

    from edge_sdk.validate import compare

    base = sample_model()
    x = np.random.default_rng(1).normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    counts = {"both refuse": 0, "both accept": 0, "we refuse, onnxruntime runs": 0}
    compiled_refused, wrong, ran = [], [], 0
    for k, m in enumerate(onnx_mutants(base, 60, seed=3)):
        path = tmp_path / f"m{k}.onnx"
        path.write_bytes(m.raw)
        feed = input_for(m.raw, x)  # a mutant with another (valid) input shape gets that shape
        if feed is None:
            continue  # an input too large to feed: no second opinion to compare with
        verdict = ort_verdict(m.raw, [feed])
        try:
            graph = edge_sdk.load(path)
            compiled = edge_sdk.compile(graph)
        except EdgeSDKError as err:
            assert "\n" not in str(err), f"{m.what}: a refusal of several lines: {err}"
            counts["both refuse" if not verdict.accepted else "we refuse, onnxruntime runs"] += 1
            continue
        except Exception as err:
            pytest.fail(f"{m.what}: {type(err).__name__} escaped: {err}")
        if not verdict.accepted:
            compiled_refused.append(f"{m.what} (onnxruntime: {verdict.error})")
            continue
        counts["both accept"] += 1
        if ran < 6 and compiled is not None:
            ran += 1
            got = edge_sdk.run(graph, board="host", inputs=feed).output_list
            for g, want in zip(got, verdict.outputs, strict=True):
                if not compare(g, want[None], rtol=1e-4)["match"]:
                    wrong.append(m.what)
    with capsys.disabled():
        print(f"\nONNX sample: 60 mutants: {counts}, compiled but onnxruntime refuses: "
              f"{len(compiled_refused)}, ran {ran}, wrong {len(wrong)}")
    assert not compiled_refused, "; ".join(compiled_refused)
    assert not wrong, wrong
