"""The host side of the firmware's serial protocol (see ``firmware/common/edge_protocol.h``).

Frames carry a length and a CRC-32. A reply that times out raises :class:`DeviceError`; a reply
that arrives corrupted, or a request the board saw corrupted, is retried a few times (every
command is idempotent) before giving up. Nothing here can block forever.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from edge_sdk.device.transport import Transport
from edge_sdk.errors import DeviceError

REQUEST_START = 0xA5
RESPONSE_START = 0x5A
MAX_PAYLOAD = 1024

(CMD_INFO, CMD_WRITE_INPUT, CMD_RUN, CMD_READ_OUTPUT, CMD_PING, CMD_EXIT, CMD_PROFILE,
 CMD_RUN_TO, CMD_READ_TRACE, CMD_RESET) = range(1, 11)
STATUS_OK, STATUS_BAD_CRC, STATUS_BAD_COMMAND, STATUS_BAD_ARGUMENT, STATUS_RUN_FAILED = range(5)
TIMER_KINDS = {0: "none", 1: "cycles", 2: "systick", 3: "nanoseconds"}


class _Corrupt(Exception):
    pass


@dataclass(frozen=True)
class DeviceInfo:
    version: int
    model: str
    input_size: int
    output_size: int
    arena_size: int
    timer_kind: str
    timer_hz: int


@dataclass(frozen=True)
class RunResult:
    result: int
    ticks: int


def encode_request(cmd: int, payload: bytes = b"") -> bytes:
    body = struct.pack("<BH", cmd, len(payload)) + payload
    return bytes([REQUEST_START]) + body + struct.pack("<I", zlib.crc32(body))


class Client:
    def __init__(self, transport: Transport, timeout: float = 10.0, run_timeout: float = 120.0,
                 retries: int = 3):
        self.transport = transport
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.retries = retries

    def _read_reply(self, timeout: float) -> tuple[int, int, bytes]:
        skipped = 0
        while self.transport.read(1, timeout)[0] != RESPONSE_START:
            skipped += 1
            if skipped > 4 * MAX_PAYLOAD:
                raise DeviceError("the board sends data that is not edge-sdk protocol: "
                                  "is the right firmware running?")
        header = self.transport.read(4, timeout)
        cmd, status, length = struct.unpack("<BBH", header)
        if length > MAX_PAYLOAD:
            raise _Corrupt
        payload = self.transport.read(length, timeout)
        (crc,) = struct.unpack("<I", self.transport.read(4, timeout))
        if zlib.crc32(header + payload) != crc:
            raise _Corrupt
        return cmd, status, payload

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one request and return its reply payload.

        Replies to other commands (left over from an earlier retry) are skipped; a corrupted
        reply, or a BAD_CRC answer, makes us resend the request, up to ``retries`` times.
        """
        timeout = self.timeout if timeout is None else timeout
        for _ in range(self.retries):
            self.transport.write(encode_request(cmd, payload))
            try:
                rcmd, status, reply = self._read_reply(timeout)
                while rcmd != cmd:
                    rcmd, status, reply = self._read_reply(timeout)
            except _Corrupt:
                continue
            if status == STATUS_BAD_CRC:
                continue
            if status != STATUS_OK:
                names = {STATUS_BAD_COMMAND: "unknown command", STATUS_BAD_ARGUMENT: "bad argument",
                         STATUS_RUN_FAILED: "inference failed"}
                raise DeviceError(f"the board refused command {cmd}: "
                                  f"{names.get(status, f'status {status}')}")
            return reply
        raise DeviceError(f"the serial link keeps corrupting data ({self.retries} tries): "
                          "check the baud rate and the cable")

    def info(self) -> DeviceInfo:
        r = self.request(CMD_INFO)
        if len(r) < 20:
            raise DeviceError("the board's INFO reply is too short: firmware and SDK differ")
        version, kind = r[0], r[1]
        inp, outp, arena, hz = struct.unpack("<IIII", r[4:20])
        return DeviceInfo(version, r[20:].decode("utf-8", "replace"), inp, outp, arena,
                          TIMER_KINDS.get(kind, "none"), hz)

    def ping(self, data: bytes = b"edge") -> bytes:
        return self.request(CMD_PING, data)

    def write_input(self, data: bytes) -> None:
        step = MAX_PAYLOAD - 4
        for off in range(0, len(data), step):
            self.request(CMD_WRITE_INPUT, struct.pack("<I", off) + data[off : off + step])

    def run(self) -> RunResult:
        result, lo, hi = struct.unpack("<iII", self.request(CMD_RUN, timeout=self.run_timeout))
        return RunResult(result, lo | (hi << 32))

    def read_output(self, size: int) -> bytes:
        out = bytearray()
        for off in range(0, size, MAX_PAYLOAD):
            n = min(MAX_PAYLOAD, size - off)
            out += self.request(CMD_READ_OUTPUT, struct.pack("<IH", off, n))
        return bytes(out)

    def profile(self) -> list[int]:
        """The timer at the end of each layer of the last run (empty unless the firmware was
        built with ``EDGE_PROFILE``)."""
        r = self.request(CMD_PROFILE)
        (count,) = struct.unpack("<I", r[:4])
        if len(r) != 4 + 4 * count:
            raise DeviceError(f"PROFILE reply holds {len(r)} bytes for {count} layers")
        return list(struct.unpack(f"<{count}I", r[4:]))

    def run_to(self, layer: int) -> int:
        """Run until ``layer`` (a step index) has ended; the bytes of its output, which
        :meth:`read_trace` then reads (0 unless the firmware was built with ``EDGE_TRACE``)."""
        (size,) = struct.unpack("<I", self.request(CMD_RUN_TO, struct.pack("<H", layer),
                                                   timeout=self.run_timeout))
        return size

    def read_trace(self, size: int) -> bytes:
        out = bytearray()
        for off in range(0, size, MAX_PAYLOAD):
            n = min(MAX_PAYLOAD, size - off)
            out += self.request(CMD_READ_TRACE, struct.pack("<IH", off, n))
        return bytes(out)

    def reset(self) -> None:
        """Zero the board's arena: a model with state (an LSTM's) starts from zeros again."""
        self.request(CMD_RESET)

    def exit(self) -> None:
        self.request(CMD_EXIT)
