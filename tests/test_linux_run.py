"""`edge-sdk run` on Linux boards: the same bundle `deploy` ships, run on this machine natively
(linux-x86_64) or under the board's qemu-user emulator (the Pi boards); boards this machine
cannot run say so in one line."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.errors import EdgeSDKError
from tests.conftest import random_inputs, reference, shared_model


def test_run_on_linux_x86_64_is_bit_exact_and_timed():
    path = shared_model("kws_ref_model")
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 3, seed=4)
    result = edge_sdk.run(graph, board="linux-x86_64", inputs=x)
    np.testing.assert_array_equal(result.outputs, reference(path, x))
    assert result.report["run_prefix"] == ""
    assert result.report["timer"]["latency_ns"] > 0 and not result.report["timer"]["emulated"]


@pytest.mark.parametrize("board", ["rpi4", "linux-armv7"])
def test_run_on_a_pi_board_goes_through_its_emulator(board):
    emulator = edge_sdk.api.get_board(board).linux["emulator"]
    if shutil.which(emulator) is None:
        pytest.skip(f"{emulator} is not installed (./setup.sh installs it)")
    path = shared_model("ad01_int8")
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 2, seed=5)
    result = edge_sdk.run(graph, board=board, inputs=x)
    np.testing.assert_array_equal(result.outputs, reference(path, x))
    assert result.report["run_prefix"] == emulator and result.report["timer"]["emulated"]
    # Emulated time says nothing about the board: not measured, and not reported as a figure.
    assert result.report["timer"]["latency_ns"] is None


def test_a_board_this_machine_cannot_run_says_where_it_can(capsys):
    with pytest.raises(EdgeSDKError, match=r"jetson-orin-nano .*edge-sdk deploy"):
        edge_sdk.run(shared_model("ad01_int8"), board="jetson-orin-nano")
    assert main(["run", str(shared_model("ad01_int8")), "--board", "jetson-orin-nano"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deploy" in err[0]


def test_cli_run_on_linux_x86_64_checks_against_litert(capsys, tmp_path):
    out = tmp_path / "y.npy"
    assert main(["run", str(shared_model("ad01_int8")), "--board", "linux-x86_64", "--check",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bit-exact against LiteRT" in printed
    # The latency in a unit of time, and how it was taken (it was "ns per inference [N]").
    assert re.search(r"\d+\.\d+ (µs|ms) per inference \(median of 10 timed runs", printed)
    assert np.load(out).size == 640


@pytest.mark.parametrize("threads", [2, 3])
def test_rows_split_over_threads_stay_bit_exact(threads):
    """Every layer's rows shared by 2 or 3 threads (3 on a 2-core machine oversubscribes: the
    pool must still hand out every row exactly once)."""
    path = shared_model("pretrainedResnet_quant")
    graph = edge_sdk.load(path)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, 2, seed=6)
    result = edge_sdk.run(graph, board="linux-x86_64", inputs=x, threads=threads)
    assert result.report["threads"] == threads
    np.testing.assert_array_equal(result.outputs, reference(path, x))


def test_threads_option_is_checked(capsys):
    with pytest.raises(SystemExit):
        main(["run", str(shared_model("ad01_int8")), "--board", "linux-x86_64",
              "--threads", "65"])
    assert "0 (one per CPU) to 64" in capsys.readouterr().err
