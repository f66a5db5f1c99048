"""`edge-sdk deploy` against a real sshd on loopback; binaries run under qemu-user through the
board's run prefix (on a real Pi the same code path runs without it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.errors import DeviceError
from tests import sshd as sshd_mod
from tests.conftest import MLPERF_INT8, random_inputs, reference, shared_model

QEMU = {"aarch64": "qemu-aarch64-static", "armv7": "qemu-arm-static"}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    try:
        server = sshd_mod.start(tmp_path_factory.mktemp("sshd"))
    except FileNotFoundError as err:
        pytest.skip(str(err))
    yield server
    server.stop()


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (./setup.sh installs it)")


def deploy(sshd, model, board, tmp_path, **kw):
    arch = edge_sdk.api.get_board(board).linux["arch"]
    need(QEMU[arch])
    kw.setdefault("run_prefix", [QEMU[arch]])
    return edge_sdk.api.deploy(model, board, sshd.host, port=sshd.port, identity=sshd.identity,
                               known_hosts=sshd.known_hosts,
                               remote_dir=str(tmp_path / "remote"), **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name", MLPERF_INT8)
def test_mlperf_models_bit_exact_on_aarch64(sshd, tmp_path, name):
    path = shared_model(name)
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 3, seed=21)
    result = deploy(sshd, graph, "rpi4", tmp_path, inputs=x)
    expected = reference(path, x)
    np.testing.assert_array_equal(result.outputs.reshape(expected.shape), expected)


@pytest.mark.slow
def test_float_mobilenet_on_aarch64_within_1e5(sshd, tmp_path):
    """A MobileNet-class float model (VWW) through TVM's LLVM backend on aarch64."""
    path = shared_model("vww_96_float")
    x = np.random.default_rng(8).uniform(0, 1, (2, 1, 96, 96, 3)).astype(np.float32)
    result = deploy(sshd, path, "rpi4", tmp_path, inputs=x)
    expected = reference(path, x)
    np.testing.assert_allclose(result.outputs.reshape(expected.shape), expected, rtol=1e-5,
                               atol=1e-7)


@pytest.mark.slow
def test_onnx_export_deploys_to_a_pi(sshd, tmp_path):
    """A PyTorch export (.onnx) straight to the board: TVM's Relax import, the same bundle and
    runner; checked against the conformance case's own expected output."""
    import onnx
    from onnx import numpy_helper

    case = (Path(onnx.__file__).parent / "backend" / "test" / "data"
            / "pytorch-converted" / "test_Conv2d_groups")
    x, want = (numpy_helper.to_array(onnx.load_tensor(str(case / "test_data_set_0" / f)))
               for f in ("input_0.pb", "output_0.pb"))
    result = deploy(sshd, case / "model.onnx", "rpi4", tmp_path, inputs=x[None])
    np.testing.assert_allclose(result.outputs.reshape(want.shape), want, rtol=1e-4, atol=1e-5)


def test_armv7_bit_exact_with_latency_and_memory(sshd, tmp_path):
    path = shared_model("kws_ref_model")
    x = random_inputs((1, 49, 10, 1), 2, seed=5)
    result = deploy(sshd, path, "rpi3", tmp_path, inputs=x, bench=5)
    np.testing.assert_array_equal(result.outputs.reshape(2, 1, 12), reference(path, x))
    lat = result.report["latency"]
    assert lat["bench_runs"] == 5 and 0 < lat["p50_ns"] <= lat["p90_ns"] <= lat["p99_ns"]
    assert result.report["peak_rss_kb"] > 0


def test_a_remote_dir_that_looks_like_an_option_is_a_path(sshd, tmp_path, monkeypatch):
    """--remote-dir=-oX reached the board's mkdir as an option; it is a relative path."""
    monkeypatch.chdir(tmp_path)
    home = Path(os.path.expanduser("~"))
    weird = "-odd-dir"
    result = edge_sdk.api.deploy(
        shared_model("ad01_int8"), "rpi4", sshd.host, port=sshd.port, identity=sshd.identity,
        known_hosts=sshd.known_hosts, remote_dir=weird, run_prefix=["qemu-aarch64-static"])
    assert result.report["remote_dir"] == "./-odd-dir/ad01_int8"
    assert (home / weird / "ad01_int8").is_dir()
    shutil.rmtree(home / weird)


