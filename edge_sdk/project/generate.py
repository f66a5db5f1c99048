"""Write a firmware project for a board from ``templates/<template>/`` and ``firmware/``.

Output directories are written next to their destination under a temporary name and renamed
into place at the end, so a failure never leaves a half-written project behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import jinja2

from edge_sdk.compiler import CompiledModel
from edge_sdk.errors import BoardError, UsageError
from edge_sdk.project.boards import Board

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "templates"
FIRMWARE_DIR = ROOT / "firmware"


@contextmanager
def atomic_directory(dest: Path, force: bool = False):
    """Yield a temporary directory that becomes ``dest`` only if the block succeeds.

    An existing ``dest`` is refused unless ``force``; with ``force`` it is replaced only after the
    new content is complete.
    """
    dest = Path(dest)
    if dest.exists() and not force:
        raise UsageError(f"{dest} already exists: choose another directory or pass --force")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def write_model_sources(compiled: CompiledModel, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / compiled.sources.header_name).write_text(compiled.sources.header)
    (directory / compiled.sources.source_name).write_text(compiled.sources.source)


def check_fits(compiled: CompiledModel, board: Board) -> None:
    """Refuse a model that cannot fit the board, with both numbers."""
    ram = compiled.memory.arena_bytes + compiled.io_bytes
    if ram > board.ram.size:
        raise BoardError(
            f"{compiled.name} needs {ram} B of RAM (arena {compiled.memory.arena_bytes} B + "
            f"input/output {compiled.io_bytes} B) but {board.name} has {board.ram.size} B"
        )
    if compiled.weights_bytes > board.flash.size:
        raise BoardError(
            f"{compiled.name} needs {compiled.weights_bytes} B of flash for its weights but "
            f"{board.name} has {board.flash.size} B"
        )


def _render(template_dir: Path, out: Path, context: dict) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    for src in sorted(template_dir.rglob("*")):
        if src.is_dir():
            continue
        rel = src.relative_to(template_dir)
        dest = out / (str(rel)[: -len(".j2")] if src.suffix == ".j2" else rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".j2":
            dest.write_text(env.get_template(rel.as_posix()).render(**context))
        else:
            shutil.copy2(src, dest)


def generate_project(
    compiled: CompiledModel, board: Board, dest: Path, template: str | None = None,
    force: bool = False, extra: Callable[[Path], None] | None = None,
) -> Path:
    """Generate a buildable project for ``board`` in ``dest``; returns ``dest``."""
    if board.port is None:
        raise BoardError(
            f"board {board.name} has no bare-metal firmware port in edge-sdk yet: use "
            f"`edge-sdk compile MODEL --board {board.name} -o DIR` and add the sources "
            "to your own project"
        )
    template = template or (board.templates[0] if board.templates else "")
    if template not in board.templates:
        raise BoardError(f"board {board.name} supports templates: {', '.join(board.templates)}")
    check_fits(compiled, board)
    with atomic_directory(Path(dest), force=force) as tmp:
        write_model_sources(compiled, tmp / "model")
        shutil.copytree(FIRMWARE_DIR / "common", tmp / "firmware" / "common")
        shutil.copytree(FIRMWARE_DIR / "port" / board.port, tmp / "firmware" / "port")
        _render(TEMPLATES_DIR / template, tmp,
                {"board": board, "target": board.target, "model": compiled.name})
        (tmp / "edge_project.json").write_text(json.dumps(
            {"model": compiled.name, "board": board.name, "template": template}, indent=2))
        if extra:
            extra(tmp)
    return Path(dest)
