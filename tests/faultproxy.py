"""A byte-corrupting TCP proxy in front of a QEMU board's UART, and the measurement that both
``tests/test_serial_faults.py`` and ``benchmarks/faults.py`` make through it.

The proxy sits between the SDK's serial client (the one `run` and `run-remote` use, on
``socket://``) and QEMU's UART socket, and loses or changes bytes in both directions at a chosen
rate: the same wire faults a noisy cable or a USB-serial adapter that drops bytes makes.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_sdk.device.protocol import Client
from edge_sdk.device.transport import SerialTransport
from edge_sdk.errors import DeviceError
from edge_sdk.project.boards import Board
from tests.conftest import qemu_serving


class FaultyProxy:
    """Forwards bytes between a client and ``target_port``; each byte is dropped with
    probability ``rate`` and otherwise changed to another value with probability ``rate`` (so
    about ``2 * rate`` of the bytes are faulty)."""

    def __init__(self, target_port: int, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.faults = 0
        self.bytes = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.target_port = target_port
        threading.Thread(target=self._serve, daemon=True).start()

    def _mangle(self, data: bytes) -> bytes:
        with self.lock:
            draws = self.rng.random((len(data), 2))
            flips = self.rng.integers(1, 256, len(data))
            self.bytes += len(data)
        out = bytearray()
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
        for s in (client, upstream):  # forward at once, as a wire does (Nagle would add 40 ms)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()


@dataclass
class LinkFigures:
    """What ``count`` inferences through the proxy came to."""

    rate: float
    count: int
    succeeded: int = 0
    clean_errors: int = 0  # a DeviceError: the inference was reported failed, nothing returned
    wrong: int = 0  # a result returned that differs from the oracle: must stay 0
    hung: int = 0  # an inference past its deadline (the measurement stops at the first)
    faults: int = 0
    bytes: int = 0
    seconds: list[float] = field(default_factory=list)
    # The longest any one command took, over its base time (--timeout; RUN: --timeout +
    # --run-timeout): the client's own deadline is 2.0 of it, which no retry may pass.
    worst_command: float = 0.0

    def as_dict(self) -> dict:
        s = sorted(self.seconds) or [0.0]
        return {"rate": self.rate, "inferences": self.count, "succeeded": self.succeeded,
                "clean_errors": self.clean_errors, "wrong": self.wrong, "hung": self.hung,
                "faults": self.faults, "bytes": self.bytes,
                "s_median": s[len(s) // 2], "s_mean": sum(s) / len(s), "s_max": s[-1],
                "worst_command_over_timeout": round(self.worst_command, 3)}


def deadline(client: Client, commands: int) -> float:
    """The longest one inference may take by the client's own bounds: every command's tries
    (with the data in 16-byte chunks, after 2 tries at each of 6 larger sizes), each at RUN's
    bound at most, and a second of slack."""
    return commands * (client.tries + 2 * 6) * (client.timeout + client.run_timeout) + 1.0


def measure_link(board: Board, elf: Path, inputs: np.ndarray, expected: np.ndarray, rate: float,
                 seed: int, timeout: float = 0.5, run_timeout: float = 2.0) -> LinkFigures:
    """Start QEMU with ``elf``, put a proxy of fault ``rate`` in front of its UART, and run each
    input through the SDK's client (write, run, read), comparing with ``expected``."""
    figures = LinkFigures(rate, len(inputs))
    with qemu_serving(board, elf) as port:
        proxy = FaultyProxy(port, rate, seed)
        transport = SerialTransport(f"socket://127.0.0.1:{proxy.port}")
        client = Client(transport, timeout=timeout, run_timeout=run_timeout)
        plain_request = client.request

        def timed(cmd, payload=b"", timeout=None, work=None, tries=None):
            base = (timeout or client.timeout) + (work or 0.0)
            start = time.monotonic()
            try:
                return plain_request(cmd, payload, timeout=timeout, work=work, tries=tries)
            finally:
                figures.worst_command = max(figures.worst_command,
                                            (time.monotonic() - start) / base)

        client.request = timed  # type: ignore[method-assign]
        out_bytes = expected[0].nbytes
        chunks = -(-inputs[0].nbytes // 16) + 1 + -(-out_bytes // 16)
        limit = deadline(client, chunks)
        for x, want in zip(inputs, expected, strict=True):
            result: list[bytes | None] = []

            def one(x=x, result=result) -> None:
                try:
                    client.write_input(x.tobytes())
                    client.run()
                    result.append(client.read_output(out_bytes))
                except DeviceError:
                    result.append(None)

            start = time.monotonic()
            worker = threading.Thread(target=one, daemon=True)
            worker.start()
            worker.join(limit)
            figures.seconds.append(time.monotonic() - start)
            if worker.is_alive():
                figures.hung += 1
                break
            got = result[0]
            if got is None:
                figures.clean_errors += 1
            elif np.array_equal(np.frombuffer(got, want.dtype), want.reshape(-1)):
                figures.succeeded += 1
            else:
                figures.wrong += 1
        transport.close()
        figures.faults, figures.bytes = proxy.faults, proxy.bytes
        return figures
