"""Flash runners: put a built project on a board.

Each runner turns (project, board, options) into a :class:`FlashPlan` — the exact commands it
will run, and how the result is verified — so that ``--dry-run`` prints precisely what a real run
executes. Runners check that their tool is installed and say how to install it when it is not.

- ``openocd``: ``program FILE verify reset exit`` (OpenOCD verifies by reading flash back).
- ``pyocd``: ``pyocd load`` (pyOCD's flash algorithm; no separate read-back step).
- ``west``: ``west flash`` for Zephyr projects (the board's runner decides how it verifies).
- ``serial``: the board's serial/USB bootloader; RP2040's UF2 drive is implemented (the UF2
  file is written to the drive, then the drive's file list is checked).
- ``qemu``: emulated boards: start QEMU with the UART on a TCP port (Ctrl-C stops it).
- ``arduino``: Arduino library projects: ``arduino-cli compile --upload`` of the library's
  example sketch to the board on ``--port`` (the default for those projects).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edge_sdk.errors import DeviceError, ToolchainError, UsageError
from edge_sdk.project.boards import Board, get_board

INSTALL = {
    "openocd": "apt-get install openocd",
    "pyocd": "pip install pyocd",
    "west": "pip install west (and a Zephyr workspace)",
    "qemu-system-arm": "apt-get install qemu-system-arm (or ./setup.sh)",
    "arm-none-eabi-objcopy": "apt-get install gcc-arm-none-eabi (or ./setup.sh)",
    "arduino-cli": "the Arduino CLI (curl -fsSL https://raw.githubusercontent.com/arduino/"
                   "arduino-cli/master/install.sh | sh) and the board's core (arduino-cli core "
                   "install ...)",
}
RUNNERS = ("openocd", "pyocd", "west", "serial", "qemu", "arduino")


@dataclass
class FlashPlan:
    runner: str
    commands: list[list[str]] = field(default_factory=list)
    firmware: Path | None = None
    verify: str = ""
    uf2: tuple[Path, Path] | None = None  # (firmware binary, UF2 drive) for the UF2 bootloader


def project_meta(project: Path) -> dict:
    manifest = project / "edge_project.json"
    if not manifest.is_file():
        raise UsageError(f"{project} is not an edge-sdk project (no edge_project.json)")
    return json.loads(manifest.read_text(encoding="utf-8"))


def firmware_file(project: Path, meta: dict) -> Path:
    """Where the project's build leaves its ELF file."""
    template = meta["template"]
    if template == "baremetal":
        return project / "build" / "app.elf"
    if template == "zephyr":
        return project / "build" / "zephyr" / "zephyr.elf"
    if template == "cmsis":
        board = get_board(meta["board"]).name.replace("-", "_")
        name = meta["project"]
        return project / "out" / name / board / "Release" / f"{name}.elf"
    raise UsageError(f"{template} projects have no ELF file of their own to flash")


def _settings(board: Board, runner: str) -> dict:
    return dict((board.runners or {}).get(runner) or {})