def test_bundle_is_installed_atomically_and_paths_are_not_shell_code(sshd, tmp_path):
    """A remote directory with spaces and shell syntax is a path, nothing more; after the
    deploy only the finished bundle is there (no staging or upload leftovers)."""
    weird = tmp_path / "dir with $(touch PWNED) ;x"
    result = edge_sdk.api.deploy(
        shared_model("ad01_int8"), "rpi4", sshd.host, port=sshd.port, identity=sshd.identity,
        known_hosts=sshd.known_hosts, remote_dir=str(weird), run_prefix=["qemu-aarch64-static"])
    assert result.outputs.shape == (1, 640)  # one sample: the model's output shape
    assert sorted(p.name for p in weird.iterdir()) == ["ad01_int8"]
    assert sorted(p.name for p in (weird / "ad01_int8").iterdir()) == [
        "input.bin", "model.json", "output.bin", "runner"]
    assert not list(tmp_path.rglob("PWNED")) and not (sshd.root / "PWNED").exists()
    subprocess.run(["ls", "/"], check=True)  # the shell is still ours


def test_unknown_host_key_is_refused_then_accepted_on_request(sshd, tmp_path, capsys):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = ["deploy", str(shared_model("ad01_int8")), "--board", "rpi4", "--host", sshd.host,
            "--port", str(sshd.port), "--identity", str(sshd.identity), "--known-hosts",
            str(empty), "--remote-dir", str(tmp_path / "r"), "--run-prefix",
            "qemu-aarch64-static"]
    assert main(args) == 5
    assert "--accept-new-host-key" in capsys.readouterr().err
    assert main([*args, "--accept-new-host-key"]) == 0
    # Recorded (Debian hashes host names, so look it up the way OpenSSH does).
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(empty)],
                           capture_output=True, text=True)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout


def test_authentication_failure(sshd, tmp_path):
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    with pytest.raises(DeviceError, match=r"authentication .* failed"):
        edge_sdk.api.deploy(shared_model("ad01_int8"), "rpi4", sshd.host, port=sshd.port,
                            identity=stranger, known_hosts=sshd.known_hosts,
                            run_prefix=["qemu-aarch64-static"], remote_dir=str(tmp_path))


def test_unreachable_host(sshd, tmp_path):
    with socket_closed_port() as port, pytest.raises(DeviceError, match="cannot reach"):
        edge_sdk.api.deploy(shared_model("ad01_int8"), "rpi4", sshd.host, port=port,
                            identity=sshd.identity, known_hosts=sshd.known_hosts,
                            run_prefix=["qemu-aarch64-static"], remote_dir=str(tmp_path))


def test_wrong_architecture_is_detected(sshd, tmp_path):
    """Without a run prefix the board's architecture is checked: this host is not an Arm."""
    with pytest.raises(DeviceError, match=r"but rpi4 binaries need aarch64"):
        edge_sdk.api.deploy(shared_model("ad01_int8"), "rpi4", sshd.host, port=sshd.port,
                            identity=sshd.identity, known_hosts=sshd.known_hosts,
                            remote_dir=str(tmp_path))


def socket_closed_port():
    import contextlib
    import socket

    @contextlib.contextmanager
    def closed():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield port

    return closed()


def test_rpi5_uses_dot_product_instructions_and_stays_exact(sshd, tmp_path):
    """The A76's +dotprod reaches LLVM: the kernels use sdot, and the answers do not change."""
    need("aarch64-linux-gnu-objdump")
    path = shared_model("kws_ref_model")
    out = tmp_path / "build"
    assert main(["compile", str(path), "--board", "rpi5", "-o", str(out)]) == 0
    asm = subprocess.run(["aarch64-linux-gnu-objdump", "-d", str(out / "kernels.o")],
                         capture_output=True, text=True, check=True).stdout
    assert " sdot " in asm or "\tsdot\t" in asm
    x = random_inputs((1, 49, 10, 1), 2, seed=13)
    result = deploy(sshd, path, "rpi5", tmp_path, inputs=x, threads=2,
                    run_prefix=["qemu-aarch64-static", "-cpu", "max"])
    np.testing.assert_array_equal(result.outputs.reshape(2, 1, 12), reference(path, x))
    assert result.report["threads"] == 2  # the layers' rows shared by two threads


