"""Bad input gets one clear line, a non-zero exit, and no half-written output."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.device.protocol import Client
from edge_sdk.device.transport import SerialTransport
from edge_sdk.errors import DeviceError
from tests.conftest import ROOT, shared_model
from tests.test_ops import CASES

SHARED_REAL = ROOT.parent / "shared" / "models" / "real"


@pytest.fixture()
def tiny_model(tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(CASES["fc_batch2"]())
    return path


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def test_corrupt_model(tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    code, err = run_cli(capsys, "compile", str(bad), "-o", str(tmp_path / "out"))
    assert code == 2 and "not a TFLite model" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_truncated_model(tmp_path, capsys, tiny_model):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(tiny_model.read_bytes()[:200])
    code, err = run_cli(capsys, "compile", str(cut), "-o", str(tmp_path / "out"))
    assert code == 2 and "corrupt or truncated" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_hybrid_float_model_refused(tmp_path, capsys):
    """The 'float' KWS keeps int8 weights in float layers: refused, pointing to quantize."""
    path = shared_model("kws_ref_model_float32")
    code, err = run_cli(capsys, "compile", str(path), "-o", str(tmp_path / "out"))
    assert code == 2 and "edge-sdk quantize" in err
    assert not (tmp_path / "out").exists()


def test_unknown_board(tmp_path, capsys, tiny_model):
    code, err = run_cli(capsys, "run", str(tiny_model), "--board", "nosuchboard")
    assert code == 3 and "unknown board 'nosuchboard'" in err and "mps2-an386" in err


def test_model_too_big_for_board():
    """vww needs ~83 KB of RAM: a 64 KB part is refused, naming both numbers."""
    import dataclasses

    import edge_sdk
    from edge_sdk.errors import BoardError
    from edge_sdk.project.boards import Region, get_board
    from edge_sdk.project.generate import check_fits

    compiled = edge_sdk.compile(shared_model("vww_96_int8"))
    small = dataclasses.replace(get_board("nucleo-l4r5zi"), ram=Region(0x20000000, 65536))
    need = compiled.memory.arena_bytes + compiled.io_bytes
    with pytest.raises(BoardError, match=f"needs {need} B of RAM .* has 65536 B"):
        check_fits(compiled, small)


def test_output_dir_exists_is_refused(tmp_path, capsys, tiny_model):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    code, err = run_cli(capsys, "compile", str(tiny_model), "-o", str(out))
    assert code == 6 and "--force" in err
    assert (out / "mine.txt").read_text() == "user data"


def test_missing_toolchain(tmp_path, capsys, tiny_model, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find: no make, no compilers
    code, err = run_cli(capsys, "run", str(tiny_model), "--board", "mps2-an386")
    assert code == 4 and "not found: install it with apt-get install" in err


def test_bad_input_file(tmp_path, capsys, tiny_model):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((5,), np.int8))
    code, err = run_cli(capsys, "run", str(tiny_model), "--input", str(x))
    assert code == 6 and "shape [5]" in err and "takes [2, 24] for one sample" in err


def test_serial_peer_that_never_answers():
    """A TCP peer that accepts the connection and then stays silent: a timeout, not a hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    transport = SerialTransport(f"socket://127.0.0.1:{port}")
    client = Client(transport, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(DeviceError, match=r"INFO failed after \d+ tries in 1\.\d s \(no reply; "
                                          r"the limit is 1\.0 s, twice --timeout 0\.5 s\)"):
        client.info()
    assert time.monotonic() - start < 2 * 0.5 + 0.3  # the command's deadline, no wait past it
    transport.close()
    server.close()


def test_serial_port_that_does_not_exist():
    with pytest.raises(DeviceError, match="cannot open serial port"):
        SerialTransport("/dev/ttyEDGE_DOES_NOT_EXIST", connect_timeout=0.2)


def test_qemu_that_does_not_start(tmp_path, tiny_model):
    import dataclasses

    from edge_sdk.device.launch import open_qemu
    from edge_sdk.project.boards import get_board

    board = dataclasses.replace(get_board("mps2-an386"),
                                emulator={"command": "qemu-system-arm", "machine": "no-such-m"})
    elf = tmp_path / "app.elf"
    elf.write_bytes(b"")
    starting = open_qemu(board, elf, timeout=2)
    with pytest.raises(DeviceError, match=r"QEMU .* did not start"), starting:
        pass


def test_unsupported_operators_named_at_once(tmp_path, capsys):
    """A real model with a custom operator (MediaPipe's selfie segmentation): one line names it
    (and any builtin operator we lack too, so one attempt tells the whole story)."""
    model = SHARED_REAL / "mediapipe" / "selfie_segmentation.tflite"
    if not model.exists():
        pytest.skip(f"{model} is absent: the real models live in ../shared (CI has them)")
    out = tmp_path / "out"
    assert main(["compile", str(model), "--board", "host", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "custom operator 'Convolution2DTransposeBias' (operator 244)" in err
    assert "re-export the model with builtin operators" in err
    assert not out.exists()


def test_an_unexpected_exception_is_one_line_and_a_crash_file(tmp_path, capsys, monkeypatch,
                                                              tiny_model):
    """The CLI's last guard: a bug of ours gives one line, exit 70 (not a user error's code)
    and a crash file with the traceback and the command."""
    import edge_sdk.api

    def broken(*args, **kwargs):
        raise KeyError("internal state")

    monkeypatch.setattr(edge_sdk.api, "compile_for", broken)
    monkeypatch.setenv("EDGE_SDK_CRASH_DIR", str(tmp_path / "crashes"))
    code, err = run_cli(capsys, "compile", str(tiny_model), "-o", str(tmp_path / "out"))
    assert code == 70, err
    assert "\n" not in err and "this is a bug, please report" in err and "KeyError" in err
    crashes = list((tmp_path / "crashes").glob("edge-sdk-crash-*.txt"))
    assert len(crashes) == 1 and str(crashes[0]) in err
    text = crashes[0].read_text()
    assert "Traceback" in text and "internal state" in text and str(tiny_model) in text
    assert not (tmp_path / "out").exists()


def test_a_host_that_looks_like_an_option_is_refused(tmp_path, capsys, tiny_model):
    """``--host=-oProxyCommand=...`` would reach ssh as an option; it is refused before ssh
    runs."""
    code, err = run_cli(capsys, "deploy", str(tiny_model), "--board", "rpi4",
                        "--host=-oProxyCommand=touch " + str(tmp_path / "pwned"))
    assert code == 6 and "is not an SSH host" in err and "\n" not in err
    assert not (tmp_path / "pwned").exists()


def test_a_directory_as_the_model(tmp_path, capsys):
    for name in ("model.tflite", "model.onnx", "plain"):
        (tmp_path / name).mkdir()
        code, err = run_cli(capsys, "inspect", str(tmp_path / name))
        assert code in (2, 6) and "is a directory" in err and "\n" not in err


def test_bad_inputs_and_output_paths_are_refused_before_any_work(tmp_path, capsys, tiny_model):
    """Each mistake is one line and exit 6, before the model runs; nothing is left behind."""
    import struct

    np.save(tmp_path / "empty.npy", np.zeros((0, 48), np.float32))
    nan = np.zeros((1, 48), np.float32)
    nan[0, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (50000000000000,), }"
    header += " " * (118 - len(header)) + "\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header))
                                        + header.encode() + b"\x00" * 64)
    (tmp_path / "a_file").write_text("x")
    cases = {
        ("--input", "empty.npy"): "the array is empty",
        ("--input", "nan.npy"): "NaN or infinity",
        ("--input", "huge.npy"): "truncated or damaged",
        ("--output", "a_file/out.npy"): "is a file, not a folder",
        ("--report", "a_file/r.json"): "is a file, not a folder",
        ("--output", "."): "is a directory",
    }
    for (flag, name), message in cases.items():
        code, err = run_cli(capsys, "run", str(tiny_model), flag, str(tmp_path / name))
        assert code == 6 and message in err and "\n" not in err, (flag, name, err)
    code, err = run_cli(capsys, "compile", str(tiny_model), "-o", str(tmp_path / "a_file/x"))
    assert code == 6 and "is a file, not a folder" in err
    # A missing folder on the way is made when the result is written.
    assert run_cli(capsys, "run", str(tiny_model), "--output",
                   str(tmp_path / "new" / "dir" / "out.npy"))[0] == 0
    assert np.load(tmp_path / "new" / "dir" / "out.npy").size > 0
    leftovers = [p.name for p in tmp_path.rglob(".*tmp*")]
    assert leftovers == []


class SlowBoard:
    """A fake board on a TCP socket that speaks the protocol, answering PING with its payload
    and READ_OUTPUT with a pattern; the first request of ``slow_cmd`` is answered only after
    ``delay`` seconds (a board that is slow once, or a reply stuck in a buffer)."""

    def __init__(self, slow_cmd: int, delay: float, run: str = "") -> None:
        """``run``: how RUN is answered: "hang" (STARTED, then nothing: a board stuck in the
        inference), "chatter" (STARTED every 0.1 s, never a result)."""
        self.slow_cmd, self.delay, self.run = slow_cmd, delay, run
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()
        self.transport = SerialTransport(f"socket://127.0.0.1:{self.server.getsockname()[1]}")

    @staticmethod
    def chunk(offset: int, n: int) -> bytes:
        return bytes((offset + i) % 251 for i in range(n))

    def _serve(self) -> None:
        import struct
        import zlib

        from edge_sdk.device import protocol as p

        conn, _ = self.server.accept()
        stream = conn.makefile("rb")
        delayed = False
        while byte := stream.read(1):
            if byte[0] != p.REQUEST_START:
                continue
            head = stream.read(4)
            cmd, seq, length = struct.unpack("<BBH", head)
            payload = stream.read(length)
            (crc,) = struct.unpack("<I", stream.read(4))
            status, reply = p.STATUS_OK, b""
            if zlib.crc32(head + payload) != crc:
                status = p.STATUS_BAD_CRC
            elif cmd == p.CMD_PING:
                reply = payload
            elif cmd == p.CMD_READ_OUTPUT:
                offset, n = struct.unpack("<IH", payload)
                reply = self.chunk(offset, n)
            if cmd == self.slow_cmd and not delayed:
                delayed = True
                time.sleep(self.delay)
            if cmd == p.CMD_RUN and self.run and status == p.STATUS_OK:
                started = struct.pack("<BBBH", cmd, seq, p.STATUS_STARTED, 0)
                frame = (bytes([p.RESPONSE_START]) + started
                         + struct.pack("<I", zlib.crc32(started)))
                try:
                    conn.sendall(frame)
                    while self.run == "chatter":
                        time.sleep(0.1)
                        conn.sendall(frame)
                except OSError:
                    return
                continue
            body = struct.pack("<BBBH", cmd, seq, status, len(reply)) + reply
            conn.sendall(bytes([p.RESPONSE_START]) + body + struct.pack("<I", zlib.crc32(body)))

    def close(self) -> None:
        self.transport.close()
        self.server.close()


@pytest.mark.parametrize("run", ["hang", "chatter"])
def test_a_board_that_never_finishes_an_inference_is_cut_off_at_the_deadline(run):
    """A board that says STARTED and then hangs, or keeps saying STARTED and never answers:
    each try waited the whole run_timeout and a command had 8 tries (> 300 s with the defaults,
    and a chattering board was waited on forever). Now RUN ends at its deadline,
    2 * (timeout + run_timeout), with a message that names what happened."""

    board = SlowBoard(0, 0.0, run=run)
    client = Client(board.transport, timeout=0.3, run_timeout=0.6)
    start = time.monotonic()
    with pytest.raises(DeviceError, match=r"RUN: the board started the inference .* but no "
                                          r"result came in .*--run-timeout 0\.6 s"):
        client.run()
    assert time.monotonic() - start <= 2 * (0.3 + 0.6) + 0.3
    board.close()


def test_a_late_reply_is_never_taken_for_a_later_request():
    """The fake board answers the first READ_OUTPUT after the client's timeout. The late answer
    (to offset 0) carries the first try's sequence number, so it is taken for that chunk (the
    same bytes as a retry would bring) and never for offset 1024: the output comes back right,
    within the deadlines."""
    from edge_sdk.device import protocol as p

    board = SlowBoard(p.CMD_READ_OUTPUT, 0.8)
    client = Client(board.transport, timeout=0.5)
    start = time.monotonic()
    assert client.read_output(2048) == board.chunk(0, 1024) + board.chunk(1024, 1024)
    assert time.monotonic() - start < 3.0
    board.close()


def test_a_command_that_gave_up_does_not_answer_the_next():
    """The first PING is answered after the client gave up on it (0.4 s of tries); its late
    replies are then in the stream when the next PING is sent. The next PING must get its own
    echo: before sequence numbers the client took the stale b"first" for it (found by the
    fault benchmark at 1e-2: an input written by one inference answered by the previous one's
    reply, and a wrong result returned)."""
    from edge_sdk.device import protocol as p

    board = SlowBoard(p.CMD_PING, 1.0)
    client = Client(board.transport, timeout=0.2)
    with pytest.raises(DeviceError, match=r"PING failed after \d+ tries"):
        client.ping(b"first")
    time.sleep(1.0)  # the board catches up: stale b"first" echoes wait in the stream
    assert client.ping(b"second") == b"second"
    board.close()


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "soon"])
def test_a_time_limit_must_be_a_finite_positive_number(value, capsys):
    """`--timeout nan|inf` never gave up; 0 and -1 failed with "cannot open serial port"."""
    from edge_sdk.cli import main

    for option in ("--timeout", "--run-timeout"):
        with pytest.raises(SystemExit) as exit_:
            main(["run-remote", "--port", "socket://127.0.0.1:9", "--input", "x.npy",
                  option, value])
        assert exit_.value.code == 6
        err = capsys.readouterr().err
        assert f"argument {option}:" in err and "serial" not in err


