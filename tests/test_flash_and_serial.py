"""Flash runners (exact commands, dry run), the UF2 bootloader path, and the serial tools
(`monitor`, `run-remote`) against generated firmware running in QEMU."""

from __future__ import annotations

import re
import shlex
import subprocess

import numpy as np
import pytest

import edge_sdk
from edge_sdk.cli import main
from edge_sdk.device.launch import qemu_command
from edge_sdk.device.runners import execute, plan_flash, uf2_blocks, uf2_decode
from edge_sdk.errors import DeviceError
from edge_sdk.project.boards import get_board
from tests.conftest import qemu_serving, random_inputs, reference, shared_model


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    kws = edge_sdk.load(shared_model("kws_ref_model"))
    root = tmp_path_factory.mktemp("p")
    return {
        (tpl, board): edge_sdk.generate(kws, board, root / f"{tpl}_{board}", template=tpl)
        for tpl, board in [("cmsis", "stm32f746g-disco"), ("zephyr", "nucleo-l4r5zi"),
                           ("baremetal", "mps2-an386"), ("zephyr", "rpi-pico"),
                           ("cmsis", "nrf52840dk")]
    }


def test_openocd_command(projects):
    p = projects[("cmsis", "stm32f746g-disco")]
    plan = plan_flash(p, "openocd")
    name = "cmsis_stm32f746g_disco"  # the project name comes from the directory name
    elf = p / "out" / name / "stm32f746g_disco" / "Release" / f"{name}.elf"
    assert plan.commands == [["openocd", "-f", "board/stm32f7discovery.cfg", "-c",
                              f"program {elf} verify reset exit"]]


def test_openocd_with_interface_and_target_configs(projects):
    plan = plan_flash(projects[("cmsis", "nrf52840dk")], "openocd")
    assert plan.commands[0][:5] == ["openocd", "-f", "interface/jlink.cfg", "-f",
                                    "target/nrf52.cfg"]


def test_pyocd_command_and_target_override(projects):
    p = projects[("cmsis", "stm32f746g-disco")]
    assert plan_flash(p, "pyocd").commands[0][:4] == ["pyocd", "load", "--target", "stm32f746ngh"]
    assert plan_flash(p, "pyocd", target="stm32f746xg").commands[0][3] == "stm32f746xg"


def test_west_command_only_for_zephyr(projects):
    p = projects[("zephyr", "nucleo-l4r5zi")]
    assert plan_flash(p, "west").commands == [["west", "flash", "--build-dir", str(p / "build")]]
    with pytest.raises(edge_sdk.EdgeSDKError, match="flashes Zephyr projects"):
        plan_flash(projects[("cmsis", "stm32f746g-disco")], "west")


def test_default_runner_comes_from_the_board(projects):
    assert plan_flash(projects[("cmsis", "stm32f746g-disco")]).runner == "openocd"
    assert plan_flash(projects[("baremetal", "mps2-an386")]).runner == "qemu"


def test_qemu_runner_command(projects):
    p = projects[("baremetal", "mps2-an386")]
    plan = plan_flash(p, "qemu", port="5000")
    assert plan.commands == [qemu_command(get_board("mps2-an386"), p / "build" / "app.elf", 5000)]