@pytest.mark.slow
def test_new_operators_on_aarch64(sshd, tmp_path):
    """The operators added for real models go through TVM's LLVM backend too: the int8 LSTM
    (gemmlowp int16 fixed point) bit-exact, and a float chain of GELU, BATCH_MATMUL,
    L2_NORMALIZATION and LOG_SOFTMAX (libm calls: erfcf, sqrtf, expf, logf) within 1e-5."""
    from edge_sdk.frontend.tflite import parse
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
    from tests.test_real_models import real

    lstm = real("tflm/trained_lstm_int8.tflite")
    x = np.random.default_rng(3).integers(-128, 128, (2, 1, 28, 28), dtype=np.int8)
    result = deploy(sshd, edge_sdk.load(lstm), "rpi4", tmp_path, inputs=x)
    np.testing.assert_array_equal(result.outputs.reshape(-1), reference(lstm, x).reshape(-1))

    w = np.random.default_rng(0).normal(0, 1, (16, 8)).astype(np.float32)
    tensors = [TensorSpec("x", (1, 6, 16), "float32"), TensorSpec("g", (1, 6, 16), "float32"),
               TensorSpec("w", (16, 8), "float32", data=w), TensorSpec("m", (1, 6, 8), "float32"),
               TensorSpec("l", (1, 6, 8), "float32"), TensorSpec("y", (1, 6, 8), "float32")]
    ops = [OpSpec("GELU", [0], [1]), OpSpec("BATCH_MATMUL", [1, 2], [3]),
           OpSpec("L2_NORMALIZATION", [3], [4]), OpSpec("LOG_SOFTMAX", [4], [5])]
    model = build_model(tensors, ops, [0], [5])
    xf = np.random.default_rng(1).normal(0, 2, (2, 1, 6, 16)).astype(np.float32)
    result = deploy(sshd, parse(model), "rpi4", tmp_path, inputs=xf)
    expected = reference(model, xf)
    np.testing.assert_allclose(result.outputs.reshape(expected.shape), expected, rtol=1e-5,
                               atol=1e-6)


def test_a_changed_host_key_is_refused_even_with_accept_new(sshd, tmp_path):
    """A known_hosts entry with another key for this host and port: the deploy stops with the
    warning, --accept-new-host-key does not override it (it trusts only hosts never seen), and
    the recorded key stays as it was."""
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other.with_suffix('.pub').read_text()}")
    before = known.read_bytes()
    for accept in (False, True):
        with pytest.raises(DeviceError, match="has CHANGED"):
            edge_sdk.api.deploy(shared_model("ad01_int8"), "rpi4", sshd.host, port=sshd.port,
                                identity=sshd.identity, known_hosts=known,
                                accept_new_host_key=accept, run_prefix=["qemu-aarch64-static"],
                                remote_dir=str(tmp_path / "remote"))
    assert known.read_bytes() == before
    assert not (tmp_path / "remote").exists()


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (from /proc): pid -> command name."""
    parent: dict[int, tuple[int, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        parent[int(stat.parent.name)] = (int(text[text.rindex(")") + 2:].split()[1]), name)
    found, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for child, (ppid, name) in parent.items():
            if ppid == p and child not in found:
                found[child] = name
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie (a container's init may never reap a killed orphan)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupted_upload_leaves_the_board_and_this_machine_as_they_were(sshd, tmp_path,
                                                                             how):
    """Ctrl-C or a kill while the bundle is on the wire: the bundle installed before is still
    there, whole; the partial upload is removed from the board; scp is not left running; no
    scratch directory stays in the temp dir. The link is slowed with scp's own bandwidth limit
    (a real scp to the real sshd, as over a slow Wi-Fi link) so that the signal lands mid-way."""
    import os
    import signal
    import sys
    import time

    need("qemu-aarch64-static")
    model = shared_model("ad01_int8")
    remote = tmp_path / "remote"
    deploy(sshd, model, "rpi4", tmp_path)
    installed = _tree(remote)
    assert "ad01_int8/runner" in installed

    slow = tmp_path / "slow-bin"
    slow.mkdir()
    (slow / "scp").write_text(f'#!/bin/sh\nexec {shutil.which("scp")} -l 800 "$@"\n')
    (slow / "scp").chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PATH": f"{slow}:{os.environ['PATH']}", "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_sdk.cli", "deploy", str(model), "--board", "rpi4",
         "--host", sshd.host, "--port", str(sshd.port), "--identity", str(sshd.identity),
         "--known-hosts", str(sshd.known_hosts), "--remote-dir", str(remote),
         "--run-prefix", "qemu-aarch64-static"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    upload = remote / "ad01_int8.upload.tar"
    try:
        deadline = time.monotonic() + 120
        while not (upload.exists() and upload.stat().st_size > 0):
            assert proc.poll() is None, f"the deploy ended before its upload: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
        family = descendants(proc.pid)  # scp, and the ssh that scp runs
        proc.send_signal(getattr(signal, how))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    # No child outlives edge-sdk: scp, and scp's own ssh (killing scp alone left that ssh to
    # notice its closed pipe by itself: >= 3 s over a slow link). Checked the moment we exit.
    names = {pid: name for pid, name in family.items() if alive(pid)}
    assert any(n == "ssh" for n in family.values()), family
    assert not names, f"still running when edge-sdk exited: {names}"
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["edge-sdk: interrupted"]
    time.sleep(0.5)
    assert _tree(remote) == installed, "the installed bundle changed or a partial upload stayed"
    left = subprocess.run(["pgrep", "-f", f"scp .*{remote}"], capture_output=True, text=True)
    assert left.returncode == 1, f"scp still runs: {left.stdout}"
    assert list(scratch.iterdir()) == []
