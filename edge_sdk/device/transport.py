"""Byte transports: a serial port (pyserial, also ``socket://`` URLs) or a local process's pipes.

A transport only moves bytes, always with a deadline; framing and retries live in
:mod:`edge_sdk.device.protocol`.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from typing import Protocol

from edge_sdk.errors import DeviceError, UsageError


class LinkTimeout(DeviceError):
    """No (complete) reply in time: the protocol layer may resynchronise and retry."""


class Transport(Protocol):
    def read(self, n: int, timeout: float) -> bytes:
        """Read exactly ``n`` bytes or raise DeviceError when ``timeout`` seconds pass."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


def check_port_name(url: str) -> None:
    """A ``socket://HOST:PORT`` URL must name a host and a port from 1 to 65535; pyserial's own
    words for a bad one are its internals ("'debug|info|warning|error'")."""
    if not url.startswith("socket://"):
        return
    from urllib.parse import urlsplit

    where = urlsplit(url)
    try:
        port = where.port
    except ValueError:
        port = None
    if not where.hostname or port is None or not 1 <= port <= 65535:
        raise UsageError(f"--port {url}: a TCP serial port is socket://HOST:PORT, with a port "
                          "from 1 to 65535 (QEMU's UART: socket://127.0.0.1:4444)")


class SerialTransport:
    """pyserial: ``/dev/ttyACM0``, ``COM3``, or ``socket://127.0.0.1:PORT`` (QEMU's UART)."""

    def __init__(self, url: str, baudrate: int = 115200, connect_timeout: float = 10.0):
        import serial

        self.url = url
        check_port_name(url)
        # A device path is locked for us alone, so a second program (a monitor left open) is
        # reported as "busy" instead of silently stealing bytes; URLs (socket://) cannot be.
        extra = {} if "://" in url else {"exclusive": True}
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.1, **extra)
                break
            except (serial.SerialException, OSError) as err:
                if time.monotonic() > deadline:
                    raise DeviceError(
                        f"cannot open serial port {url}: {err}; check the cable/port name, "
                        "and that no other program (a serial monitor?) holds it"
                    ) from None
                time.sleep(0.1)

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        buf = bytearray()
        deadline = time.monotonic() + timeout
        while len(buf) < n:
            # Wait no longer than the deadline leaves (pyserial's own timeout, 0.1 s, would
            # overshoot a short deadline by up to that much).
            wait = min(0.1, max(deadline - time.monotonic(), 0.005))
            if abs(self._port.timeout - wait) > 0.002:
                self._port.timeout = wait
            try:
                chunk = self._port.read(n - len(buf))
            except (serial.SerialException, OSError) as err:
                raise DeviceError(f"serial link {self.url} failed: {err}") from None
            buf += chunk
            if len(buf) < n and time.monotonic() >= deadline:
                raise LinkTimeout(
                    f"the board on {self.url} did not answer within {timeout:.1f} s "
                    f"(got {len(buf)} of {n} bytes): check that it runs the edge-sdk firmware"
                )
        return bytes(buf)

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as err:
            raise DeviceError(f"serial link {self.url} failed: {err}") from None

    def close(self) -> None:
        self._port.close()


class ProcessTransport:
    """The stdin/stdout of a local process running the host build of the firmware."""

    def __init__(self, proc: subprocess.Popen):
        assert proc.stdin is not None and proc.stdout is not None
        self._proc = proc
        self._fd = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)

    def read(self, n: int, timeout: float) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise LinkTimeout(f"the host firmware did not answer within {timeout:.1f} s")
            chunk = os.read(self._fd, n - len(buf))
            if not chunk:
                code = self._proc.poll()
                raise DeviceError(f"the host firmware exited (code {code}) mid-reply")
            buf += chunk
        return bytes(buf)

    def write(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise DeviceError(
                f"the host firmware exited (code {self._proc.poll()}) before reading a request"
            ) from None

    def close(self) -> None:
        self._sel.close()
