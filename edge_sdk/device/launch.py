"""Start a board and hand back a protocol client: QEMU for emulated boards, a process for host.

Real boards with a serial port use :class:`~edge_sdk.device.transport.SerialTransport` directly
on their port; QEMU's UART is the same code path over ``socket://127.0.0.1:PORT``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from edge_sdk.device.protocol import Client
from edge_sdk.device.transport import ProcessTransport, SerialTransport
from edge_sdk.errors import DeviceError, ToolchainError
from edge_sdk.project.boards import Board


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_command(board: Board, elf: Path, port: int) -> list[str]:
    assert board.emulator is not None
    return [
        board.emulator["command"], "-M", board.emulator["machine"], "-nographic",
        "-monitor", "none", "-icount", "shift=0",
        "-semihosting-config", "enable=on,target=native",
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        "-kernel", str(elf),
    ]


# Cycles one MAC may take in the slowest kernels (portable C, float on a core without an FPU
# is refused), with margin; an emulated board is timed at EMULATED_HZ of host time.
CYCLES_PER_MAC = 200
EMULATED_HZ = 20_000_000


def run_budget(macs: int, board: Board, unscheduled: bool = False) -> float:
    """Seconds one inference may take before the client calls the board lost: derived from the
    model's MACs and the board's clock (QEMU: a slow host's speed), never below 10 s. A model
    whose kernels carry no MAC count, or TVM's unscheduled Relax kernels (``unscheduled``:
    the ONNX models the operator library does not take, far more cycles per MAC than
    ours), gets at least 120 s."""
    if macs <= 0:
        return 120.0
    hz = EMULATED_HZ if board.emulator or board.port == "host" else (board.clock_hz or 16_000_000)
    budget = 10.0 + CYCLES_PER_MAC * macs / hz
    return max(budget, 120.0) if unscheduled else budget


def _stop(proc: subprocess.Popen, client: Client | None) -> None:
    if client is not None and proc.poll() is None:
        with suppress(DeviceError):
            client.exit()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def open_qemu(board: Board, elf: Path, timeout: float = 10.0,
              run_timeout: float = 120.0) -> Iterator[Client]:
    command = board.emulator["command"] if board.emulator else "qemu-system-arm"
    if shutil.which(command) is None:
        raise ToolchainError(f"{command} not found: install it with apt-get install "
                             "qemu-system-arm (or ./setup.sh)")
    port = _free_port()
    proc = subprocess.Popen(qemu_command(board, elf, port), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = None
    try:
        try:
            transport = SerialTransport(f"socket://127.0.0.1:{port}", connect_timeout=timeout)
        except DeviceError:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace").strip().splitlines()
            raise DeviceError(f"QEMU ({board.emulator}) did not start: "
                              f"{err[-1] if err else 'no output'}") from None
        client = Client(transport, run_timeout=run_timeout)
        yield client
    finally:
        _stop(proc, client)


@contextmanager
def open_host(executable: Path, run_timeout: float = 120.0) -> Iterator[Client]:
    proc = subprocess.Popen([str(executable)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    client = Client(ProcessTransport(proc), run_timeout=run_timeout)
    try:
        yield client
    finally:
        _stop(proc, client)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


@contextmanager
def open_board(board: Board, executable: Path, run_timeout: float = 120.0) -> Iterator[Client]:
    """``run_timeout``: the longest one inference may take (see :func:`run_budget`)."""
    if board.port == "host":
        with open_host(executable, run_timeout) as client:
            yield client
    elif board.emulator:
        with open_qemu(board, executable, run_timeout=run_timeout) as client:
            yield client
    else:
        raise DeviceError(f"edge-sdk cannot start {board.name} by itself: flash it and talk to "
                          "it over its serial port")
