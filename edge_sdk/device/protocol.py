"""The host side of the firmware's serial protocol (see ``firmware/common/edge_protocol.h``).

Frames carry a length and a CRC-32. Every command is idempotent (writing an input chunk, running,
reading an output chunk can all be repeated with the same result), so a failed exchange is
simply tried again:

- a corrupted reply, or a BAD_CRC answer (the board saw the request corrupted), is resent;
- no reply in time, or a garbled one (a byte of the request or of the reply was lost or
  changed), is resent after a resynchronisation: the client sends zero bytes, enough to
  complete any frame the board is half-way through reading (it answers BAD_CRC and then skips
  zeros while it hunts for the next start marker), then a PING with a fresh token, and drops
  every reply before the token's echo. The board answers in order, so a late reply to an
  earlier try (to the same command, for another offset) can never be taken for this one.

Each try waits at most ``timeout`` seconds for its reply (``run_timeout`` for RUN and RUN_TO),
and a command gives up after ``retries`` tries, so nothing waits longer than
``retries * timeout``; a board that streams bytes that never make the awaited reply is cut off
by the same deadline. A reply of the wrong length is a DeviceError, never a crash.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass

from edge_sdk.device.transport import LinkTimeout, Transport
from edge_sdk.errors import DeviceError

REQUEST_START = 0xA5
RESPONSE_START = 0x5A
MAX_PAYLOAD = 1024

(CMD_INFO, CMD_WRITE_INPUT, CMD_RUN, CMD_READ_OUTPUT, CMD_PING, CMD_EXIT, CMD_PROFILE,
 CMD_RUN_TO, CMD_READ_TRACE, CMD_RESET) = range(1, 11)
STATUS_OK, STATUS_BAD_CRC, STATUS_BAD_COMMAND, STATUS_BAD_ARGUMENT, STATUS_RUN_FAILED = range(5)
TIMER_KINDS = {0: "none", 1: "cycles", 2: "systick", 3: "nanoseconds"}
COMMAND_NAMES = {CMD_INFO: "INFO", CMD_WRITE_INPUT: "WRITE_INPUT", CMD_RUN: "RUN",
                 CMD_READ_OUTPUT: "READ_OUTPUT", CMD_PING: "PING", CMD_EXIT: "EXIT",
                 CMD_PROFILE: "PROFILE", CMD_RUN_TO: "RUN_TO", CMD_READ_TRACE: "READ_TRACE",
                 CMD_RESET: "RESET"}
# Zero bytes that complete the longest frame the board may be half-way through reading.
RESYNC = bytes(MAX_PAYLOAD + 8)


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
        self._tokens = 0  # barrier tokens sent (see _resync)

    def _read(self, n: int, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LinkTimeout("deadline passed")
        return self.transport.read(n, left)

    def _read_reply(self, deadline: float) -> tuple[int, int, bytes]:
        while self._read(1, deadline)[0] != RESPONSE_START:
            pass  # noise before a frame: skipped, within the deadline
        header = self._read(4, deadline)
        cmd, status, length = struct.unpack("<BBH", header)
        if length > MAX_PAYLOAD:
            raise _Corrupt
        payload = self._read(length, deadline)
        (crc,) = struct.unpack("<I", self._read(4, deadline))
        if zlib.crc32(header + payload) != crc:
            raise _Corrupt
        return cmd, status, payload

    def _resync(self, deadline: float) -> None:
        """After a lost or garbled exchange: complete any frame the board is half-way through
        reading (zero bytes), then a barrier: a PING with a fresh token. The board answers in
        order, so every reply before the token's echo is stale (a late answer to an earlier
        try, perhaps to the same command for another offset) and is dropped."""
        self._tokens += 1
        token = b"sync" + struct.pack("<I", self._tokens)
        self.transport.write(RESYNC + encode_request(CMD_PING, token))
        while True:
            try:
                rcmd, status, reply = self._read_reply(deadline)
            except _Corrupt:
                continue
            if rcmd == CMD_PING and status == STATUS_BAD_CRC:  # the barrier itself was hit
                self.transport.write(encode_request(CMD_PING, token))
            elif rcmd == CMD_PING and reply == token:
                return

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one request and return its reply payload (see the module docstring).

        Replies to other commands (left over from an earlier try) are skipped."""
        timeout = self.timeout if timeout is None else timeout
        name = COMMAND_NAMES.get(cmd, str(cmd))
        frame = encode_request(cmd, payload)
        problems = []
        for attempt in range(self.retries):
            deadline = time.monotonic() + timeout
            if attempt and problems[-1] != "the request arrived corrupted":
                try:  # the stream may hold stale or partial replies: a barrier first
                    self._resync(deadline)
                except LinkTimeout:
                    problems.append("no reply")
                    continue
                deadline = time.monotonic() + timeout
            self.transport.write(frame)
            try:
                rcmd, status, reply = self._read_reply(deadline)
                while rcmd != cmd:
                    rcmd, status, reply = self._read_reply(deadline)
            except _Corrupt:
                problems.append("a corrupted reply")
                continue
            except LinkTimeout:
                problems.append("no reply")
                continue
            if status == STATUS_BAD_CRC:
                problems.append("the request arrived corrupted")
                continue
            if status != STATUS_OK:
                names = {STATUS_BAD_COMMAND: "unknown command", STATUS_BAD_ARGUMENT: "bad argument",
                         STATUS_RUN_FAILED: "inference failed"}
                raise DeviceError(f"the board refused {name}: "
                                  f"{names.get(status, f'status {status}')}")
            return reply
        seen = ", ".join(sorted(set(problems)))
        raise DeviceError(f"{name} failed {self.retries} times ({seen}; each try waited up to "
                          f"{timeout:.1f} s): check that the board runs the edge-sdk firmware "
                          "for this model, the cable and the baud rate")

    def _reply(self, cmd: int, payload: bytes = b"", size: int | None = None,
               timeout: float | None = None) -> bytes:
        """A reply that must hold ``size`` bytes (or at least ``-size``)."""
        reply = self.request(cmd, payload, timeout)
        if size is not None and (len(reply) != size if size >= 0 else len(reply) < -size):
            raise DeviceError(f"the board's {COMMAND_NAMES.get(cmd, cmd)} reply holds "
                              f"{len(reply)} bytes, not {abs(size)}: firmware and SDK differ")
        return reply

    def info(self) -> DeviceInfo:
        r = self._reply(CMD_INFO, size=-20)
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
        result, lo, hi = struct.unpack("<iII", self._reply(CMD_RUN, size=12,
                                                          timeout=self.run_timeout))
        return RunResult(result, lo | (hi << 32))

    def read_output(self, size: int) -> bytes:
        out = bytearray()
        for off in range(0, size, MAX_PAYLOAD):
            n = min(MAX_PAYLOAD, size - off)
            out += self._reply(CMD_READ_OUTPUT, struct.pack("<IH", off, n), size=n)
        return bytes(out)

    def profile(self) -> list[int]:
        """The timer at the end of each layer of the last run (empty unless the firmware was
        built with ``EDGE_PROFILE``)."""
        r = self._reply(CMD_PROFILE, size=-4)
        (count,) = struct.unpack("<I", r[:4])
        if len(r) != 4 + 4 * count:
            raise DeviceError(f"PROFILE reply holds {len(r)} bytes for {count} layers")
        return list(struct.unpack(f"<{count}I", r[4:]))

    def run_to(self, layer: int) -> int:
        """Run until ``layer`` (a step index) has ended; the bytes of its output, which
        :meth:`read_trace` then reads (0 unless the firmware was built with ``EDGE_TRACE``)."""
        (size,) = struct.unpack("<I", self._reply(CMD_RUN_TO, struct.pack("<H", layer), size=4,
                                                  timeout=self.run_timeout))
        return size

    def read_trace(self, size: int) -> bytes:
        out = bytearray()
        for off in range(0, size, MAX_PAYLOAD):
            n = min(MAX_PAYLOAD, size - off)
            out += self._reply(CMD_READ_TRACE, struct.pack("<IH", off, n), size=n)
        return bytes(out)

    def reset(self) -> None:
        """Zero the board's arena: a model with state (an LSTM's) starts from zeros again."""
        self.request(CMD_RESET)

    def exit(self) -> None:
        self.request(CMD_EXIT)
