"""The host side of the firmware's serial protocol (see ``firmware/common/edge_protocol.h``).

Frames carry a length, a CRC-32 and the request's sequence number, which the board echoes in
its reply. Every command is idempotent (writing an input chunk, running, reading an output chunk
can all be repeated with the same result), so a failed exchange is simply tried again, each try
with a fresh number:

- a corrupted reply, or a BAD_CRC answer (the board saw the request corrupted), is resent;
- no reply in time (a byte of the request or of the reply was lost) is resent after zero bytes,
  enough to complete a frame that a board whose port cannot time out may be half-way through
  reading (it answers BAD_CRC and then skips zeros while it hunts for the next start marker;
  the SDK's own ports drop such a frame by themselves after an inter-byte timeout).

Only a reply that carries this command and the number of one of its tries is taken; anything
else in the stream (a late reply to an earlier try, or to a command that gave up) is dropped,
so a reply can never be taken for another request's.

RUN and RUN_TO are answered STARTED at once and then with their result: the client waits
``timeout`` for the notice and ``run_timeout`` more for the result, so a lost RUN request costs a
reply's timeout, not an inference's. It sends nothing while the board runs (a polled UART would
drop it), so a garbled notice is waited out as if it had come.

Each try waits a quarter of ``timeout`` for its reply (plus ``run_timeout`` for RUN and
RUN_TO, once the board said STARTED); a reply to any of the command's tries is taken, so a reply
that is merely slow still counts. A command gives up after ``retries`` whole ``timeout``s with
no reply at all (a board gone silent) or ``tries`` tries in all (a line so noisy that little
gets through), and, whatever its tries, at its deadline: ``2 * timeout`` from its first try
(RUN and RUN_TO: ``2 * (timeout + run_timeout)``, room for one inference to be run again after
its result was lost). No retry path waits past it: a board that hangs mid-inference, or keeps
saying STARTED and never answers, or streams bytes that never make the awaited reply, is a
clean error by then. On a noisy link the data chunks shrink, so that
each frame is less likely to be hit. A reply of the wrong length is a DeviceError, never a crash.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from edge_sdk.device.transport import LinkTimeout, Transport
from edge_sdk.errors import DeviceError

REQUEST_START = 0xA5
RESPONSE_START = 0x5A
MAX_PAYLOAD = 1024

(CMD_INFO, CMD_WRITE_INPUT, CMD_RUN, CMD_READ_OUTPUT, CMD_PING, CMD_EXIT, CMD_PROFILE,
 CMD_RUN_TO, CMD_READ_TRACE, CMD_RESET) = range(1, 11)
(STATUS_OK, STATUS_BAD_CRC, STATUS_BAD_COMMAND, STATUS_BAD_ARGUMENT, STATUS_RUN_FAILED,
 STATUS_STARTED) = range(6)
TIMER_KINDS = {0: "none", 1: "cycles", 2: "systick", 3: "nanoseconds", 4: "clock",
               5: "systick-emulated"}
COMMAND_NAMES = {CMD_INFO: "INFO", CMD_WRITE_INPUT: "WRITE_INPUT", CMD_RUN: "RUN",
                 CMD_READ_OUTPUT: "READ_OUTPUT", CMD_PING: "PING", CMD_EXIT: "EXIT",
                 CMD_PROFILE: "PROFILE", CMD_RUN_TO: "RUN_TO", CMD_READ_TRACE: "READ_TRACE",
                 CMD_RESET: "RESET"}
PROTOCOL_VERSION = 2
# Zero bytes that complete the longest frame the board may be half-way through reading.
RESYNC = bytes(MAX_PAYLOAD + 8)
# How long a reply frame may take once its start byte came: FRAME_GAP, plus FRAME_BYTE per
# payload byte (2 ms: a byte at 4800 baud).
FRAME_GAP, FRAME_BYTE = 0.5, 0.002
MIN_CHUNK = 16  # the smallest data chunk a noisy link shrinks to
TRIES_PER_TIMEOUT = 4  # a try waits timeout / 4 for its reply


class _Corrupt(Exception):
    pass


class LinkFailed(DeviceError):
    """A command ran out of tries: ``tries`` of them, the last ``silent`` with no reply at all
    (a board that is gone, not a noisy line, if that is every try)."""

    def __init__(self, message: str, tries: int, silent: int) -> None:
        super().__init__(message)
        self.tries, self.silent = tries, silent


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


def encode_request(cmd: int, payload: bytes = b"", seq: int = 0) -> bytes:
    body = struct.pack("<BBH", cmd, seq, len(payload)) + payload
    return bytes([REQUEST_START]) + body + struct.pack("<I", zlib.crc32(body))


class Client:
    def __init__(self, transport: Transport, timeout: float = 10.0, run_timeout: float = 120.0,
                 retries: int = 3, tries: int = 8):
        """``retries``: tries in a row with no reply at all before the board is called lost;
        ``tries``: tries in all when it answers, garbled (a noisy line, not a dead one)."""
        self.transport = transport
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.retries = retries
        self.tries = tries
        self._chunk = MAX_PAYLOAD  # data bytes per chunk (see _chunked)
        self._clean = 0  # chunks in a row that went through at the first try
        self._last_tries = 1
        self._seq = 0  # the last request's sequence number

    def _read(self, n: int, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LinkTimeout("deadline passed")
        return self.transport.read(n, left)

    def _read_reply(self, deadline: float) -> tuple[int, int, int, bytes]:
        """The next well-formed reply: (command, sequence number, status, payload)."""
        while self._read(1, deadline)[0] != RESPONSE_START:
            pass  # noise before a frame: skipped, within the deadline
        # A frame, once begun, comes in one go: if its bytes stop (one was lost, so the length
        # never completes) it is given up well before the deadline, which may be an inference's.
        frame_end = min(deadline, time.monotonic() + FRAME_GAP)
        try:
            header = self._read(5, frame_end)
            cmd, seq, status, length = struct.unpack("<BBBH", header)
            if length > MAX_PAYLOAD:
                raise _Corrupt
            frame_end = min(deadline, frame_end + length * FRAME_BYTE)
            payload = self._read(length, frame_end)
            (crc,) = struct.unpack("<I", self._read(4, frame_end))
        except LinkTimeout:
            if time.monotonic() >= deadline:
                raise
            raise _Corrupt from None
        if zlib.crc32(header + payload) != crc:
            raise _Corrupt
        return cmd, seq, status, payload

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None,
                work: float | None = None, tries: int | None = None) -> bytes:
        """Send one request and return its reply payload (see the module docstring).

        ``work``: for RUN and RUN_TO, the seconds the command itself may take once the board has
        said STARTED; the first reply is still due within ``timeout``. ``tries``: fewer tries
        than the client's own (a chunk that is resent smaller instead)."""
        timeout = self.timeout if timeout is None else timeout
        name = COMMAND_NAMES.get(cmd, str(cmd))
        seqs: set[int] = set()  # the numbers of this request's tries
        problems: list[str] = []
        silent = started = 0
        begun = time.monotonic()
        budget = 2 * (timeout + (work or 0.0))
        end = begun + budget  # the command's own deadline: no try waits past it
        # A try waits a quarter of --timeout: a reply that is only slow is still taken when it
        # comes (any try's reply is), and a lost one costs a quarter, so a noisy line gets its
        # retries within the command's deadline. Silence counts in whole --timeouts.
        try_wait = timeout / TRIES_PER_TIMEOUT
        while (len(problems) < (tries or self.tries)
               and silent < self.retries * TRIES_PER_TIMEOUT and time.monotonic() < end):
            if problems and problems[-1] == "no reply":
                self.transport.write(RESYNC)
            seq = self._next_seq()
            seqs.add(seq)
            self.transport.write(encode_request(cmd, payload, seq))
            deadline = min(time.monotonic() + try_wait, end)
            heard = False  # anything came back: the board is alive (and maybe running)
            running = False  # it said STARTED for this try: its deadline is the inference's
            try:
                while True:
                    try:
                        rcmd, rseq, status, reply = self._read_reply(deadline)
                    except _Corrupt:
                        if work is None or heard:
                            raise
                        # Perhaps the STARTED notice, garbled: resending now would reach a busy
                        # board and be lost, so wait for the answer as if it had started.
                        heard, deadline = True, min(time.monotonic() + work, end)
                        continue
                    heard = True
                    # Ours: this command, one of its tries; an earlier try's BAD_CRC is moot.
                    if rcmd != cmd or rseq not in seqs or (rseq != seq and
                                                            status == STATUS_BAD_CRC):
                        continue
                    if status == STATUS_STARTED and work is not None:
                        started += 1
                        if not running:  # a repeated notice does not extend the wait
                            running, deadline = True, min(time.monotonic() + work, end)
                        continue
                    break
            except _Corrupt:
                problems.append("a corrupted reply")
                continue
            except LinkTimeout:
                problems.append("no reply" if not heard else "an incomplete reply")
                silent = silent + 1 if not heard else 0
                continue
            if status == STATUS_BAD_CRC:
                problems.append("the request arrived corrupted")
                silent = 0
                continue
            if status != STATUS_OK:
                names = {STATUS_BAD_COMMAND: "unknown command", STATUS_BAD_ARGUMENT: "bad argument",
                         STATUS_RUN_FAILED: "inference failed"}
                raise DeviceError(f"the board refused {name}: "
                                  f"{names.get(status, f'status {status}')}")
            self._last_tries = len(problems) + 1
            return reply
        seen = ", ".join(sorted(set(problems))) or "no reply"
        waited = time.monotonic() - begun
        if started:
            raise LinkFailed(f"{name}: the board started the inference ({started} STARTED "
                              f"notice(s)) but no result came in {waited:.1f} s ({len(problems)} "
                              f"tries: {seen}): the model may hang the board, or need more than "
                              f"--run-timeout {work:g} s", tries=len(problems), silent=silent)
        raise LinkFailed(f"{name} failed after {len(problems)} tries in {waited:.1f} s ({seen}; "
                          f"the limit is {budget:.1f} s, twice --timeout {timeout:g} s): check "
                          "that the board runs the edge-sdk firmware for this model (protocol "
                          "version 2: rebuild older firmware), the cable and the baud rate",
                          tries=len(problems), silent=silent)

    def _chunked(self, cmd: int, head: Callable[[int, int], bytes], size: int,
                 limit: int = MAX_PAYLOAD) -> bytes:
        """Move ``size`` bytes in chunks (WRITE_INPUT, READ_OUTPUT, READ_TRACE): ``head(offset,
        n)`` makes each request's payload. On a noisy link the chunks shrink (a frame of fewer
        bytes is less likely to be hit), halving after a chunk that needed a retry or failed
        twice, down to 16 bytes, where it gets every try; 32 clean chunks in a row double them
        again. The tries stay bounded: 2 per size above 16 bytes (6 sizes), then the client's."""
        out = bytearray()
        off = 0
        quiet = 0  # tries in a row, across sizes, with no reply at all: a board gone
        while off < size:
            n = min(self._chunk, limit, size - off)
            if n > MIN_CHUNK:  # a chunk that fails twice is resent at half the size
                try:
                    reply = self.request(cmd, head(off, n), tries=2)
                except LinkFailed as err:
                    quiet = quiet + err.silent if err.silent == err.tries else err.silent
                    if quiet >= self.retries * TRIES_PER_TIMEOUT:
                        raise
                    self._chunk, self._clean = max(MIN_CHUNK, n // 2), 0
                    continue
                quiet = 0
            else:
                reply = self.request(cmd, head(off, n))
            if cmd != CMD_WRITE_INPUT and len(reply) != n:
                raise DeviceError(f"the board's {COMMAND_NAMES[cmd]} reply holds {len(reply)} "
                                  f"bytes, not {n}: firmware and SDK differ")
            out += reply
            off += n
            if self._last_tries > 1:
                self._chunk, self._clean = max(MIN_CHUNK, self._chunk // 2), 0
            else:
                self._clean += 1
                if self._clean >= 32 and self._chunk < MAX_PAYLOAD:
                    self._chunk, self._clean = min(MAX_PAYLOAD, self._chunk * 2), 0
        return bytes(out)

    def _reply(self, cmd: int, payload: bytes = b"", size: int | None = None,
               work: float | None = None) -> bytes:
        """A reply that must hold ``size`` bytes (or at least ``-size``)."""
        reply = self.request(cmd, payload, work=work)
        if size is not None and (len(reply) != size if size >= 0 else len(reply) < -size):
            raise DeviceError(f"the board's {COMMAND_NAMES.get(cmd, cmd)} reply holds "
                              f"{len(reply)} bytes, not {abs(size)}: firmware and SDK differ")
        return reply

    def info(self) -> DeviceInfo:
        r = self._reply(CMD_INFO, size=-20)
        version, kind = r[0], r[1]
        if version != PROTOCOL_VERSION:
            raise DeviceError(f"the board's firmware speaks protocol version {version}, this SDK "
                              f"{PROTOCOL_VERSION}: rebuild and flash the firmware with this "
                              "edge-sdk")
        inp, outp, arena, hz = struct.unpack("<IIII", r[4:20])
        return DeviceInfo(version, r[20:].decode("utf-8", "replace"), inp, outp, arena,
                          TIMER_KINDS.get(kind, "none"), hz)

    def ping(self, data: bytes = b"edge") -> bytes:
        return self.request(CMD_PING, data)

    def write_input(self, data: bytes) -> None:
        # The payload holds a 4-byte offset: a chunk carries at most MAX_PAYLOAD - 4 bytes.
        self._chunked(CMD_WRITE_INPUT, lambda off, n: struct.pack("<I", off) + data[off : off + n],
                      len(data), MAX_PAYLOAD - 4)

    def run(self) -> RunResult:
        result, lo, hi = struct.unpack("<iII", self._reply(CMD_RUN, size=12,
                                                          work=self.run_timeout))
        return RunResult(result, lo | (hi << 32))

    def read_output(self, size: int) -> bytes:
        return self._chunked(CMD_READ_OUTPUT, lambda off, n: struct.pack("<IH", off, n), size)

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
                                                  work=self.run_timeout))
        return size

    def read_trace(self, size: int) -> bytes:
        return self._chunked(CMD_READ_TRACE, lambda off, n: struct.pack("<IH", off, n), size)

    def reset(self) -> None:
        """Zero the board's arena: a model with state (an LSTM's) starts from zeros again."""
        self.request(CMD_RESET)

    def exit(self) -> None:
        self.request(CMD_EXIT)
