"""The serial link under faults: a TCP proxy between the client and QEMU's UART drops and
corrupts bytes at a chosen per-byte rate, in both directions (``tests/faultproxy.py``, which
``benchmarks/faults.py`` uses for the full table). The firmware is the one edge-sdk generates
for the Cortex-M4 board; the client is the one `run` and `run-remote` use.

What must hold: no wrong result is ever returned (every fault is detected by the framing and
CRC, and every reply is matched to its request by number), no inference waits past the bound
the client's deadlines give, and at a 1e-3 fault rate at least 99% of inferences succeed (a
lost byte is resent, in smaller chunks while the line stays noisy).
"""

from __future__ import annotations

import pytest

import edge_sdk
from edge_sdk.project.boards import get_board
from tests.conftest import random_inputs, reference
from tests.faultproxy import measure_link
from tests.test_ops import CASES


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


def inferences(board_firmware, rate: float, count: int, seed: int):
    model, board, elf = board_firmware
    xs = random_inputs((2, 24), count, seed=seed)
    return measure_link(board, elf, xs, reference(model, xs), rate, seed)


@pytest.mark.slow
def test_one_fault_in_a_thousand_bytes(board_firmware):
    fig = inferences(board_firmware, 1e-3, 200, seed=1)
    print(fig.as_dict())
    assert fig.faults > 0 and fig.wrong == 0 and fig.hung == 0
    assert fig.worst_command <= 2.0 + 0.1  # no command waits past its deadline
    assert fig.succeeded >= 0.99 * 200


@pytest.mark.slow
def test_one_fault_in_a_hundred_bytes(board_firmware):
    fig = inferences(board_firmware, 1e-2, 30, seed=2)
    print(fig.as_dict())
    assert fig.faults > 0 and fig.wrong == 0 and fig.hung == 0
    assert fig.worst_command <= 2.0 + 0.1  # no command waits past its deadline
