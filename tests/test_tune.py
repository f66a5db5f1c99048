"""`edge-sdk tune`: layer benchmarks built for the board, run where the model runs (here, or on
the loopback sshd under qemu-user), records kept and resumed, and `--tuning` changing the
kernels' layout but never their outputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import edge_sdk
from edge_sdk.api import compile_for
from edge_sdk.cli import main
from edge_sdk.compiler.kernels.schedule import Tuning, layer_key
from edge_sdk.errors import EdgeSDKError
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, build_model
from edge_sdk.project.boards import get_board
from tests import sshd as sshd_mod
from tests.conftest import random_inputs, reference
from tests.test_ops import act, bias, weights


def tiny_model() -> bytes:
    """conv 3x3 (SAME) -> depthwise 3x3 -> FC: one layer of each tunable kind."""
    tensors = [act("x", (1, 6, 7, 5), 0.05, 3),
               weights("w1", (24, 3, 3, 5), [0.01] * 24), bias("b1", 24, 0.05, [0.01] * 24),
               act("c1", (1, 6, 7, 24), 0.1, -5),
               weights("w2", (1, 3, 3, 24), [0.02] * 24, axis=3),
               bias("b2", 24, 0.1, [0.02] * 24), act("c2", (1, 6, 7, 24), 0.12, 2),
               weights("w3", (10, 1008), [0.004]), bias("b3", 10, 0.12, [0.004]),
               act("y", (1, 10), 0.3, -1)]
    ops = [OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": "SAME", "activation": "RELU"}),
           OpSpec("DEPTHWISE_CONV_2D", [3, 4, 5], [6], {"padding": "SAME",
                                                        "depth_multiplier": 1}),
           OpSpec("FULLY_CONNECTED", [6, 7, 8], [9])]
    return build_model(tensors, ops, [0], [9])


def test_tune_here_records_every_layer_and_resumes(tmp_path, capsys):
    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_model())
    out = tmp_path / "tuning.json"
    assert main(["-v", "tune", str(model), "--board", "linux-x86_64", "--trials", "4",
                 "--runs", "3", "-o", str(out)]) == 0
    said = capsys.readouterr()
    assert "3 layer(s) tuned for linux-x86_64" in said.out
    # -v: a line before and after each layer, not minutes of silence.
    for k in (1, 2, 3):
        assert f"layer {k}/3: " in said.err and f"layer {k}/3: fastest" in said.err
    data = json.loads(out.read_text())
    assert data["isa"] == edge_sdk.api.cpu_isa(get_board("linux-x86_64").llvm_target)
    for record in data["records"].values():
        assert 1 <= len(record["timings_ns"]) <= 4
        assert record["best_ns"] == min(record["timings_ns"].values()) > 0
    before = out.read_text()
    # Resumed: every layer is already there, nothing is measured again.
    tuning = edge_sdk.api.tune(str(model), "linux-x86_64", out, trials=4, runs=3)
    assert out.read_text() == before and len(tuning.records) == 3


def test_tuned_schedules_change_the_layout_not_the_outputs(tmp_path):
    model = tiny_model()
    graph = parse(model, name="tiny")
    board = get_board("linux-x86_64")
    isa = edge_sdk.api.cpu_isa(board.llvm_target)
    conv, _, fc = graph.operators
    tuning = Tuning({layer_key(conv, graph, isa): {"schedule": {"lanes": 8, "pixels": 6,
                                                                "blocks": 4}},
                     layer_key(fc, graph, isa): {"schedule": {"lanes": 8, "pixels": 4,
                                                              "blocks": 1}}},
                    board.name, isa)
    path = tmp_path / "tuning.json"
    path.write_text(tuning.to_json())
    compiled = compile_for(graph, board, tuning=path)
    notes = [s.notes for s in compiled.program.steps]
    assert "8 channels x 6 pixels" in notes[0] and "1 blocks per tile" in notes[2]
    x = random_inputs((1, 6, 7, 5), 3, seed=8)
    result = edge_sdk.run(graph, board="linux-x86_64", inputs=x, tuning=path)
    np.testing.assert_array_equal(result.outputs, reference(model, x))


def test_bad_tuning_input_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_model())
    assert main(["compile", str(model), "--board", "linux-x86_64", "--tuning", str(bad),
                 "-o", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an edge-sdk tuning file" in err[0]
    assert not (tmp_path / "out").exists()
    with pytest.raises(EdgeSDKError, match="Linux boards"):
        edge_sdk.api.tune(str(model), "mps2-an386", tmp_path / "t.json")


@pytest.mark.slow
def test_tune_over_ssh_on_an_aarch64_board(tmp_path):
    """The benchmark is uploaded to the board and run there (qemu-user stands in for the
    Pi's CPU: the timings are meaningless, the path is the real one)."""
    if shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu-aarch64-static is not installed (./setup.sh installs it)")
    try:
        server = sshd_mod.start(tmp_path / "sshd")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    content = tiny_model()  # random weights: one draw for the file and the reference
    try:
        model = tmp_path / "tiny.tflite"
        model.write_bytes(content)
        out = tmp_path / "rpi5.json"
        tuning = edge_sdk.api.tune(str(model), "rpi5", out, host=server.host, port=server.port,
                                   identity=server.identity, known_hosts=server.known_hosts,
                                   run_prefix=["qemu-aarch64-static", "-cpu", "max"],
                                   remote_dir=str(tmp_path / "remote"), trials=3, runs=2)
    finally:
        server.stop()
    assert tuning.isa == "cpu-dotprod" and len(tuning.records) == 3
    x = random_inputs((1, 6, 7, 5), 2, seed=9)
    result = edge_sdk.run(str(model), board="rpi5", inputs=x, tuning=out)
    np.testing.assert_array_equal(result.outputs, reference(content, x))
