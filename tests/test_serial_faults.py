"""The serial link under faults: a TCP proxy between the client and QEMU's UART drops and
corrupts bytes at a chosen per-byte rate, in both directions. The firmware is the one edge-sdk
generates for the Cortex-M4 board; the client is the one `run` and `run-remote` use.

What must hold: no wrong result is ever returned (every fault is detected by the framing and
CRC), no exchange waits past its deadline, and at a 1e-3 fault rate at least 99% of inferences
succeed (a lost byte is resent, after a resynchronisation when a whole reply went missing).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import numpy as np
import pytest

import edge_sdk
from edge_sdk.device.launch import _free_port, qemu_command
from edge_sdk.device.protocol import Client
from edge_sdk.device.transport import SerialTransport
from edge_sdk.errors import DeviceError
from edge_sdk.project.boards import get_board
from tests.conftest import random_inputs, reference
from tests.test_ops import CASES


class FaultyProxy:
    """Forwards bytes between a client and ``target_port``; each byte is dropped with
    probability ``rate`` and otherwise flipped to another value with probability ``rate``."""

    def __init__(self, target_port: int, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.faults = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.target_port = target_port
        threading.Thread(target=self._serve, daemon=True).start()

    def _mangle(self, data: bytes) -> bytes:
        out = bytearray()
        with self.lock:
            draws = self.rng.random((len(data), 2))
            flips = self.rng.integers(1, 256, len(data))
        for byte, (drop, flip), x in zip(data, draws, flips, strict=True):
            if drop < self.rate:
                self.faults += 1
                continue
            if flip < self.rate:
                self.faults += 1
                byte ^= int(x)
            out.append(byte)
        return bytes(out)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(4096):
                dst.sendall(self._mangle(data))
        except OSError:
            pass

    def _serve(self) -> None:
        client, _ = self.server.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()


@pytest.fixture(scope="module")
def board_firmware(tmp_path_factory):
    """The tiny FC model's firmware for mps2-an386, built once."""
    from edge_sdk.project.build import build_project
    from edge_sdk.project.generate import generate_project

    tmp = tmp_path_factory.mktemp("faults")
    model = tmp / "tiny.tflite"
    model.write_bytes(CASES["fc_batch2"]())
    board = get_board("mps2-an386")
    compiled = edge_sdk.api.compile_for(edge_sdk.load(model), board)
    generate_project(compiled, board, tmp / "fw", demo=False)
    build = build_project(tmp / "fw", board, compiled.name)
    return model, board, build.executable


def inferences(board_firmware, rate: float, count: int, seed: int) -> tuple[int, int, int, float]:
    """(successes, wrong results, faults injected, slowest inference in s) over ``count``."""
    model, board, elf = board_firmware
    port = _free_port()
    qemu = subprocess.Popen(qemu_command(board, elf, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        proxy = FaultyProxy(port, rate, seed)
        transport = SerialTransport(f"socket://127.0.0.1:{proxy.port}")
        client = Client(transport, timeout=0.5, run_timeout=2.0)
        xs = random_inputs((2, 24), count, seed=seed)
        want = reference(model, xs)
        ok = wrong = 0
        slowest = 0.0
        for x, expected in zip(xs, want, strict=True):
            start = time.monotonic()
            try:
                client.write_input(x.tobytes())
                client.run()
                got = np.frombuffer(client.read_output(expected.nbytes), np.int8)
            except DeviceError:
                got = None
            slowest = max(slowest, time.monotonic() - start)
            if got is None:
                continue
            if np.array_equal(got, expected.reshape(-1)):
                ok += 1
            else:
                wrong += 1
        transport.close()
        return ok, wrong, proxy.faults, slowest
    finally:
        qemu.kill()
        qemu.wait()


@pytest.mark.slow
def test_one_fault_in_a_thousand_bytes(board_firmware):
    ok, wrong, faults, slowest = inferences(board_firmware, 1e-3, 200, seed=1)
    print(f"1e-3: {ok}/200 inferences, {wrong} wrong, {faults} faults, slowest {slowest:.2f} s")
    assert faults > 0 and wrong == 0
    assert ok >= 0.99 * 200
    # Per command: 3 tries of at most 2 s (RUN) or 0.5 s, plus a resync's quiet time each.
    assert slowest < 3 * (2.0 + 0.5 + 0.5 + 0.5) + 3 * 0.7


@pytest.mark.slow
def test_one_fault_in_a_hundred_bytes(board_firmware):
    ok, wrong, faults, slowest = inferences(board_firmware, 1e-2, 30, seed=2)
    print(f"1e-2: {ok}/30 inferences, {wrong} wrong, {faults} faults, slowest {slowest:.2f} s")
    assert faults > 0 and wrong == 0
    assert slowest < 3 * (2.0 + 0.5 + 0.5 + 0.5) + 3 * 0.7