def test_user_errors_are_not_internal_errors(tmp_path, capsys, monkeypatch):
    """Each of these ended in "internal error ... this is a bug" (exit 70): writing into /proc
    or /sys, a 300-character file name, --runs 10**12 (446 TiB of inputs), an --input that is
    a FIFO (blocked forever). Now: one line, exit 6 (argparse's own errors: SystemExit 6)."""
    import os as _os

    from edge_sdk.cli import main
    from tests.conftest import shared_model

    kws = str(shared_model("kws_ref_model"))
    long = str(tmp_path / ("a" * 300))
    for argv in (["compile", kws, "-o", "/proc/edge-sdk-x"], ["compile", kws, "-o", long],
                 ["run", kws, "--output", long + ".npy"]):
        assert main(argv) == 6, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "internal error" not in err, err
    fifo = tmp_path / "fifo"
    _os.mkfifo(fifo)
    assert main(["run", kws, "--input", str(fifo)]) == 6
    assert "not a regular file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["benchmark", kws, "--board", "host", "--runs", str(10**12)])
    assert exit_.value.code == 6 and "takes 1 to 100,000" in capsys.readouterr().err


def test_constants_larger_than_the_flash_are_refused_before_any_array_is_made(tmp_path,
                                                                                monkeypatch):
    """A model whose weights alone exceed the board's flash: refused from the declared sizes,
    before lowering widens any array (a 1 GiB constant took 8 GiB first)."""
    import edge_sdk
    import edge_sdk.api as api
    from edge_sdk.errors import BoardError
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

    w = np.ones((1024, 2048), np.int8)  # 2 MiB of weights; nano33ble has 960 KiB of flash
    model = tmp_path / "big.tflite"
    model.write_bytes(build_model(
        [TensorSpec("x", (1, 2048), "int8", (0.1,), (0,)),
         TensorSpec("w", (1024, 2048), "int8", (0.01,), (0,), 0, w),
         TensorSpec("y", (1, 1024), "int8", (0.2,), (0,))],
        [OpSpec("FULLY_CONNECTED", [0, 1, -1], [2], {})], [0], [2]))

    def never(*args, **kwargs):
        raise AssertionError("lowered before the size check")

    monkeypatch.setattr(api, "compile_graph", never)
    with pytest.raises(BoardError, match=r"constants \(weights\) take 2,097,152 B but nano33ble "
                                         r"has 983,040 B of flash"):
        edge_sdk.compile(model, board="nano33ble")


