"""``edge-sdk monitor``: print what a board sends on its serial port (no TVM needed)."""

from __future__ import annotations

import sys
import time

from edge_sdk.device.transport import SerialTransport
from edge_sdk.errors import DeviceError


def monitor(port: str, seconds: float | None = None, baudrate: int = 115200, out=None) -> None:
    """Copy what the board prints to ``out`` (stdout) until ``seconds`` pass or Ctrl-C."""
    out = out or sys.stdout
    transport = SerialTransport(port, baudrate=baudrate)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                chunk = transport.read(1, timeout=0.2)
            except DeviceError as err:
                if "did not answer" in str(err):
                    continue
                raise
            text = chunk.decode("utf-8", "replace")
            if text.isprintable() or text in "\r\n\t":
                out.write(text)
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        transport.close()