def test_cli_dry_run_prints_pasteable_commands(projects, capsys):
    p = projects[("cmsis", "stm32f746g-disco")]
    assert main(["flash", str(p), "--runner", "openocd", "--dry-run"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert shlex.split(line) == plan_flash(p, "openocd").commands[0]


def test_runner_not_configured_for_board(projects):
    with pytest.raises(edge_sdk.EdgeSDKError, match="its runners: pyocd, openocd, west"):
        plan_flash(projects[("cmsis", "stm32f746g-disco")], "serial")


def test_missing_flash_tool_says_how_to_install(projects, tmp_path, monkeypatch, capsys):
    p = projects[("cmsis", "stm32f746g-disco")]
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["flash", str(p), "--runner", "openocd", "--file", str(elf)])
    assert code == 4 and "apt-get install openocd" in capsys.readouterr().err


def test_flash_before_build_is_refused(projects, capsys):
    code = main(["flash", str(projects[("cmsis", "stm32f746g-disco")]), "--runner", "openocd"])
    assert code == 6 and "build the project first" in capsys.readouterr().err


def test_linux_boards_point_to_deploy(tmp_path):
    project = edge_sdk.generate(edge_sdk.load(shared_model("ad01_int8")), "rpi4", tmp_path / "p")
    assert (project / "model" / "kernels.o").exists() and (project / "CMakeLists.txt").exists()
    with pytest.raises(edge_sdk.EdgeSDKError, match="edge-sdk deploy"):
        plan_flash(project)


def test_uf2_round_trip():
    data = bytes(range(256)) * 3 + b"tail"
    blob = uf2_blocks(data, 0x10000000, 0xE48BFF56)
    assert len(blob) == 4 * 512
    base, back = uf2_decode(blob)
    assert base == 0x10000000 and back[: len(data)] == data


def test_uf2_runner_writes_to_a_bootloader_drive(projects, tmp_path):
    """A UF2 drive is a FAT directory with INFO_UF2.TXT; the runner converts the ELF and copies."""
    elf = tmp_path / "app.elf"
    src = tmp_path / "app.c"
    src.write_text("const unsigned char blob[600] = {1, 2, 3};\n"
                   "void _start(void) { for (;;) {} }\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-nostdlib",
                    "-Wl,-Ttext=0x10000000", str(src), "-o", str(elf)], check=True)
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    board = get_board("rpi-pico")
    plan = plan_flash(projects[("zephyr", "rpi-pico")], "serial", port=str(drive), file=elf)
    with pytest.raises(DeviceError, match="not a UF2 bootloader drive"):
        execute(plan, board, elf)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nBoard-ID: RPI-RP2\n")
    execute(plan, board, elf)
    base, data = uf2_decode((drive / "EDGE_SDK.UF2").read_bytes())
    assert base == board.flash.origin
    assert data.startswith(plan.uf2[0].read_bytes())


def test_monitor_on_missing_port(capsys):
    code = main(["monitor", "--port", "/dev/ttyEDGE_NOPE", "--seconds", "0.2"])
    assert code == 5 and "cannot open serial port" in capsys.readouterr().err


@pytest.mark.slow
def test_generated_firmware_boots_prints_and_serves_in_qemu(tmp_path, capsys):
    """generate -> build -> QEMU; monitor shows the boot line, run-remote runs new inputs."""
    model = shared_model("kws_ref_model")
    project = tmp_path / "fw"
    assert main(["generate", str(model), "--board", "mps2-an386", "-o", str(project)]) == 0
    assert main(["build", str(project)]) == 0
    with qemu_serving(get_board("mps2-an386"), project / "build" / "app.elf") as port:
        capsys.readouterr()
        assert main(["monitor", "--port", f"socket://127.0.0.1:{port}", "--seconds", "3"]) == 0
        line = capsys.readouterr().out
        m = re.search(r"edge-sdk: kws_ref_model: top class (\d+) \(score (-?\d+)\), (\d+) ticks",
                      line)
        assert m, line
        expected = reference(model, edge_sdk.api.default_input(edge_sdk.load(model))[None])
        assert int(m.group(1)) == int(np.argmax(expected)) and int(m.group(2)) == expected.max()

        x = random_inputs((1, 49, 10, 1), 2, seed=9)
        np.save(tmp_path / "x.npy", x)
        assert main(["run-remote", "--port", f"socket://127.0.0.1:{port}", "--model", str(model),
                     "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
        # No --board: the firmware itself says its timer is an emulator's (its cycle counter
        # never moves), so QEMU's ticks are called instructions, not "cycles at 25 MHz".
        said = capsys.readouterr().out
        assert "instructions per inference" in said and "MHz" not in said, said
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy").reshape(2, 1, 12),
                                      reference(model, x))

        # The board runs kws; asking it to be ad01 is refused with both names.
        np.save(tmp_path / "z.npy", random_inputs((1, 640), 1))
        code = main(["run-remote", "--port", f"socket://127.0.0.1:{port}", "--model",
                     str(shared_model("ad01_int8")), "--input", str(tmp_path / "z.npy")])
        assert code == 5 and "runs model 'kws_ref_model', not 'ad01_int8'" in \
            capsys.readouterr().err
