"""``edge-sdk validate``: every layer's output, read back from the board over the protocol,
against LiteRT with all intermediate tensors kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_sdk import api
from edge_sdk.cli import main
from tests.conftest import shared_model


def test_every_layer_of_kws_matches_on_the_host(tmp_path, capsys):
    report = tmp_path / "validate.json"
    assert main(["validate", str(shared_model("kws_ref_model")), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "every layer matches (13 layers" in out
    rep = json.loads(report.read_text())
    assert rep["match"] and rep["first_divergence"] is None
    assert [r["op"] for r in rep["layers"]][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert all(r["elements"] > 0 and r["differing"] == 0 for r in rep["layers"])
    assert rep["layers"][0]["elements"] == 8000  # 25x5x64: the first layer's whole output


def test_first_differing_layer_is_named_and_exits_7(tmp_path, capsys, monkeypatch):
    """An oracle disagreeing from layer 4 on (its values plus one): the table marks layers 4+,
    the one-line error names layer 4, the exit code is 7 and --report keeps the details."""
    import edge_sdk.validate as validate

    real = validate.reference_tensors

    def perturbed(model, inputs, tensors, **kw):
        values = real(model, inputs, tensors, **kw)
        return [v if k < 4 else (v.astype(np.int16) + 1).clip(-128, 127).astype(v.dtype)
                for k, v in enumerate(values)]

    monkeypatch.setattr(validate, "reference_tensors", perturbed)
    report = tmp_path / "validate.json"
    assert main(["validate", str(shared_model("kws_ref_model")), "--report", str(report)]) == 7
    captured = capsys.readouterr()
    assert captured.out.count("<- differs") >= 1
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "layer 4 (CONV_2D" in err
    rep = json.loads(report.read_text())
    assert rep["first_divergence"]["step"] == 4 and not rep["match"]
    assert all(r["match"] for r in rep["layers"][:4])


def test_float_model_layers_within_tolerance():
    rep = api.validate(shared_model("ad01_fp32"), board="host")
    assert rep["match"], rep["first_divergence"]
    assert all("max_rel_error" in r for r in rep["layers"])


@pytest.mark.slow
def test_every_layer_matches_on_cortex_m4():
    rep = api.validate(shared_model("kws_ref_model"), board="mps2-an386")
    assert rep["match"], rep["first_divergence"]
    assert len(rep["layers"]) == 13


def test_a_stateful_model_is_validated_layer_by_layer():
    """An int8 LSTM keeps state between inferences: validate zeroes the board's arena (the
    protocol's RESET) before each partial run, and LiteRT's variables before each sample, so
    every layer of every sample starts from the same zero state on both sides."""
    import numpy as np

    from tests.test_real_models import real

    model = real("tflm/trained_lstm_int8.tflite")
    x = np.random.default_rng(4).integers(-128, 128, (2, 1, 28, 28), dtype=np.int8)
    rep = api.validate(model, board="host", inputs=x)
    assert rep["first_divergence"] is None, rep
    assert rep["layers"][0]["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert all(row["match"] for row in rep["layers"]) and rep["samples"] == 2
