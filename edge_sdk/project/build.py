"""Build a generated project with its own Makefile and measure what it takes in memory."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import ToolchainError
from edge_sdk.project.boards import Board

INSTALL_HINT = {
    "west": "pip install west, then set up a Zephyr workspace (west init; west update) "
            "and the Zephyr SDK",
    "arduino-cli": "the Arduino CLI (https://arduino.github.io/arduino-cli/) and the board's core "
                   "(arduino-cli core install ...)",
    "cbuild": "the CMSIS-Toolbox (https://github.com/Open-CMSIS-Pack/cmsis-toolbox)",
    "arm-none-eabi-gcc":
        "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi (or ./setup.sh)",
    "cc": "apt-get install gcc (or ./setup.sh)",
    "make": "apt-get install make (or ./setup.sh)",
}


@dataclass(frozen=True)
class BuildResult:
    project: Path
    executable: Path
    model_text_bytes: int     # code + const data (weights) of the model's object file
    model_data_bytes: int
    firmware_text_bytes: int  # the whole program
    firmware_data_bytes: int
    firmware_bss_bytes: int


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found: install it with {INSTALL_HINT.get(name, name)}")
    return path


def _size(size_tool: str, path: Path) -> tuple[int, int, int]:
    out = subprocess.run([size_tool, str(path)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text, data, bss


def ecosystem_build_command(project: Path) -> list[str]:
    """The command that builds a generated Zephyr/Arduino/CMSIS project, from its manifest."""
    import json

    from edge_sdk.project.boards import get_board
    from edge_sdk.project.generate import load_template

    meta = json.loads((project / "edge_project.json").read_text(encoding="utf-8"))
    spec = load_template(meta["template"])
    board = get_board(meta["board"])
    values = {"board": board.zephyr or board.name,
              "fqbn": (board.arduino or {}).get("fqbn", ""),
              "project": meta["project"], "library": meta["library"]}
    return [part.format(**values) for part in spec.build]


def build_ecosystem_project(project: Path) -> None:
    """Run the ecosystem's own build tool in the project directory."""
    command = ecosystem_build_command(project)
    require_tool(command[0])
    proc = subprocess.run(command, cwd=project, capture_output=True, text=True)
    if proc.returncode:
        lines = (proc.stderr + proc.stdout).strip().splitlines() or ["(no output)"]
        first_error = next((ln for ln in lines if "error" in ln.lower()), lines[-1])
        raise ToolchainError(f"`{' '.join(command)}` failed in {project}: {first_error.strip()}")


def build_project(project: Path, board: Board, model: str) -> BuildResult:
    cross = board.port != "host"
    compiler = "arm-none-eabi-gcc" if cross else "cc"
    require_tool("make")
    require_tool(compiler)
    size_tool = require_tool("arm-none-eabi-size" if cross else "size")
    proc = subprocess.run(["make", "-C", str(project), "-j2"], capture_output=True, text=True)
    if proc.returncode:
        lines = (proc.stderr + proc.stdout).strip().splitlines() or ["(no output)"]
        first_error = next((ln for ln in lines if "error" in ln), lines[-1])
        raise ToolchainError(f"building {project} failed: {first_error.strip()} "
                             f"(run `make -C {project}` for the full log)")
    executable = project / "build" / ("app.elf" if cross else "app")
    m_text, m_data, _ = _size(size_tool, project / "build" / "model" / f"{model}.o")
    f_text, f_data, f_bss = _size(size_tool, executable)
    return BuildResult(project, executable, m_text, m_data, f_text, f_data, f_bss)
