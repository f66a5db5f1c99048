"""The serial protocol against the real firmware (host build): framing, CRC, bounds."""

from __future__ import annotations

import struct
import time

import pytest

import edge_sdk
from edge_sdk.device import protocol as p
from edge_sdk.device.launch import open_host
from edge_sdk.frontend.tflite import parse
from edge_sdk.project.boards import get_board
from edge_sdk.project.build import build_project
from edge_sdk.project.generate import generate_project
from tests.test_ops import CASES


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    graph = parse(CASES["fc_batch2"](), name="proto")
    compiled = edge_sdk.compile(graph)
    project = generate_project(compiled, get_board("host"), tmp_path_factory.mktemp("fw") / "p")
    return build_project(project, get_board("host"), compiled.name).executable


def test_info_and_ping(firmware):
    with open_host(firmware) as dev:
        info = dev.info()
        assert (info.model, info.input_size, info.output_size) == ("proto", 48, 14)
        assert info.timer_kind == "nanoseconds"
        assert dev.ping(b"\x00\xffhello") == b"\x00\xffhello"


def test_corrupted_request_is_reported_and_retried(firmware):
    with open_host(firmware) as dev:
        frame = bytearray(p.encode_request(p.CMD_PING, b"abc"))
        frame[5] ^= 0xFF  # flip a payload byte: the CRC no longer matches
        dev.transport.write(bytes(frame))
        _, _, status, _ = dev._read_reply(time.monotonic() + 2.0)  # a deadline
        assert status == p.STATUS_BAD_CRC
        assert dev.ping(b"ok") == b"ok"  # the link is still in sync


def test_out_of_range_requests_are_refused(firmware):
    with open_host(firmware) as dev:
        with pytest.raises(edge_sdk.EdgeSDKError, match="bad argument"):
            dev.request(p.CMD_WRITE_INPUT, struct.pack("<I", 40) + bytes(16))
        with pytest.raises(edge_sdk.EdgeSDKError, match="bad argument"):
            dev.request(p.CMD_READ_OUTPUT, struct.pack("<IH", 10, 10))
        with pytest.raises(edge_sdk.EdgeSDKError, match="unknown command"):
            dev.request(0x7F)


def test_noise_before_a_frame_is_skipped(firmware):
    with open_host(firmware) as dev:
        dev.transport.write(b"\x00\x13garbage")
        assert dev.ping(b"x") == b"x"


def test_a_request_cut_short_is_dropped_after_the_interbyte_timeout(firmware):
    """A frame whose bytes stop coming is dropped after EDGE_INTERBYTE_TIMEOUT_MS (200 ms) and
    answered BAD_CRC under its own command and number (the host resends at once), so the next
    request is read whole: before, the board took the next request's first bytes as the rest
    of the cut one and answered BAD_CRC for both."""
    with open_host(firmware) as dev:
        dev.transport.write(p.encode_request(p.CMD_PING, b"lost", seq=1)[:6])
        time.sleep(0.5)
        dev.transport.write(p.encode_request(p.CMD_PING, b"next", seq=2))
        deadline = time.monotonic() + 2.0
        assert dev._read_reply(deadline) == (p.CMD_PING, 1, p.STATUS_BAD_CRC, b"")
        assert dev._read_reply(deadline) == (p.CMD_PING, 2, p.STATUS_OK, b"next")


def test_a_noise_start_byte_costs_only_the_timeout(firmware):
    """A stray start byte right before a request makes the board read a wrong header (command
    0xA5, a 263-byte payload); when the bytes stop coming it answers that BAD_CRC, scans what
    it took for the next start byte and answers the request behind it, with no help from the
    host (before, it waited for a payload that never came)."""
    with open_host(firmware) as dev:
        frame = p.encode_request(p.CMD_PING, b"\x01", seq=7)
        start = time.monotonic()
        dev.transport.write(bytes([p.REQUEST_START]) + frame)
        deadline = time.monotonic() + 3.0
        assert dev._read_reply(deadline) == (p.REQUEST_START, p.CMD_PING, p.STATUS_BAD_CRC, b"")
        assert dev._read_reply(deadline) == (p.CMD_PING, 7, p.STATUS_OK, b"\x01")
        assert time.monotonic() - start < 2.0
        assert dev.ping(b"ok") == b"ok"


def test_run_budget_follows_the_model_and_the_clock():
    """RUN's wait: 10 s plus 200 cycles per MAC at the board's clock (QEMU and host builds at
    20 MHz of host time); a model whose kernels carry no MAC count gets 120 s."""
    from edge_sdk.device.launch import run_budget

    qemu, real = get_board("mps2-an386"), get_board("stm32f746g-disco")
    assert run_budget(0, qemu) == 120.0
    assert run_budget(1_000_000, qemu) == 10.0 + 200 * 1_000_000 / 20e6
    assert real.emulator is None and real.clock_hz > 0
    assert run_budget(5_000_000, real) == 10.0 + 200 * 5_000_000 / real.clock_hz
    # TVM's unscheduled Relax kernels: at least the 120 s they had before they counted MACs.
    assert run_budget(1_000_000, qemu, unscheduled=True) == 120.0
    assert run_budget(20_000_000_000, qemu, unscheduled=True) == run_budget(20_000_000_000, qemu)