@pytest.mark.parametrize("port", ["socket://127.0.0.1:99999", "socket://:4444",
                                  "socket://127.0.0.1:0", "socket://127.0.0.1:http"])
def test_a_bad_socket_port_is_named_not_pyserials_internals(port, tmp_path, capsys):
    """socket://127.0.0.1:99999 printed pyserial's "'debug|info|warning|error'"."""
    from edge_sdk.cli import main

    np.save(tmp_path / "x.npy", np.zeros((1, 8), np.int8))
    assert main(["run-remote", "--port", port, "--input", str(tmp_path / "x.npy"),
                 "--timeout", "1"]) == 6
    err = capsys.readouterr().err
    assert "socket://HOST:PORT, with a port from 1 to 65535" in err and "debug|" not in err


def test_nan_given_to_a_float_model_is_said(tmp_path, capsys):
    """A float model took NaN inputs silently; now a warning says so (and the run goes on,
    as LiteRT's would)."""
    from edge_sdk.cli import main
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

    model = tmp_path / "f.tflite"
    model.write_bytes(build_model([TensorSpec("x", (1, 4), "float32"),
                                   TensorSpec("y", (1, 4), "float32")],
                                  [OpSpec("RELU", [0], [1], {})], [0], [1]))
    np.save(tmp_path / "x.npy", np.array([[1.0, np.nan, -2.0, np.inf]], np.float32))
    assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--check"]) == 0
    captured = capsys.readouterr()
    assert "warning: input 'x' holds 2 NaN or infinite value(s)" in captured.err
    assert "check:" in captured.out  # NaN against LiteRT's NaN is a match now


def test_a_quoted_message_is_cut_between_words():
    """Another tool's long error, quoted in ours, ends at a word with an ellipsis: the BERT
    export's refusal used to end "the given tenso"."""
    from edge_sdk.errors import clipped

    long = ("Check failed: the given tensor has shape (1, 128), which does not broadcast to "
            "the requested shape (1, 12, 128, 128)")
    out = clipped(long, 60)
    assert len(out) <= 60 and out.endswith("\u2026")
    assert long.startswith(out[:-1]) and long[len(out) - 1] == " "
    assert clipped("one\n  line  ", 60) == "one line"
