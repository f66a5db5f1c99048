"""The command line, end to end on the host board: the files it writes and what they hold."""

from __future__ import annotations

import json

import numpy as np

from edge_sdk.cli import main
from tests.conftest import reference, shared_model


def test_compile_writes_sources_and_report(tmp_path, capsys):
    model = shared_model("kws_ref_model")
    out = tmp_path / "kws"
    assert main(["compile", str(model), "--board", "mps2-an386", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["kws_ref_model.c", "kws_ref_model.h",
                                                      "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["board"] == "mps2-an386" and report["arena_bytes"] == 16000
    assert len(report["layers"]) == 13
    layer = report["layers"][0]
    assert {"name", "op", "macs", "arena_offset", "arena_size"} <= set(layer)
    assert layer["op"] == "CONV_2D" and layer["macs"] > 0
    # No temporary directories are left beside the output.
    assert [p.name for p in tmp_path.iterdir()] == ["kws"]


def test_compile_for_a_pi_writes_an_llvm_object(tmp_path, capsys):
    out = tmp_path / "pi"
    assert main(["compile", str(shared_model("ad01_int8")), "--board", "rpi5", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ad01_int8.c", "ad01_int8.h", "kernels.o",
                                                      "report.json"]
    assert (out / "kernels.o").read_bytes()[:4] == b"\x7fELF"
    assert "kernels.o" in (out / "ad01_int8.c").read_text()


def test_run_host_writes_output_and_report(tmp_path, capsys):
    model = shared_model("ad01_int8")
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 640), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    y, rep = tmp_path / "y.npy", tmp_path / "report.json"
    assert main(["run", str(model), "--board", "host", "--input", str(tmp_path / "x.npy"),
                 "--output", str(y), "--report", str(rep)]) == 0
    got = np.load(y)
    assert got.shape == (1, 640) and got.dtype == np.int8
    np.testing.assert_array_equal(got, reference(model, x[None])[0])
    report = json.loads(rep.read_text())
    assert report["timer"]["kind"] == "nanoseconds" and report["flash_bytes"] > 270_000
    assert "ad01_int8 on host" in capsys.readouterr().out


def test_inspect_names_unsupported_and_float(tmp_path, capsys):
    model = shared_model("kws_ref_model_float32")
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "not full-int8" in out and "cannot compile" in out and "edge-sdk quantize" in out


def test_boards_lists_qemu_boards(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("mps2-an386", "mps2-an500", "mps3-an547", "stm32f746g-disco"):
        assert name in out
