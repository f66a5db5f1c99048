"""Write a firmware project for a board from ``edge_sdk/data/templates/<template>/`` and
``edge_sdk/data/firmware/``.

Output directories are written next to their destination under a temporary name and renamed
into place at the end, so a failure never leaves a half-written project behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import numpy as np
import yaml

from edge_sdk.compiler.program import packed_bytes
from edge_sdk.errors import BoardError, UsageError, did_you_mean
from edge_sdk.files import json_text
from edge_sdk.frontend.tflite import c_identifier
from edge_sdk.project.boards import Board
from edge_sdk.resources import FIRMWARE_DIR, TEMPLATES_DIR
from edge_sdk.version import __version__

if TYPE_CHECKING:
    from edge_sdk.pipeline import CompiledModel



@contextmanager
def atomic_directory(dest: Path, force: bool = False, marker: str = "edge_project.json"):
    """Yield a temporary directory that becomes ``dest`` only if the block succeeds.

    An existing ``dest`` is refused unless ``force``, and even then only a directory that
    edge-sdk made (it holds ``marker``) is replaced, once the new content is complete: a user's
    own files are never deleted.
    """
    dest = Path(dest)
    if dest.exists() and not force:
        raise UsageError(f"{dest} already exists: choose another directory or pass --force")
    if dest.exists() and not (dest / marker).is_file():
        raise UsageError(f"{dest} exists and was not made by edge-sdk (no {marker}): "
                         "refusing to replace it, even with --force; choose another directory")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as err:  # /proc, /sys, a name too long, a read-only disk
        raise UsageError(f"cannot create {dest}: {err.strerror}; choose another directory") \
            from None
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
    (directory / compiled.sources.header_name).write_text(compiled.sources.header, encoding="utf-8")
    (directory / compiled.sources.source_name).write_text(compiled.sources.source, encoding="utf-8")


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


@dataclass(frozen=True)
class TemplateSpec:
    """``templates/<name>/template.yaml``: where each part of a generated project goes."""

    name: str
    description: str
    layout: dict[str, str]
    port: str | tuple[str, ...]  # firmware/port/<port> ("board": the board's); several: all
    build: tuple[str, ...]
    skip_common: tuple[str, ...] = ()


def available_templates() -> list[str]:
    return sorted(p.parent.name for p in TEMPLATES_DIR.glob("*/template.yaml"))


def load_template(name: str) -> TemplateSpec:
    path = TEMPLATES_DIR / name / "template.yaml"
    if not path.is_file():
        known = available_templates()
        raise UsageError(f"unknown template '{name}': {did_you_mean(name, known)}templates: "
                         f"{', '.join(known)}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    port = data["port"] if isinstance(data["port"], str) else tuple(data["port"])
    return TemplateSpec(name, data["description"], dict(data["layout"]), port,
                        tuple(data.get("build", ())), tuple(data.get("skip_common", ())))


def _environment(template_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(template_dir),
                                    jinja2.FileSystemLoader(TEMPLATES_DIR / "_common"),
                                    # one template may include another's files (platformio's
                                    # library is the Arduino template's)
                                    jinja2.FileSystemLoader(TEMPLATES_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env


def _render_tree(template_dir: Path, out: Path, context: dict) -> None:
    """Render every file of ``template_dir`` into ``out``: ``*.j2`` through Jinja2, others copied.

    Path parts ``__PROJECT__``, ``__LIBRARY__`` and ``__MODEL__`` are replaced by their values.
    """
    env = _environment(template_dir)
    names = {"__PROJECT__": context["project"], "__LIBRARY__": context["library"],
             "__MODEL__": context["model"]}
    for src in sorted(template_dir.rglob("*")):
        if src.is_dir() or src.name == "template.yaml":
            continue
        rel = src.relative_to(template_dir).as_posix()
        target = rel[: -len(".j2")] if rel.endswith(".j2") else rel
        for key, value in names.items():
            target = target.replace(key, value)
        dest = out / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".j2"):
            dest.write_text(env.get_template(rel).render(**context), encoding="utf-8")
        else:
            shutil.copy2(src, dest)


def _sample_rows(data: bytes) -> list[str]:
    return [", ".join(f"0x{b:02x}" for b in data[i : i + 16]) + ","
            for i in range(0, len(data), 16)]


# The Zephyr release a generated west.yml pins (has mps2/an385, an386, an500 and the other boards'
# targets under their hardware-model-v2 names); change it in the project's west.yml at will.
ZEPHYR_REVISION = "v4.2.0"

_ARDUINO_CORE_NAMES = {"Arduino", "Wire", "SPI", "Stream", "Print", "HardwareSerial", "WString",
                       "Printable", "Client", "Server", "Udp", "IPAddress"}


def library_name(text: str) -> str:
    """``kws_app`` -> ``KwsApp``: the Arduino library name of a project directory."""
    parts = [p for p in "".join(c if c.isascii() and c.isalnum() else " "
                                for c in text).split() if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "EdgeModel"
    return name if not name[0].isdigit() else f"Model{name}"


def generate_project(
    compiled: CompiledModel, board: Board, dest: Path, template: str | None = None,
    force: bool = False, demo: bool = True, sample: np.ndarray | None = None,
    profile: bool = False, trace: bool = False,
) -> Path:
    """Generate a self-contained project for ``board`` from ``templates/<template>``.

    ``profile``: build with ``EDGE_PROFILE`` (bare-metal and host Makefiles), so the firmware
    records its timer after every layer."""
    template = template or (board.templates[0] if board.templates else "")
    if not template:
        raise BoardError(
            f"board {board.name} has no project template yet: use `edge-sdk compile MODEL "
            f"--board {board.name} -o DIR` and add the sources to your own project"
        )
    spec = load_template(template)
    if template not in board.templates:
        raise BoardError(f"template '{template}' is not available for {board.name}; "
                         f"its templates: {', '.join(board.templates) or 'none'}")
    port = board.port if spec.port == "board" else spec.port
    if port is None:
        raise BoardError(f"board {board.name} has no firmware port for template '{template}'")
    check_fits(compiled, board)

    from edge_sdk.model_io import default_inputs, pack

    program = compiled.program
    graph = program.graph
    tin, tout = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    if sample is None:
        sample = pack(graph, default_inputs(graph))[0]
        note = "input[i] = (int8)(i*7 + 3), the pattern of edge-sdk's benchmarks"
    else:
        note = "given with --sample"
    sample_bytes = np.ascontiguousarray(sample).reshape(-1).tobytes()
    if len(sample_bytes) != packed_bytes(program.inputs):
        raise UsageError(f"the sample has {len(sample_bytes)} bytes, the model's inputs "
                         f"{packed_bytes(program.inputs)}")
    dest = Path(dest)
    if template in ("arduino", "platformio") and library_name(dest.name) in _ARDUINO_CORE_NAMES:
        raise UsageError(f"an Arduino library named '{library_name(dest.name)}' would hide the "
                         "core header of that name: choose another output directory name")
    context = {
        "board": board, "target": board.target, "model": compiled.name, "template": spec,
        "project": c_identifier(dest.name), "library": library_name(dest.name),
        "trace": trace, "zephyr_revision": ZEPHYR_REVISION,
        "output_is_float": all(graph.tensor(io.tensor).dtype == "float32"
                               for io in program.outputs), "demo": demo, "profile": profile,
        # The sample's bytes only where the program can use them (a 224x224 float image is
        # 24 MB of C text): the boot demo, and the Arduino library's Demo() function.
        "sample_rows": (_sample_rows(sample_bytes) if demo or template in ("arduino", "platformio")
                        else []),
        "sample_note": note,
        "input": tin, "output": tout, "arena_bytes": compiled.memory.arena_bytes,
        "ios": [*compiled.program.inputs, *compiled.program.outputs],
    }
    library = library_name(dest.name)
    layout = {k: v.replace("__LIBRARY__", library) for k, v in spec.layout.items()}
    with atomic_directory(dest, force=force) as tmp:
        write_model_sources(compiled, tmp / layout["model"])
        if "common" in layout:
            common = tmp / layout["common"]
            common.mkdir(parents=True, exist_ok=True)
            for src in sorted((FIRMWARE_DIR / "common").iterdir()):
                if src.name not in spec.skip_common:
                    shutil.copy2(src, common / src.name)
        port_dir = tmp / layout["port"]
        port_dir.mkdir(parents=True, exist_ok=True)
        for part in (port,) if isinstance(port, str) else port:
            for src in sorted((FIRMWARE_DIR / "port" / part).iterdir()):
                shutil.copy2(src, port_dir / src.name)
        support = board.cmsis.support if template == "cmsis" and board.cmsis else None
        if support:  # the board's clocks, caches and console UART (firmware/cmsis_boards/)
            shutil.copy2(FIRMWARE_DIR / "cmsis_boards" / f"{support}.c",
                         port_dir / f"edge_board_{support}.c")
        env = _environment(TEMPLATES_DIR / template)
        (tmp / layout["config"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp / layout["config"]).write_text(
            env.get_template("edge_model_config.h.j2").render(**context), encoding="utf-8")
        _render_tree(TEMPLATES_DIR / template, tmp, context)
        if template == "linux":
            from edge_sdk.codegen.llvm import build_kernel_object

            build_kernel_object(compiled.program, compiled.sources.function_of_step,
                                board.llvm_target, tmp / layout["model"] / "kernels.o")
        (tmp / "edge_project.json").write_text(json_text(
            {"model": compiled.name, "board": board.name, "template": template,
             "project": context["project"], "library": context["library"],
             "edge_sdk": __version__}) + "\n", encoding="utf-8")
    return dest
