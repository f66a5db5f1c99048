"""Board files: the shipped ones are consistent, PDSC import, and serial-port edge cases."""

from __future__ import annotations

import os

import pytest
import yaml

from edge_sdk.cli import main
from edge_sdk.compiler.targets import TARGETS
from edge_sdk.device.transport import SerialTransport
from edge_sdk.errors import BoardError, DeviceError
from edge_sdk.project.boards import all_boards, get_board
from edge_sdk.project.generate import available_templates
from edge_sdk.project.pdsc import board_from_pdsc
from tests.conftest import ROOT, shared_model

PDSC = ROOT / "tests" / "data" / "STM32F7xx_excerpt.pdsc"


@pytest.mark.parametrize("name", sorted(all_boards()))
def test_shipped_board_is_consistent(name):
    b = get_board(name)
    assert b.cpu in TARGETS
    assert set(b.templates) <= set(available_templates())
    if b.name != "host":
        assert b.flash.size > 0 and b.ram.size > 0
        assert b.flash.origin % 4 == 0 and b.ram.origin % 4 == 0
    if "zephyr" in b.templates:
        assert b.zephyr
    if "arduino" in b.templates:
        assert b.arduino and b.arduino["fqbn"].count(":") == 2
    if "cmsis" in b.templates:
        assert b.cmsis and b.cmsis.vendor and b.cmsis.device and b.cmsis.pack


def test_zephyr_spelling_finds_the_board():
    assert get_board("nucleo_l4r5zi").name == "nucleo-l4r5zi"
    assert get_board("STM32F746G_DISCO").name == "stm32f746g-disco"


def test_pdsc_import_inherits_and_merges():
    board = board_from_pdsc(PDSC, "STM32F746NGHx")
    assert board["cpu"] == "cortex-m7" and board["clock_hz"] == 216_000_000
    assert board["memory"]["flash"] == {"origin": 0x08000000, "size": 0x100000}
    # DTCM (64 KB at 0x20000000) touches SRAM1 (256 KB at 0x20010000): one 320 KB region.
    assert board["memory"]["ram"] == {"origin": 0x20000000, "size": 0x50000}
    assert board["cmsis"] == {"vendor": "STMicroelectronics", "device": "STM32F746NGHx",
                              "pack": "Keil::STM32F7xx_DFP"}


def test_pdsc_new_style_memory_attributes():
    board = board_from_pdsc(PDSC, "stm32f746zgtx")
    assert board["memory"]["ram"] == {"origin": 0x20010000, "size": 0x40000}


def test_pdsc_unknown_device_lists_the_known_ones():
    with pytest.raises(BoardError, match="STM32F746NGHx, STM32F746ZGTx, STM32F767ZITx"):
        board_from_pdsc(PDSC, "STM32H743ZI")


def test_cli_import_then_compile_for_it(tmp_path, capsys):
    out = tmp_path / "disco.yaml"
    assert main(["boards", "--import-pdsc", str(PDSC), "STM32F767ZITx", "-o", str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    assert data["memory"]["ram"]["size"] == 0x80000
    assert get_board(str(out)).cpu == "cortex-m7"
    assert main(["boards", "--import-pdsc", str(PDSC), "STM32F767ZITx", "-o", str(out)]) == 6


def test_generate_for_an_imported_board(tmp_path, capsys):
    """An imported board has no support file: its CMSIS project says how to write one (this
    crashed with exit 70 on the template's board.cmsis.support)."""
    board = tmp_path / "f767.yaml"
    assert main(["boards", "--import-pdsc", str(PDSC), "STM32F767ZITx", "-o", str(board)]) == 0
    project = tmp_path / "proj"
    assert main(["generate", str(shared_model("ad01_int8")), "--board", str(board),
                 "--template", "cmsis", "-o", str(project)]) == 0
    readme = (project / "README.md").read_text()
    assert "cpackget add Keil::STM32F7xx_DFP" in readme
    assert "no support file yet" in readme
    assert "edge_board_" not in (project / "proj.cproject.yml").read_text()


def test_busy_serial_port_is_reported():
    """A real pseudo-terminal: a second program opening it is told the port is busy."""
    controller, device = os.openpty()
    path = os.ttyname(device)
    first = SerialTransport(path, connect_timeout=0.5)
    try:
        with pytest.raises(DeviceError, match="no other program"):
            SerialTransport(path, connect_timeout=0.5)
    finally:
        first.close()
        os.close(controller)
        os.close(device)
