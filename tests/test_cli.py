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


def test_run_check_passes_against_the_reference(tmp_path, capsys):
    """--check runs LiteRT's reference kernels on the same inputs and says bit-exact."""
    model = shared_model("ad01_int8")
    report = tmp_path / "r.json"
    assert main(["run", str(model), "--check", "--report", str(report)]) == 0
    assert "check: bit-exact against LiteRT BUILTIN_REF (640 output values)" in \
        capsys.readouterr().out
    check = json.loads(report.read_text())["check"]
    assert check["match"] and check["differing"] == 0 and check["elements"] == 640


def test_check_compare_rules():
    from edge_sdk.validate import compare

    ints = np.array([[1, 2, 3]], np.int8)
    assert compare(ints, ints)["match"]
    off = compare(np.array([[1, 2, 4]], np.int8), ints)
    assert not off["match"] and off["differing"] == 1 and off["max_abs_error"] == 1.0
    floats = np.array([1.0, -2.0, 1e-3], np.float32)
    assert compare(floats * (1 + 5e-6), floats)["match"]
    loose = compare(floats * (1 + 5e-5), floats)
    assert not loose["match"] and loose["max_rel_error"] > 1e-5


def test_run_check_failure_exits_7_and_keeps_outputs(tmp_path, capsys, monkeypatch):
    """A reference that disagrees (here: the oracle's outputs plus one) fails the command with
    exit code 7 and one line, and the outputs are still written."""
    import edge_sdk.validate as validate

    real = validate.reference_outputs
    monkeypatch.setattr(validate, "reference_outputs",
                        lambda m, b, *shapes: [
                            (r.astype(np.int16) + 1).clip(-128, 127).astype(np.int8)
                            for r in real(m, b, *shapes)])
    out = tmp_path / "y.npy"
    assert main(["run", str(shared_model("kws_ref_model")), "--check", "--output", str(out)]) == 7
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "check failed:" in err and "of 12 output values" in err
    assert np.load(out).shape == (1, 12)


def test_readme_operator_table_is_the_generated_one(capsys):
    """`edge-sdk ops` prints the table from the registries; the README holds the same text."""
    from tests.conftest import ROOT

    assert main(["ops"]) == 0
    printed = capsys.readouterr().out.strip()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- ops-table:start -->") + len("<!-- ops-table:start -->")
    assert readme[start:readme.index("<!-- ops-table:end -->")].strip() == printed
    assert "| CONV_2D | yes | yes | yes | yes | yes |" in printed


def test_shipped_operator_table_matches_the_registries():
    """`edge-sdk ops` reads data/operators.json (no TVM import); it must say what the compiler's
    registries say (`python -m edge_sdk.support` writes it again)."""
    from edge_sdk.support import operator_rows, registry_rows

    assert operator_rows() == registry_rows()


def test_run_verbose_shows_the_inference_and_the_check(capsys):
    assert main(["-v", "run", str(shared_model("ad01_int8")), "--board", "host", "--check"]) == 0
    err = capsys.readouterr().err
    for step in ("compiling ad01_int8 for host", "building the firmware for host",
                 "running 1 inference(s) on host", "checking the outputs against"):
        assert f"edge-sdk: {step}" in err, f"-v did not show '{step}'"


def test_a_crashing_reference_interpreter_is_one_line_and_keeps_the_outputs(tmp_path, capsys):
    """LiteRT's reference SOFTMAX aborts the process on a 1000-class int8 input that is flat
    (checked first in a child, as a fact about today's LiteRT). In the CLI's own process that
    was exit 134, no message, outputs lost; now the oracle runs in a child: one line, exit 8,
    outputs and report written."""
    import subprocess
    import sys

    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

    model = tmp_path / "softmax1000.tflite"
    model.write_bytes(build_model(
        [TensorSpec("input", (1, 1000), "int8", (0.1,), (0,)),
         TensorSpec("output", (1, 1000), "int8", (1 / 256,), (-128,))],
        [OpSpec("SOFTMAX", [0], [1], {"beta": 1.0})], [0], [1]))
    flat = np.full((1, 1000), 5, np.int8)
    np.save(tmp_path / "x.npy", flat)
    litert = subprocess.run([sys.executable, "-c", (
        "import sys, numpy as np\n"
        "from edge_sdk.validate import reference_outputs\n"
        "reference_outputs(__import__('pathlib').Path(sys.argv[1]), [np.load(sys.argv[2])])\n"),
        str(model), str(tmp_path / "x.npy")], capture_output=True)
    assert litert.returncode < 0 or litert.returncode == 134, litert.returncode

    out, report = tmp_path / "y.npy", tmp_path / "r.json"
    assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--check",
                 "--output", str(out), "--report", str(report)]) == 8
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "the reference interpreter crashed on this model: outputs written, not checked" in err
    y = np.load(out)
    assert y.shape == (1, 1000) and len(np.unique(y)) == 1  # flat in, flat out
    check = json.loads(report.read_text())["check"]
    assert check["match"] is None and "crashed" in check["error"]


def test_api_and_cli_give_one_sample_the_same_shape(tmp_path):
    """The API's result.outputs was (1, 1, 12) for one KWS sample where --output wrote (1, 12);
    both are now the model's output shape for one sample, and (N, 12) for N samples."""
    import edge_sdk

    model = shared_model("kws_ref_model")
    rng = np.random.default_rng(2)
    one = rng.integers(-128, 128, (1, 49, 10, 1), dtype=np.int8)
    three = rng.integers(-128, 128, (3, 49, 10, 1), dtype=np.int8)
    for x, shape in ((one, (1, 12)), (one[0], (1, 12)), (three, (3, 12))):
        api = edge_sdk.run(model, board="host", inputs=x).outputs
        np.save(tmp_path / "x.npy", x)
        assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--output",
                     str(tmp_path / "y.npy")]) == 0
        cli = np.load(tmp_path / "y.npy")
        assert api.shape == cli.shape == shape, (x.shape, api.shape, cli.shape)
        np.testing.assert_array_equal(api, cli)
