#!/usr/bin/env python3
"""Coverage-guided fuzz target (atheris) for the serial client's frame parser.

    python3 tests/fuzz/fuzz_frames.py [libFuzzer flags] [CORPUS_DIR...]

Each input is what a board sends back: the client runs a few commands (INFO, PING, RUN,
READ_OUTPUT, PROFILE) against it. A command may succeed or raise ``DeviceError``; nothing
else may escape, and no read may wait (the fake link ends the stream with a timeout at once,
as a silent board does after ``--timeout``).
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["edge_sdk"]):
    from edge_sdk.device.protocol import Client
    from edge_sdk.device.transport import LinkTimeout
    from edge_sdk.errors import DeviceError


class Replay:
    """A link that answers with the fuzz input, byte by byte, then goes silent."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int, timeout: float) -> bytes:
        if self.pos + n > len(self.data):
            self.pos = len(self.data)
            raise LinkTimeout("no reply (fuzz input exhausted)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def test_one_input(data: bytes) -> None:
    client = Client(Replay(data), timeout=5.0, run_timeout=5.0, retries=2)
    for command in (client.info, client.ping, client.run, lambda: client.read_output(1500),
                    client.profile):
        with contextlib.suppress(DeviceError):
            command()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