def plan_flash(project: Path, runner: str | None = None, port: str | None = None,
               file: Path | None = None, target: str | None = None) -> FlashPlan:
    meta = project_meta(project)
    board = get_board(meta["board"])
    if meta["template"] == "arduino":
        return _arduino_plan(project, meta, board, runner, port)
    if runner == "arduino":
        raise UsageError(f"the arduino runner uploads Arduino library projects; this is a "
                         f"{meta['template']} project")
    runner = runner or board.default_runner
    if board.linux is not None:
        raise UsageError(f"{board.name} runs Linux: install and run with `edge-sdk deploy MODEL "
                         f"--board {board.name} --host user@address` (SSH), not flash")
    if runner not in RUNNERS:
        raise UsageError(f"unknown runner '{runner}'; runners: {', '.join(RUNNERS)}")
    if board.runners is not None and runner not in board.runners and runner != "west":
        offered = ", ".join(k for k in board.runners if k != "default")
        raise UsageError(f"runner '{runner}' is not set up for {board.name}; "
                         f"its runners: {offered}")
    settings = _settings(board, runner)
    if runner == "west":
        if meta["template"] != "zephyr":
            raise UsageError("the west runner flashes Zephyr projects; this is a "
                             f"{meta['template']} project")
        return FlashPlan("west", [["west", "flash", "--build-dir", str(project / "build")]],
                         verify="by the Zephyr board's own runner")
    elf = file or firmware_file(project, meta)
    if runner == "openocd":
        config = [arg for cfg in settings.get("config", []) for arg in ("-f", cfg)]
        return FlashPlan("openocd", firmware=elf, commands=[["openocd", *config, "-c",
                                      f"program {elf} verify reset exit"]],
                         verify="OpenOCD reads the flash back and compares")
    if runner == "pyocd":
        tgt = target or settings.get("target")
        if not tgt:
            raise UsageError(f"pyOCD needs a target name for {board.name}: pass --target")
        command = ["pyocd", "load", "--target", tgt, "--format", "elf", str(elf)]
        return FlashPlan("pyocd", firmware=elf, commands=[command],
                         verify="pyOCD's flash algorithm (no read-back)")
    if runner == "qemu":
        from edge_sdk.device.launch import qemu_command

        if not board.emulator:
            raise UsageError(f"{board.name} is not emulated by QEMU")
        tcp = int(port or 4444)
        return FlashPlan("qemu", firmware=elf, commands=[qemu_command(board, elf, tcp)],
                         verify=f"not needed: QEMU loads the ELF; UART on socket://127.0.0.1:{tcp}")
    # serial bootloader
    protocol = settings.get("protocol")
    if protocol != "uf2":
        raise UsageError(f"{board.name} has no serial bootloader runner in edge-sdk")
    if not port:
        raise UsageError("the UF2 runner needs --port: the mounted bootloader drive "
                         f"({settings.get('volume', 'RPI-RP2')}), e.g. /media/$USER/RPI-RP2")
    binary = elf.with_suffix(".bin")
    command = ["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binary)]
    return FlashPlan("serial", firmware=elf, commands=[command],
                     verify="the drive lists the new file, then reboots the board",
                     uf2=(binary, Path(port)))


def _arduino_plan(project: Path, meta: dict, board: Board, runner: str | None,
                  port: str | None) -> FlashPlan:
    """An Arduino library project is uploaded as its example sketch, by the Arduino CLI (which
    compiles it against the library and picks the board's upload tool from its core)."""
    if runner not in (None, "arduino"):
        raise UsageError(f"an Arduino project is uploaded by arduino-cli (--runner arduino), "
                         f"not {runner}")
    fqbn = (board.arduino or {}).get("fqbn")
    if not fqbn:
        raise UsageError(f"{board.name} has no Arduino board name (fqbn) in its board file")
    if not port:
        raise UsageError(f"uploading needs the board's port: pass --port (e.g. "
                         f"{board.console_port('arduino')['port']}; `arduino-cli board list` "
                         "shows it)")
    sketch = project / "examples" / meta["library"]
    command = ["arduino-cli", "compile", "--upload", "--port", port, "--fqbn", fqbn,
               "--library", str(project), str(sketch)]
    return FlashPlan("arduino", [command], verify="by the core's upload tool (arduino-cli)")


def uf2_blocks(data: bytes, base: int, family_id: int) -> bytes:
    """Wrap a flat binary into UF2 blocks (https://github.com/microsoft/uf2), 256 bytes each."""
    chunks = [data[i : i + 256] for i in range(0, len(data), 256)] or [b""]
    out = bytearray()
    for n, chunk in enumerate(chunks):
        header = struct.pack("<IIIIIIII", 0x0A324655, 0x9E5D5157, 0x00002000, base + 256 * n,
                             256, n, len(chunks), family_id)
        out += header + chunk.ljust(476, b"\x00") + struct.pack("<I", 0x0AB16F30)
    return bytes(out)


def uf2_decode(blob: bytes) -> tuple[int, bytes]:
    """The inverse of :func:`uf2_blocks`: (base address, data)."""
    if len(blob) % 512:
        raise ValueError("a UF2 file is a whole number of 512-byte blocks")
    base, data = None, bytearray()
    for off in range(0, len(blob), 512):
        m0, m1, _flags, addr, size, n, _total, _fam = struct.unpack_from("<IIIIIIII", blob, off)
        if (m0, m1) != (0x0A324655, 0x9E5D5157) or struct.unpack_from("<I", blob, off + 508)[0] \
                != 0x0AB16F30:
            raise ValueError(f"block {off // 512} has bad magic numbers")
        base = addr if base is None else base
        if addr != base + 256 * n:
            raise ValueError("UF2 blocks are not contiguous")
        data += blob[off + 32 : off + 32 + size]
    return base or 0, bytes(data)


def execute(plan: FlashPlan, board: Board, firmware: Path | None = None) -> None:
    if firmware is not None and not firmware.is_file():
        raise UsageError(f"{firmware} does not exist: build the project first "
                         "(edge-sdk build DIR)")
    for command in plan.commands:
        if shutil.which(command[0]) is None:
            raise ToolchainError(f"{command[0]} not found: install it with "
                                 f"{INSTALL.get(command[0], command[0])}")
    for command in plan.commands:
        if plan.runner == "qemu":
            with contextlib.suppress(KeyboardInterrupt):
                subprocess.run(command, check=False)
            return
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode:
            lines = (proc.stderr + proc.stdout).strip().splitlines() or ["(no output)"]
            raise DeviceError(f"{command[0]} failed: {lines[-1]}")
    if plan.uf2:
        binary, drive = plan.uf2
        if not (drive / "INFO_UF2.TXT").is_file():
            raise DeviceError(f"{drive} is not a UF2 bootloader drive (no INFO_UF2.TXT): hold "
                              "BOOTSEL while plugging the board in, then pass its mount point")
        family = int(_settings(board, "serial").get("family_id", 0xE48BFF56))
        target = drive / "EDGE_SDK.UF2"
        target.write_bytes(uf2_blocks(binary.read_bytes(), board.flash.origin, family))
        if not target.exists():
            raise DeviceError(f"writing {target} failed")
