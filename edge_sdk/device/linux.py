"""Linux boards (Cortex-A, x86-64, Jetson): build the runner bundle, run it here or over SSH.

One bundle, two places to run it: ``deploy`` copies it to a board over SSH; ``run`` runs it on
this machine when this machine can (same architecture, or the board's qemu-user emulator is
installed). Either way the runner is invoked the same way (``runner input.bin output.bin
BENCH_RUNS``) and its last stdout line is the JSON the report reads, so the two paths cannot
drift apart.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from edge_sdk.errors import DeviceError, ToolchainError
from edge_sdk.project.boards import Board
from edge_sdk.project.build import require_tool
from edge_sdk.project.generate import generate_project

if TYPE_CHECKING:
    from edge_sdk.pipeline import CompiledModel

RUNNER_STATS = ("bench_runs", "p50_ns", "p90_ns", "p99_ns", "mean_ns")
_CROSS_PACKAGES = {"aarch64": "gcc-aarch64-linux-gnu", "armv7": "gcc-arm-linux-gnueabihf"}


def require_cross_compiler(board: Board) -> None:
    require_tool("make")
    cross = board.linux["cross"] + "gcc"
    if shutil.which(cross) is None:
        pkg = _CROSS_PACKAGES.get(board.linux["arch"], "gcc")
        raise ToolchainError(f"{cross} not found: install it with apt-get install {pkg} "
                             "(or ./setup.sh)")


def build_bundle(compiled: CompiledModel, board: Board, work: Path, force: bool = False) -> Path:
    """Generate the board's Linux project under ``work``, build it, and gather what the board
    needs in ``work/bundle`` (the runner and a ``model.json`` naming what it is). ``force``
    replaces a project edge-sdk generated there before."""
    require_cross_compiler(board)
    project = generate_project(compiled, board, work / "project", force=force, demo=False)
    proc = subprocess.run(["make", "-C", str(project)], capture_output=True, text=True)
    if proc.returncode:
        lines = (proc.stderr + proc.stdout).strip().splitlines() or ["(no output)"]
        raise ToolchainError(f"building for {board.name} failed: "
                             + next((ln for ln in lines if "error" in ln), lines[-1]))
    bundle = work / "bundle"
    if force:
        shutil.rmtree(bundle, ignore_errors=True)
    bundle.mkdir(parents=True)
    shutil.copy2(project / "build" / "runner", bundle / "runner")
    (bundle / "model.json").write_text(json.dumps(
        {"model": compiled.name, "board": board.name, "llvm_target": board.llvm_target},
        indent=2), encoding="utf-8")
    return bundle


def local_prefix(board: Board) -> list[str]:
    """How this machine runs ``board``'s binaries: directly when it is the same architecture,
    under the board's qemu-user emulator when that is installed; otherwise a one-line error
    that says where they can run."""
    machine = platform.machine()
    if machine in board.linux["uname"]:
        if board.gpu is not None and board.gpu.get("api") == "cuda" and not _has_cuda():
            raise DeviceError(f"{board.name} runs its model on a CUDA GPU and this machine has "
                              f"none: use `edge-sdk deploy MODEL --board {board.name} --host "
                              "user@board`")
        return []
    emulator = board.linux.get("emulator")
    if emulator and board.gpu is None:
        if shutil.which(emulator) is None:
            raise ToolchainError(f"{board.name} binaries are {board.linux['arch']} and this "
                                 f"machine is {machine}: install {emulator} (apt-get install "
                                 "qemu-user-static) to run them here, or use `edge-sdk deploy "
                                 "--host user@board`")
        return [emulator]
    raise DeviceError(f"{board.name} binaries need an {board.linux['arch']} machine and this "
                      f"one is {machine}: run them on the board with `edge-sdk deploy MODEL "
                      f"--board {board.name} --host user@board`")


def _has_cuda() -> bool:
    return any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia/version"))


def run_here(bundle: Path, prefix: list[str], input_bin: Path, output_bin: Path,
             bench: int, threads: int = 0) -> str:
    """Run the bundle's runner on this machine; returns its stdout."""
    argv = [*prefix, str(bundle / "runner"), str(input_bin), str(output_bin), str(int(bench)),
            str(int(threads))]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        raise DeviceError("the runner did not finish within an hour") from None
    if proc.returncode:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise DeviceError(f"the runner failed (exit {proc.returncode}): {last[0]}")
    return proc.stdout


def read_results(stdout: str, raw: bytes, output_bytes: int, samples: int, where: str
                 ) -> tuple[list[bytes], dict]:
    """Split the runner's output file into one row per sample and parse its statistics line."""
    try:
        stats = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeviceError(f"the runner on {where} printed no result: {stdout[-200:]!r}") from None
    if len(raw) != output_bytes * samples:
        raise DeviceError(f"the runner on {where} wrote {len(raw)} output bytes, expected "
                          f"{output_bytes * samples}: is the bundle for this model?")
    rows = [raw[i * output_bytes:(i + 1) * output_bytes] for i in range(samples)]
    return rows, stats
