"""Boards: one YAML file each under ``edge_sdk/data/boards/`` (memory map, CPU, UART, how to run
it)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from edge_sdk.compiler.targets import Target, get_target
from edge_sdk.errors import BoardError, did_you_mean
from edge_sdk.resources import BOARDS_DIR


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Uart:
    base: int
    baud: int


@dataclass(frozen=True)
class Cmsis:
    """A CMSIS-Toolbox device: ``vendor::device`` from ``pack``; ``support`` names the board
    support file under ``firmware/cmsis_boards/`` (clocks, caches, console UART), or None for a
    board (an imported one) that has none yet: its project says how to write one."""

    vendor: str
    device: str
    pack: str
    support: str | None = None


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    clock_hz: int
    flash: Region
    ram: Region
    port: str | None            # firmware/port/<port>, None: no bare-metal port yet
    uart: Uart | None
    semihosting: bool
    emulator: dict | None       # {"command": ..., "machine": ...} for QEMU boards
    templates: tuple[str, ...]
    zephyr: str | None = None   # Zephyr's board name (west build -b ...)
    arduino: dict | None = None  # {"fqbn": ...}
    cmsis: Cmsis | None = None  # CMSIS-Toolbox device and support file
    runners: dict | None = None  # {"default": name, name: settings}
    linux: dict | None = None   # Cortex-A Linux boards: arch, LLVM triple/mcpu/mattr, cross gcc
    gpu: dict | None = None     # GPU boards: {"api": cuda|opencl, "tag" or "attrs", ...}
    zephyr_flash: str | None = None  # how to flash a Zephyr build on this board (README text)
    console: dict | None = None  # template -> {"port", "how"}: the serial port the firmware uses
    platformio: dict | None = None  # {"platform", "board"[, "upload"]}: PlatformIO's names
    zephyr_modules: tuple[str, ...] = ("cmsis", "cmsis_6")  # what west.yml's import keeps
    zephyr_run: str | None = None  # what Zephyr's own `west build -t run` starts: qemu, fvp

    def console_port(self, template: str) -> dict:
        """The serial port a project of ``template`` talks on: ``{"port", "how"}``."""
        known = (self.console or {}).get(template)
        if known:
            return known
        if self.emulator:
            return {"port": "socket://127.0.0.1:4444", "how": "QEMU's UART on a TCP port"}
        return {"port": "/dev/ttyACM0", "how": "the board's USB serial port (check its name)"}

    @property
    def gpu_target(self):
        """The board's GPU as a :class:`~edge_sdk.compiler.gpu.targets.GpuTarget`."""
        from edge_sdk.compiler.gpu.targets import gpu_target

        assert self.gpu is not None
        return gpu_target(self.gpu)

    @property
    def llvm_target(self) -> dict:
        assert self.linux is not None
        mcpu = self.linux["mcpu"]
        if mcpu == "native":  # this machine's own CPU, as -mcpu=native (a benchmark stand-in)
            from tvm.target import codegen

            mcpu = codegen.llvm_get_system_cpu()
        target = {"kind": "llvm", "mtriple": self.linux["triple"], "mcpu": mcpu,
                  "mattr": list(self.linux.get("mattr", []))}
        if self.linux["triple"].endswith("gnueabihf"):
            target["mfloat-abi"] = "hard"  # match arm-linux-gnueabihf-gcc's calling convention
        return target

    @property
    def default_runner(self) -> str:
        if self.runners and "default" in self.runners:
            return str(self.runners["default"])
        return "qemu" if self.emulator else "-"

    @property
    def target(self) -> Target:
        return get_target(self.cpu)


def _board(data: dict) -> Board:
    uart = data.get("uart")
    return Board(
        name=data["name"],
        description=data.get("description", ""),
        cpu=data["cpu"],
        clock_hz=int(data.get("clock_hz", 0)),
        flash=Region(**data["memory"]["flash"]),
        ram=Region(**data["memory"]["ram"]),
        port=data.get("port"),
        uart=Uart(**uart) if uart else None,
        semihosting=bool(data.get("semihosting", False)),
        emulator=data.get("emulator"),
        templates=tuple(data.get("templates", ())),
        zephyr=(data.get("zephyr") or {}).get("board"),
        zephyr_flash=(data.get("zephyr") or {}).get("flash"),
        zephyr_modules=tuple((data.get("zephyr") or {}).get("modules", ("cmsis", "cmsis_6"))),
        platformio=data.get("platformio"),
        zephyr_run=(data.get("zephyr") or {}).get("run"),
        console=data.get("console"),
        arduino=data.get("arduino"),
        cmsis=Cmsis(**data["cmsis"]) if data.get("cmsis") else None,
        runners=data.get("runners"),
        linux=data.get("linux"),
        gpu=data.get("gpu"),
    )


@cache
def all_boards() -> dict[str, Board]:
    boards = {}
    for path in sorted(BOARDS_DIR.glob("*.yaml")):
        board = _board(yaml.safe_load(path.read_text(encoding="utf-8")))
        boards[board.name] = board
    if not boards:  # an install without its package data: say so rather than list nothing
        raise BoardError(f"no board files in {BOARDS_DIR}: this edge-sdk installation is "
                         "incomplete; reinstall it (pip install --force-reinstall edge-sdk)")
    return boards


def _key(name: str) -> str:
    return name.lower().replace("_", "-")


def get_board(name: str) -> Board:
    """Look a board up by name; ``nucleo_l4r5zi`` (Zephyr's spelling) finds ``nucleo-l4r5zi``.

    A path to a ``.yaml`` file (e.g. one written by ``edge-sdk boards --import-pdsc``) works too.
    """
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        try:
            return _board(yaml.safe_load(Path(name).read_text(encoding="utf-8")))
        except (KeyError, TypeError, yaml.YAMLError) as err:
            raise BoardError(f"{name} is not a valid board file: {err}") from None
    boards = {_key(n): b for n, b in all_boards().items()}
    if _key(name) not in boards:
        known = sorted(all_boards())
        raise BoardError(f"unknown board '{name}': {did_you_mean(name, known)}known boards: "
                         f"{', '.join(known)} (`edge-sdk boards` describes them)")
    return boards[_key(name)]
