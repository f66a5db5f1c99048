"""edge-sdk as an installed package: the wheel carries its boards, templates and firmware and
works from any folder; the light commands answer without importing TVM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, shared_model

# The child runs the CLI in-process and reports whether TVM was imported along the way.
PROBE = """
import sys
from edge_sdk.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exit:
    rc = exit.code
print("TVM-IMPORTED" if "tvm" in sys.modules else "NO-TVM", rc, file=sys.stderr)
"""


def _probe(*argv: str, cwd: Path | None = None) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          timeout=120, cwd=cwd)
    verdict, rc = done.stderr.strip().splitlines()[-1].split()
    return verdict, int(rc)


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["run", "--help"], ["boards"],
                                  ["boards", "--json"], ["ops"]])
def test_light_commands_do_not_import_tvm(argv):
    verdict, rc = _probe(*argv)
    assert rc == 0
    assert verdict == "NO-TVM", f"edge-sdk {' '.join(argv)} imported TVM"


def test_monitor_does_not_import_tvm():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def talk() -> None:
        conn, _ = server.accept()
        conn.sendall(b"hello from the board\n")
        done.wait(10)  # the board stays connected until the monitor has stopped
        conn.close()

    done = threading.Event()

    threading.Thread(target=talk, daemon=True).start()
    try:
        verdict, rc = _probe("monitor", "--port", f"socket://127.0.0.1:{port}", "--seconds",
                             "0.5")
    finally:
        done.set()
        server.close()
    assert (verdict, rc) == ("NO-TVM", 0)


def test_flash_dry_run_does_not_import_tvm(tmp_path):
    from edge_sdk.cli import main

    project = tmp_path / "proj"
    assert main(["generate", str(shared_model("ad01_int8")), "--board", "mps2-an386",
                 "-o", str(project)]) == 0
    verdict, rc = _probe("flash", str(project), "--dry-run")
    assert (verdict, rc) == ("NO-TVM", 0)


def test_lazy_names_survive_their_modules_being_imported():
    """CI caught ``edge_sdk.quantize(...)`` failing with "'module' object is not callable" once
    something had imported the quantize package (its name then shadowed the function), and
    ``edge_sdk.api`` missing after a bare ``import edge_sdk``."""
    code = ("import edge_sdk, edge_sdk.quantization, edge_sdk.cli\n"
            "assert edge_sdk.quantize.__name__ == 'quantize' and callable(edge_sdk.quantize)\n"
            "assert edge_sdk.api.compile_for and edge_sdk.compiler.lower.supported_ops\n"
            "assert edge_sdk.pipeline.compile_graph.__name__ == 'compile_graph'\n"
            "assert edge_sdk.compile.__name__ == 'compile' and callable(edge_sdk.compile)\n"
            "try:\n    edge_sdk.no_such_name\nexcept AttributeError:\n    pass\n"
            "else:\n    raise SystemExit('no AttributeError')\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_board_files_is_an_error(tmp_path, monkeypatch, capsys):
    """An install without its data says so, instead of listing no boards with exit 0."""
    from edge_sdk.cli import main
    from edge_sdk.project import boards

    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    boards.all_boards.cache_clear()
    try:
        assert main(["boards"]) == 3
        assert "installation is incomplete" in capsys.readouterr().err
    finally:
        boards.all_boards.cache_clear()


def _wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--disable-pip-version-check", str(ROOT), "-w", str(out)],
                   check=True, capture_output=True, timeout=600, cwd=out)
    (wheel,) = out.glob("edge_sdk-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_works_outside_the_checkout(tmp_path):
    """Build the wheel, install it (not editable) into a fresh venv, and from a folder outside
    the checkout compile, generate, run on the host with --check and on QEMU."""
    wheel = _wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("edge_sdk/data/boards/mps2-an386.yaml", "edge_sdk/data/templates/baremetal/",
                 "edge_sdk/data/firmware/common/", "edge_sdk/data/operators.json"):
        assert any(n.startswith(part) for n in names), f"the wheel lacks {part}"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=1200,
                   capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    cli = str(venv / "bin" / "edge-sdk")
    model = str(shared_model("kws_ref_model"))

    def edge(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([cli, *argv], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import edge_sdk; print(edge_sdk.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where  # the installed copy, not the checkout
    done = edge("boards")
    assert done.returncode == 0 and "mps2-an386" in done.stdout
    done = edge("compile", model, "--board", "mps2-an386", "-o", "kws")
    assert done.returncode == 0, done.stderr
    assert (work / "kws" / "kws_ref_model.c").is_file()
    done = edge("generate", model, "--board", "mps2-an386", "-o", "proj")
    assert done.returncode == 0, done.stderr
    assert (work / "proj" / "Makefile").is_file()
    done = edge("run", model, "--board", "host", "--check", "--output", "y.npy")
    assert done.returncode == 0, done.stderr
    assert "bit-exact" in done.stdout
    done = edge("run", model, "--board", "mps2-an386", "--output", "y_m4.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(work / "y.npy"), np.load(work / "y_m4.npy"))
