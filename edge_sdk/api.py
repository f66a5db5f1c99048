"""The ``edge_sdk`` Python API: each step of the pipeline, and ``run`` for the whole path.

    import edge_sdk
    model = edge_sdk.load("kws.tflite")
    compiled = edge_sdk.compile(model)                       # C sources + memory plan
    edge_sdk.write_compiled(compiled, "build/kws", board="mps2-an386")
    result = edge_sdk.run("kws.tflite", board="mps2-an386", inputs=x)   # build, flash, infer
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import progress, provenance
from edge_sdk.compiler.kernels.schedule import Tuning
from edge_sdk.device.launch import open_board, run_budget
from edge_sdk.device.timing import linux_timing, timing
from edge_sdk.errors import BoardError, DeviceError, UsageError, clipped
from edge_sdk.files import write_json
from edge_sdk.frontend.tflite import load as load_tflite
from edge_sdk.ir import Graph
from edge_sdk.model_io import (
    Inputs,
    default_inputs,
    outputs_bytes,
    pack,
    quantize_inputs,
    shape_outputs,
    unpack,
)
from edge_sdk.pipeline import CompiledModel, compile_graph
from edge_sdk.project.boards import Board, all_boards, get_board
from edge_sdk.project.build import BuildResult, build_ecosystem_project, build_project
from edge_sdk.project.generate import (
    atomic_directory,
    check_fits,
    generate_project,
    write_model_sources,
)


def load(path: str | Path | Graph,
         input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """A model file: ``.tflite``, or ``.onnx`` (translated to the same operators, or through
    TVM's Relax importer where it has one the translation lacks); a Graph is
    returned as it is. ``input_shapes``: a shape for inputs, by name, that leave a dimension
    open (``{"audio": (1, 16000)}``), as ``--input-shape``; see :func:`with_input_shapes`."""
    if isinstance(path, Graph):
        return path if not input_shapes else with_input_shapes(path, input_shapes)
    if input_shapes:
        return with_input_shapes(load(path), input_shapes)
    if Path(path).is_dir():
        raise UsageError(f"{path} is a directory: give the model file (.tflite or .onnx)")
    if Path(path).suffix.lower() == ".onnx":
        from edge_sdk.frontend.onnx import load_onnx_graph

        if not Path(path).is_file():
            raise UsageError(f"model file {path} does not exist: check the path")
        return load_onnx_graph(path)
    return load_tflite(path)


def with_input_shapes(graph: Graph, shapes: dict[str, tuple[int, ...]]) -> Graph:
    """``graph`` with the given inputs at the given shapes and every other tensor's shape
    as LiteRT propagates it (its own resize of the inputs, then its allocation): the shapes a
    model with an open length (``[1, -1]``) has at that length. Only open dimensions may be
    set; a name that is no input, or a shape LiteRT cannot propagate, is refused."""
    import dataclasses

    if graph.origin != "tflite" or graph.source is None:
        raise UsageError("--input-shape applies to .tflite models loaded from a file")
    by_name = {graph.tensor(i).name: graph.tensor(i) for i in graph.inputs}
    for name, shape in shapes.items():
        t = by_name.get(name)
        if t is None:
            raise UsageError(f"--input-shape {name}: the model's inputs are "
                             f"{', '.join(by_name)}")
        fixed = t.signature or t.shape
        if len(shape) != len(fixed) or any(s != d for s, d in zip(shape, fixed, strict=True)
                                           if d >= 0 and t.signature is not None) or (
                t.signature is None and tuple(shape) != t.shape):
            raise UsageError(f"--input-shape {name}:{','.join(map(str, shape))} does not fit "
                             f"the input's shape {list(fixed)} (only its -1 dimensions may be "
                             "chosen)")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_path=str(graph.source),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        for d in it.get_input_details():
            if d["name"] in shapes:
                it.resize_tensor_input(d["index"], list(shapes[d["name"]]), strict=True)
        it.allocate_tensors()
        new = {d["index"]: tuple(int(x) for x in d["shape"]) for d in it.get_tensor_details()}
    except (RuntimeError, ValueError) as err:
        first = clipped(str(err), 160)
        raise UsageError(f"--input-shape: LiteRT cannot run the model at that shape ({first})"
                         ) from None
    tensors = [t if t.is_constant or t.index not in new
               else dataclasses.replace(t, shape=new[t.index]) for t in graph.tensors]
    return dataclasses.replace(graph, tensors=tensors)


def compile(model: Graph | str | Path, board: str | None = None) -> CompiledModel:
    """The model as C: for ``board`` (a name of `edge-sdk boards` or a .yaml file) its core's
    kernels (DSP, Helium, a Linux CPU's, a GPU's), as :func:`compile_for`; without one,
    portable C that any C99 compiler builds."""
    graph = model if isinstance(model, Graph) else load(model)
    if board is not None:
        return compile_for(graph, get_board(board))
    check_constants_fit(graph, get_board("host"))
    warn_open_dimensions(graph)
    return compile_graph(graph)


def isa_for(board: Board) -> str:
    """The microcontroller kernel set for ``board``'s core: Helium kernels where it has MVE,
    DSP kernels where it has the DSP extension, portable C elsewhere (and for Linux/GPU
    boards, which have their own)."""
    if board.gpu is not None:
        return "generic"
    if board.linux is not None:
        return cpu_isa(board.llvm_target)
    target = board.target
    return "mve" if target.mve else "dsp" if target.dsp else "generic"


def cpu_isa(llvm_target: dict) -> str:
    """The Linux kernel set for a CPU: its best dot-product step where LLVM says the CPU has
    one (x86 VNNI ``vpdpbusd``, AVX2 ``vpmaddwd``, Arm ``sdot``), plain vector arithmetic
    otherwise."""
    import tvm
    from tvm.target import codegen

    target = tvm.target.Target(llvm_target)
    arch = llvm_target["mtriple"].split("-")[0]

    def has(*features: str) -> bool:
        return bool(codegen.llvm_cpu_has_features(list(features), target))

    if arch == "x86_64" and (has("avx512vnni", "avx512vl") or has("avxvnni")):
        return "cpu-vnni"
    if arch == "x86_64" and has("avx2"):
        return "cpu-avx2"
    if arch == "aarch64" and has("dotprod"):
        return "cpu-dotprod"
    return "cpu"


def compile_for(model: Graph | str | Path, board: Board, isa: str | None = None,
                prefer: str = "memory", tuning: str | Path | Tuning | None = None
                ) -> CompiledModel:
    """Compile for ``board``: its GPU if it has one, kernels for TVM's LLVM backend on Linux
    boards, plain C otherwise. ``isa`` overrides the kernel set (e.g. ``"dsp"`` on the host,
    where the micro-kernels fall back to plain C: how tests check them quickly). ``prefer``:
    ``"memory"`` keeps the arena at what the tensors need; ``"speed"`` lets kernels add
    scratch (im2col) to it. ``tuning``: a file from `edge-sdk tune` (Linux boards)."""
    graph = model if isinstance(model, Graph) else load(model)
    if tuning is not None and not isinstance(tuning, Tuning):
        tuning = Tuning.load(tuning)
    if tuning is not None and board.linux is None:
        raise UsageError(f"--tuning is for Linux boards' CPU kernels; {board.name} has none "
                         "to tune")
    check_constants_fit(graph, board)
    warn_open_dimensions(graph)
    with progress.stage(f"compiling {graph.name} for {board.name}"):
        if board.gpu is not None:
            return compile_graph(graph, gpu=board.gpu_target)
        return compile_graph(graph, external_kernels=board.linux is not None,
                             isa=isa or isa_for(board), flash_budget=weights_budget(board),
                             prefer=prefer, tuning=tuning)


_WARNED_OPEN: set[tuple[str, str]] = set()


def warn_open_dimensions(graph: Graph) -> None:
    """Say so when a model input leaves a dimension open (-1 in its shape signature): edge-sdk
    compiles the shape the file stores there. An open length (an audio model's ``[1, -1]``)
    is a warning, as the stored 1 is rarely what the user means; an open batch alone (Keras
    leaves it open in nearly every model) is compiled as 1, which is what a board runs, and
    said only with ``-v``."""
    for t in (graph.tensor(i) for i in graph.inputs):
        if not t.dynamic or (graph.name, t.name) in _WARNED_OPEN:
            continue
        _WARNED_OPEN.add((graph.name, t.name))  # once per process, not per compile
        signature = list(t.signature or ())
        if any(d < 0 for d in signature[1:]):
            progress.warn(f"input '{t.name}' has open dimensions {signature}: compiled for "
                          f"the shape the model file stores, {list(t.shape)} (choose another "
                          f"with --input-shape {t.name}:...)")
        else:
            progress.note(f"input '{t.name}' leaves its batch open ({signature}): compiled "
                          f"for batch {t.shape[0] if t.shape else 1}")


def check_constants_fit(graph: Graph, board: Board) -> None:
    """Refuse, before any array is made, a model whose constants alone exceed the board's
    flash (a 1 GiB constant was widened to 8 GiB of int64 before any size check, for a board
    with 1 MB of flash). Counted from the declared shapes, so nothing is allocated."""
    total = sum(t.nbytes for t in graph.tensors if t.is_constant)
    if total > board.flash.size:
        raise BoardError(f"{graph.name}'s constants (weights) take {total:,} B but {board.name} "
                         f"has {board.flash.size:,} B of flash: choose a board with more, or a "
                         "smaller model")


# Flash kept free for code (firmware, kernels, libc) when choosing kernels by weight size.
CODE_RESERVE_BYTES = 64 * 1024


def weights_budget(board: Board) -> int:
    """Flash the weights may take on ``board`` (its flash less room for the program)."""
    return max(board.flash.size - CODE_RESERVE_BYTES, board.flash.size // 2)


# How the model reached the compiler, by Graph.origin: the report says which route an ONNX
# model took, since the two differ in speed.
FRONTENDS = {"tflite": "tflite", "onnx": "onnx (translated onto the operator library)",
             "relax": "onnx (TVM's Relax importer, legalized kernels)"}


def report(compiled: CompiledModel, board: Board, build: BuildResult | None = None) -> dict:
    rep: dict = {
        "model": compiled.name,
        "frontend": FRONTENDS.get(compiled.program.graph.origin, compiled.program.graph.origin),
        "kernel_set": compiled.program.isa if compiled.gpu is None else "gpu",
        "board": board.name,
        "cpu": board.cpu,
        "arena_bytes": compiled.memory.arena_bytes,
        "io_bytes": compiled.io_bytes,
        "ram_bytes": compiled.memory.arena_bytes + compiled.io_bytes,
        "weights_bytes": compiled.weights_bytes,
        "unique_kernels": compiled.sources.unique_kernels,
        "macs": sum(s.macs for s in compiled.program.steps),
        "layers": compiled.layers(),
        "memory_plan": compiled.memory_plan(),
        "notes": "arena holds intermediates only; the caller owns input and output "
                 "(io_bytes). ram_bytes = arena_bytes + io_bytes.",
        "made": provenance.made(),
    }
    if board.linux is None and board.gpu is None and board.port != "host":
        rep["flash_capacity_bytes"] = board.flash.size  # what the microcontroller has
        rep["ram_capacity_bytes"] = board.ram.size
    if compiled.gpu is not None:
        rep["gpu"] = {
            "target": compiled.gpu.target.summary,
            "device_code": compiled.gpu.device.language,
            "device_code_bytes": len(compiled.gpu.device.code),
            "kernel_launches": len(compiled.gpu.device.launches),
            "activation_bytes": sum(b.nbytes for b in compiled.memory.buffers),
            "schedules": {str(k): v for k, v in compiled.gpu.schedules.items()},
        }
        rep["notes"] = ("GPU: intermediates, weights and scratch live in GPU memory "
                        "(gpu.activation_bytes for activations); arena_bytes is 0.")
        rep["arena_bytes"] = 0
        rep["ram_bytes"] = compiled.io_bytes
    if build is not None:
        rep["flash_bytes"] = build.model_text_bytes + build.model_data_bytes
        rep["flash_basis"] = "measured: the model's code and constants in the built firmware"
        rep["firmware"] = {"text_bytes": build.firmware_text_bytes,
                           "data_bytes": build.firmware_data_bytes,
                           "bss_bytes": build.firmware_bss_bytes}
    else:
        rep["flash_bytes"] = compiled.weights_bytes
        rep["flash_basis"] = "estimate: the weights alone (run or build to measure the code too)"
    return rep


def write_compiled(compiled: CompiledModel, out_dir: str | Path, board: str = "host",
                   force: bool = False) -> Path:
    """``edge-sdk compile``: the C sources, ``model.h`` and ``report.json`` in ``out_dir``.

    For Linux (Cortex-A) boards the kernels come from TVM's LLVM backend as ``kernels.o``.
    """
    b = get_board(board)
    if b.gpu is not None and compiled.gpu is None:
        compiled = compile_for(compiled.program.graph, b)
    check_fits(compiled, b)
    if b.linux is not None and b.gpu is None and not compiled.sources.external_kernels:
        compiled = compile_graph(compiled.program.graph, external_kernels=True,
                                 isa=cpu_isa(b.llvm_target))
    with atomic_directory(Path(out_dir), force=force, marker="report.json") as tmp:
        write_model_sources(compiled, tmp)
        if compiled.gpu is not None:  # the device code, readable: what the board will load
            device = compiled.gpu.device
            ext = {"ptx": "ptx", "opencl-c": "cl"}[device.language]
            (tmp / f"{compiled.name}_kernels.{ext}").write_text(device.code, encoding="utf-8")
            if device.source != device.code:
                (tmp / f"{compiled.name}_kernels.cu").write_text(device.source, encoding="utf-8")
        elif b.linux is not None:
            from edge_sdk.codegen.llvm import build_kernel_object

            build_kernel_object(compiled.program, compiled.sources.function_of_step,
                                b.llvm_target, tmp / "kernels.o")
        write_json(tmp / "report.json", report(compiled, b))
    return Path(out_dir)


def generate(model: Graph | str | Path, board: str, out_dir: str | Path,
             template: str | None = None, force: bool = False,
             sample: Inputs | None = None, prefer: str = "memory",
             tuning: str | Path | None = None) -> Path:
    """``edge-sdk generate``: a self-contained firmware project for ``board``. ``sample``: the
    input the firmware runs at boot (as :func:`run`'s ``inputs``, one sample)."""
    graph = model if isinstance(model, Graph) else load(model)
    b = get_board(board)
    packed = None if sample is None else packed_batch(graph, sample)[0]
    return generate_project(compile_for(graph, b, prefer=prefer, tuning=tuning), b,
                            Path(out_dir), template=template, force=force, sample=packed)


def build(project: str | Path) -> BuildResult | None:
    """``edge-sdk build``: make for bare-metal/host projects, the ecosystem's tool otherwise."""
    project = Path(project)
    manifest = project / "edge_project.json"
    if not manifest.is_file():
        raise UsageError(f"{project} is not an edge-sdk project (no edge_project.json): "
                         "create one with `edge-sdk generate`")
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if meta["template"] in ("baremetal", "host"):
        return build_project(project, get_board(meta["board"]), meta["model"])
    build_ecosystem_project(project)
    return None


def run_remote(port: str, inputs: Inputs, model: Graph | str | Path | None = None,
               baudrate: int = 115200, timeout: float = 10.0,
               run_timeout: float = 120.0, emulated: bool = False) -> RunResult:
    """Drive inference on a board that already runs edge-sdk firmware, over its serial port.

    With ``model`` the inputs are converted and checked against it and the outputs get its
    shape and type; without, inputs must be raw bytes of the right size and outputs are int8.
    ``timeout`` bounds each reply, ``run_timeout`` one inference (the board is not known here,
    so its clock is not: give the bound your model needs). ``emulated``: the port is QEMU's
    UART, so SysTick counts instructions, not cycles.
    """
    from edge_sdk.device.protocol import Client
    from edge_sdk.device.transport import SerialTransport

    graph = None if model is None else (model if isinstance(model, Graph) else load(model))
    transport = SerialTransport(port, baudrate=baudrate, connect_timeout=timeout)
    try:
        dev = Client(transport, timeout=timeout, run_timeout=run_timeout)
        info = dev.info()
        if graph is not None:
            if info.model != graph.name:
                raise DeviceError(f"the board on {port} runs model '{info.model}', "
                                  f"not '{graph.name}'")
            batch = packed_batch(graph, inputs)
        else:
            flat = np.ascontiguousarray(inputs).view(np.uint8).reshape(-1)
            if flat.size % info.input_size:
                raise UsageError(f"the board's model takes {info.input_size}-byte inputs; "
                                 f"the input file holds {flat.size} bytes")
            batch = flat.reshape(-1, info.input_size)
        rows, ticks = [], []
        for x in batch:
            if x.nbytes != info.input_size:
                raise DeviceError(f"the board expects {info.input_size}-byte inputs, "
                                  f"got {x.nbytes}: is it running this model?")
            dev.write_input(x.tobytes())
            ticks.append(dev.run().ticks)
            rows.append(dev.read_output(info.output_size))
    finally:
        transport.close()
    rep = {"model": info.model, "port": port, "arena_bytes": info.arena_size,
           "timer": timing(info.timer_kind, info.timer_hz, ticks, emulated=emulated)}
    if graph is None:  # raw bytes, read as int8
        return RunResult([np.frombuffer(b"".join(rows), np.int8).reshape(len(rows), -1)], rep)
    return RunResult(shape_outputs(graph, inputs, unpack(graph, rows)), rep)


def deploy(model: Graph | str | Path, board: str, host: str, inputs: Inputs | None = None,
           bench: int = 0, threads: int = 0, identity: str | Path | None = None,
           port: int | None = None,
           remote_dir: str = "edge-sdk", accept_new_host_key: bool = False,
           known_hosts: str | Path | None = None, run_prefix: list[str] | None = None,
           tuning: str | Path | None = None) -> RunResult:
    """Cross-build for a Linux board, copy the bundle over SSH, run it there, fetch results.

    ``run_prefix`` goes before the program on the board (e.g. ``["qemu-aarch64-static"]`` to
    emulate); without it the board's architecture is checked first. ``threads``: how many
    threads share each layer's rows on the board (0: one per CPU it has).
    """
    import shlex as _shlex

    from edge_sdk.device import linux
    from edge_sdk.device.ssh import SshHost

    graph = model if isinstance(model, Graph) else load(model)
    b = get_board(board)
    if b.linux is None:
        raise UsageError(f"{b.name} is not a Linux board: use `edge-sdk run` or `edge-sdk flash`")
    linux.require_cross_compiler(b)
    batch = packed_batch(graph, inputs)  # bad inputs are refused before any work
    compiled = compile_for(graph, b, tuning=tuning)
    ssh = SshHost(host, port=port, identity=Path(identity) if identity else None,
                  known_hosts=Path(known_hosts) if known_hosts else None,
                  accept_new_host_key=accept_new_host_key)
    if not run_prefix:
        machine = ssh.run(["uname", "-m"], timeout=60, what="checking the architecture").strip()
        if machine not in b.linux["uname"]:
            raise DeviceError(f"{host} is {machine}, but {b.name} binaries need "
                              f"{' or '.join(b.linux['uname'])}: pick the matching --board")
    from edge_sdk.device.ssh import remote_path

    remote = f"{remote_path(remote_dir).rstrip('/')}/{compiled.name}"
    with tempfile.TemporaryDirectory(prefix="edge-sdk-") as scratch:
        work = Path(scratch)
        bundle = linux.build_bundle(compiled, b, work)
        ssh.install_bundle(bundle, remote)
        (work / "input.bin").write_bytes(batch.tobytes())
        ssh.put(work / "input.bin", f"{remote}/input.bin")
        stdout = ssh.run([*(run_prefix or []), f"{remote}/runner", f"{remote}/input.bin",
                          f"{remote}/output.bin", str(int(bench)), str(int(threads))],
                         what="the model")
        ssh.get(f"{remote}/output.bin", work / "output.bin")
        raw = (work / "output.bin").read_bytes()
    rows, stats = linux.read_results(stdout, raw, outputs_bytes(graph), len(batch), host)
    rep = report(compiled, b)
    rep.update({"host": host, "remote_dir": remote, "run_prefix": _shlex.join(run_prefix or []),
                "latency": {k: stats[k] for k in linux.RUNNER_STATS},
                "threads": stats.get("threads", 1), "peak_rss_kb": stats["peak_rss_kb"]})
    return RunResult(shape_outputs(graph, inputs, unpack(graph, rows)), rep)


def run_linux_here(graph: Graph, b: Board, inputs: Inputs | None, bench: int | None = None,
                   workdir: str | Path | None = None, threads: int = 0,
                   tuning: str | Path | None = None) -> RunResult:
    """``run`` for a Linux board: build its bundle and run it on this machine (natively, or
    under the board's qemu-user emulator), exactly as ``deploy`` runs it on the board. The
    latency is the runner's median over ``bench`` extra runs of the first input (wall clock;
    meaningless under emulation): 10 by default, none under emulation, where a large model's
    run takes minutes and its time says nothing about the board (the report's latency is
    then None)."""
    import shlex as _shlex

    from edge_sdk.device import linux

    prefix = linux.local_prefix(b)
    if bench is None:
        bench = 0 if prefix else 10
    batch = packed_batch(graph, inputs)  # bad inputs are refused before any work
    ours = reusable_workdir(workdir, "project")
    compiled = compile_for(graph, b, tuning=tuning)
    with tempfile.TemporaryDirectory(prefix="edge-sdk-") as scratch:
        work = Path(workdir) if workdir else Path(scratch)
        bundle = linux.build_bundle(compiled, b, work, force=ours)
        (work / "input.bin").write_bytes(batch.tobytes())
        with progress.stage(f"running {len(batch)} inference(s) on {b.name}"
                            + (f" under {prefix[0]}" if prefix else "")):
            stdout = linux.run_here(bundle, prefix, work / "input.bin", work / "output.bin",
                                    bench, threads)
        raw = (work / "output.bin").read_bytes()
    rows, stats = linux.read_results(stdout, raw, outputs_bytes(graph), len(batch),
                                     "this machine")
    rep = report(compiled, b)
    rep.update({"host": "local", "run_prefix": _shlex.join(prefix),
                "latency": {k: stats[k] for k in linux.RUNNER_STATS},
                "threads": stats.get("threads", 1), "peak_rss_kb": stats["peak_rss_kb"],
                "timer": linux_timing(stats, emulated=bool(prefix))})
    return RunResult(shape_outputs(graph, inputs, unpack(graph, rows)), rep)


def tune(model: Graph | str | Path, board: str, output: str | Path, host: str | None = None,
         trials: int | None = None, runs: int = 20, identity: str | Path | None = None,
         port: int | None = None, known_hosts: str | Path | None = None,
         accept_new_host_key: bool = False, run_prefix: list[str] | None = None,
         remote_dir: str = "edge-sdk-tune") -> Tuning:
    """``edge-sdk tune``: time each layer's candidate schedules on ``board`` (over SSH with
    ``host``, else on this machine as ``run`` would) and write the fastest to ``output``
    (resumable: layers already there are kept). See :mod:`edge_sdk.tune`. Progress, a line
    per layer, goes to stderr with ``-v`` or on a terminal (:mod:`edge_sdk.progress`)."""
    from edge_sdk import tune as tuner
    from edge_sdk.device import linux
    from edge_sdk.device.ssh import SshHost

    graph = model if isinstance(model, Graph) else load(model)
    b = get_board(board)
    if b.linux is None or b.gpu is not None:
        raise UsageError(f"tune is for Linux boards' CPU kernels; {b.name} has none to tune "
                         "(microcontroller kernels are chosen by the compiler)")
    linux.require_cross_compiler(b)
    if host:
        ssh = SshHost(host, port=port, identity=Path(identity) if identity else None,
                      known_hosts=Path(known_hosts) if known_hosts else None,
                      accept_new_host_key=accept_new_host_key)
        target = tuner.Target(b, ssh, run_prefix)
    else:
        target = tuner.Target(b, None, run_prefix if run_prefix else linux.local_prefix(b))
    return tuner.tune(graph, b, cpu_isa(b.llvm_target), Path(output), target, trials, runs,
                      remote_dir, progress.note)


@dataclass
class RunResult:
    """What a run returns: one array per model output, shaped as the inputs were given (one
    sample: the output's own shape; see :func:`edge_sdk.model_io.shape_outputs`), and the
    report."""

    output_list: list[np.ndarray]
    report: dict = field(repr=False)

    @property
    def outputs(self) -> np.ndarray | tuple[np.ndarray, ...]:
        """The output array of a single-output model; a tuple of them, in the model's output
        order, for several."""
        return self.output_list[0] if len(self.output_list) == 1 else tuple(self.output_list)


def quantize_input(x: Inputs, graph: Graph) -> np.ndarray:
    """User data as a batch of packed model inputs (``(batch, bytes)`` uint8 when the model has
    several inputs; ``(batch, size)`` of the input's type for one, as it always was)."""
    arrays = quantize_inputs(graph, x)
    return arrays[0] if len(arrays) == 1 else pack(graph, arrays)


def default_input(graph: Graph) -> Inputs:
    """The deterministic input of ../shared/BASELINES.md (``input[i] = (int8)(i*7 + 3)``) of
    each model input: one array for a single-input model, a list for several."""
    arrays = [a[0] for a in default_inputs(graph)]
    return arrays[0] if len(arrays) == 1 else arrays


def packed_batch(graph: Graph, inputs: Inputs | None) -> np.ndarray:
    """``(batch, bytes)``: what the firmware's WRITE_INPUT takes, one row per inference."""
    return pack(graph, default_inputs(graph) if inputs is None else quantize_inputs(graph, inputs))


@contextmanager
def board_session(compiled: CompiledModel, b: Board, input_bytes: int,
                  workdir: str | Path | None = None, **features: bool
                  ) -> Iterator[tuple[Any, BuildResult]]:
    """Generate the firmware project (in ``workdir``, or a temporary directory), build it,
    start the board and check it runs this model; yields the open device and the build.

    ``features`` are the firmware's optional builds (``profile``, ``trace``). A ``workdir`` is
    reused only if it is one of ours (it holds ``edge_project.json``): never a user's files."""
    with tempfile.TemporaryDirectory(prefix="edge-sdk-") as scratch:
        project = Path(workdir) if workdir else Path(scratch) / "project"
        ours = reusable_workdir(workdir)
        generate_project(compiled, b, project, force=ours, demo=False,
                         profile=bool(features.get("profile")), trace=bool(features.get("trace")))
        with progress.stage(f"building the firmware for {b.name}"):
            build = build_project(project, b, compiled.name)
        macs = sum(step.macs for step in compiled.program.steps)
        starting = f"starting {'QEMU ' + b.emulator['machine'] if b.emulator else b.name}"
        with ExitStack() as session:
            with progress.stage(starting):
                dev = session.enter_context(open_board(
                    b, build.executable,
                    run_budget(macs, b, compiled.program.graph.origin == "relax")))
                info = dev.info()
            if (info.model, info.input_size) != (compiled.name, input_bytes):
                raise DeviceError(f"the board runs model '{info.model}', not '{compiled.name}'")
            yield dev, build


def reusable_workdir(workdir: str | Path | None, project: str = "") -> bool:
    """Whether ``--workdir`` holds a project an earlier run made (``project``: the subfolder it
    lies in), which is then rebuilt in place. A missing or empty folder is fine (an empty one is
    removed, to be made again whole); one with other files is refused before any work: a
    user's files are never touched."""
    if workdir is None:
        return False
    work = Path(workdir)
    if (work / project / "edge_project.json").is_file():
        return True
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    elif work.exists():
        raise UsageError(f"--workdir {work} holds files that edge-sdk did not make: give a new "
                         "or empty folder, or one that an earlier --workdir run made (it is "
                         "rebuilt in place)")
    return False


# x86 features a board's LLVM target may assume, with their /proc/cpuinfo names.
_X86_FEATURES = {"avx2": "avx2", "fma": "fma", "avx512f": "avx512f", "avx512bw": "avx512bw",
                 "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni"}


def host_cpu_flags() -> set[str] | None:
    """This machine's CPU flags as Linux lists them, None where there is no /proc/cpuinfo."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return None
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_features_missing_here(b: Board) -> list[str]:
    """The x86 features ``b``'s code is built for that this machine's CPU lacks, where that
    code would run natively here (an x86-64 board on an x86-64 Linux machine); [] otherwise."""
    import platform

    if b.linux is None or b.linux["arch"] != "x86_64" or platform.machine() != "x86_64":
        return []
    flags = host_cpu_flags()
    if flags is None:
        return []
    import tvm
    from tvm.target import codegen

    target = tvm.target.Target(b.llvm_target)
    return [name for name, flag in _X86_FEATURES.items()
            if flag not in flags and codegen.llvm_cpu_has_features([name], target)]


def require_startable(b: Board, what: str = "run") -> None:
    """``run`` and ``validate`` start the board themselves: the host, QEMU or (Linux boards) a
    local emulator. A real microcontroller board is refused before any work, saying how to
    run there instead and which emulated board has the same core."""
    if b.linux is not None:
        missing = cpu_features_missing_here(b)
        if missing:
            raise UsageError(
                f"{b.name}'s code uses {', '.join(missing)}, which this machine's CPU lacks "
                "(it would stop on an illegal instruction): run it on such a board with "
                f"`edge-sdk deploy`, or here with --board linux-x86_64 (this CPU's own features)")
        return
    if b.port == "host" or b.emulator:
        return
    twin = next((o.name for o in all_boards().values() if o.emulator and o.cpu == b.cpu), None)
    instead = f"; or try it on QEMU now with --board {twin} (same core)" if twin else ""
    raise UsageError(
        f"{b.name} is a real board, which `edge-sdk {what}` cannot start by itself: build and "
        f"flash its firmware (`edge-sdk generate MODEL --board {b.name} -o proj`, "
        f"`edge-sdk build proj`, `edge-sdk flash proj`), then run with `edge-sdk run-remote "
        f"--port PORT --model MODEL --input x.npy`{instead}")


def run(model: str | Path | Graph, board: str = "host", inputs: Inputs | None = None,
        workdir: str | Path | None = None, isa: str | None = None,
        profile: bool = False, prefer: str = "memory", threads: int = 0,
        tuning: str | Path | None = None) -> RunResult:
    """Compile, generate the firmware project, build it, start the board, run every input.

    ``isa`` overrides the board's kernel set (see :func:`compile_for`). ``profile``: build the
    firmware with per-layer timing and put each layer's figure in ``report["layers"]``.
    ``threads`` (Linux boards): threads sharing each layer's rows, 0 for one per CPU."""
    graph = model if isinstance(model, Graph) else load(model)
    b = get_board(board)
    require_startable(b)
    if b.linux is not None:
        if profile:
            raise UsageError(f"--profile times layers on microcontroller boards; for {b.name} "
                             "the runner reports whole-model latency (use --bench)")
        return run_linux_here(graph, b, inputs, workdir=workdir, threads=threads,
                              tuning=tuning)
    batch = packed_batch(graph, inputs)  # bad inputs are refused before any work
    reusable_workdir(workdir)
    compiled = compile_for(graph, b, isa, prefer, tuning)
    rows, ticks, marks = [], [], []
    with board_session(compiled, b, batch[0].nbytes, workdir, profile=profile) as (dev, build):
        info = dev.info()
        with progress.stage(f"running {len(batch)} inference(s) on {b.name}"):
            for x in batch:
                dev.write_input(x.tobytes())
                res = dev.run()
                ticks.append(res.ticks)
                if profile:
                    marks.append(dev.profile())
                rows.append(dev.read_output(outputs_bytes(graph)))
    rep = report(compiled, b, build)
    rep["timer"] = timing(info.timer_kind, info.timer_hz, ticks, emulated=b.emulator is not None)
    if profile:
        add_layer_timing(rep, marks, info.timer_kind, info.timer_hz, b.emulator is not None)
    return RunResult(shape_outputs(graph, inputs, unpack(graph, rows)), rep)


def validate(model: str | Path | Graph, board: str = "host", inputs: Inputs | None = None,
             workdir: str | Path | None = None) -> dict:
    """``edge-sdk validate``: run the model on the board layer by layer and compare every
    layer's output with LiteRT's reference kernels (all intermediate tensors kept).

    The firmware is built with ``EDGE_TRACE``: for each layer the board runs the model up to
    that layer and returns its output (over the same protocol as ``run``; quadratic in the
    number of layers, which keeps the board's memory what the model needs). Returns the
    report: one row per layer (elements, differing, max error; relative error for float) and
    the first layer that differs."""
    from edge_sdk.validate import contained, layer_report, reference_tensors

    graph = model if isinstance(model, Graph) else load(model)
    if graph.source is None:
        raise UsageError("validate needs the model file: load the model from a .tflite path")
    b = get_board(board)
    if b.gpu is not None:
        raise UsageError(f"validate runs on CPU boards; {b.name} is a GPU target")
    require_startable(b, "validate")
    # A model with state (an LSTM's) runs once per layer here: each run starts from a zeroed
    # arena (the protocol's RESET), and LiteRT's interpreter from zeroed variables, per sample.
    stateful = any(t.is_variable for t in graph.tensors)
    compiled = compile_for(graph, b)
    program = compiled.program
    arrays = default_inputs(graph) if inputs is None else quantize_inputs(graph, inputs)
    batch = pack(graph, arrays)
    # The model's own layers (copies into outputs come last and are no layer of LiteRT's).
    # ASSIGN_VARIABLE writes a variable, no tensor LiteRT shows.
    steps = [s for s in program.steps if s.opcode not in ("COPY", "ASSIGN_VARIABLE")]
    ours: list[list[np.ndarray]] = [[] for _ in steps]
    with board_session(compiled, b, batch[0].nbytes, workdir, trace=True) as (dev, _):
        for x in batch:
            dev.write_input(x.tobytes())
            for k, step in enumerate(steps):
                t = graph.tensor(step.outputs[0])
                if stateful:
                    dev.reset()
                size = dev.run_to(k)
                if size != t.nbytes:
                    raise DeviceError(f"the board returned {size} bytes for layer {k} "
                                      f"({step.opcode}), expected {t.nbytes}: is its "
                                      "firmware built with EDGE_TRACE (make TRACE=1)?")
                ours[k].append(np.frombuffer(dev.read_trace(size), np.dtype(t.dtype)))
    theirs = contained("LiteRT", reference_tensors, graph.source, arrays,
                       [s.outputs[0] for s in steps], fresh_state=stateful)
    layers = [{"step": k, "index": s.op_index, "op": s.opcode,
               "name": graph.tensor(s.outputs[0]).short_name} for k, s in enumerate(steps)]
    rep = layer_report(layers, [np.stack(o) for o in ours], theirs)
    rep.update({"model": compiled.name, "board": b.name, "samples": len(batch)})
    return rep


def add_layer_timing(rep: dict, marks: list[list[int]], kind: str, hz: int,
                     emulated: bool) -> None:
    """Per-layer figures from the firmware's marks (the timer at the end of each layer), in
    the run's own unit, one value per inference, into ``rep["layers"][i]["measured"]``."""
    layers = rep["layers"]
    if not marks or any(len(m) != len(layers) for m in marks):
        raise DeviceError("the board returned no per-layer timing: is its firmware built with "
                          "EDGE_PROFILE (make PROFILE=1)?")
    per_run = [[(m[i] - (m[i - 1] if i else 0)) & 0xFFFFFFFF for i in range(len(m))]
               for m in marks]
    for i, layer in enumerate(layers):
        layer["measured"] = timing(kind, hz, [run[i] for run in per_run], emulated)
    rep["profile_note"] = (
        "per-layer figures are differences of the timer read after each layer: the first "
        "layer includes the call into the model; each includes one timer read")
