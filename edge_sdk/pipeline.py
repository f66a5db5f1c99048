"""A graph -> integer-only C (or GPU code): lowering, memory planning, code generation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_sdk.codegen.c_model import CSources, emit
from edge_sdk.compiler.fold import fold_constants
from edge_sdk.compiler.kernels.schedule import Tuning
from edge_sdk.compiler.lower import lower, supported_ops
from edge_sdk.compiler.planner import MemoryPlan, plan
from edge_sdk.compiler.program import Program, packed_bytes
from edge_sdk.compiler.target import Target, as_target
from edge_sdk.errors import UnsupportedOpError, UsageError
from edge_sdk.ir import Graph

if TYPE_CHECKING:
    from edge_sdk.compiler.gpu.lower import GpuCode
    from edge_sdk.compiler.gpu.targets import GpuTarget

__all__ = ["PREFERENCES", "CompiledModel", "compile_graph", "supported_ops"]

# What the compiler optimizes for where kernels trade RAM for speed (im2col scratch).
PREFERENCES = ("memory", "speed")


@dataclass(frozen=True)
class CompiledModel:
    program: Program
    memory: MemoryPlan
    sources: CSources
    gpu: GpuCode | None = None  # GPU targets: schedules, device code, launches

    @property
    def name(self) -> str:
        return self.program.name

    @property
    def weights_bytes(self) -> int:
        return sum(c.nbytes for c in self.program.constants)

    @property
    def io_bytes(self) -> int:
        return packed_bytes(self.program.inputs) + packed_bytes(self.program.outputs)

    def memory_plan(self) -> list[dict]:
        """The arena's buffers for the report: what each holds, where, and from which step to
        which (positions in ``layers()``), so the plan can be drawn as offset over time."""
        graph, out = self.program.graph, []
        for buf in self.memory.buffers:
            if buf.location != "arena":
                continue
            name = buf.scratch or graph.tensor(buf.root).name
            out.append({"name": name, "kind": "scratch" if buf.scratch else "tensor",
                        "offset": buf.offset, "bytes": buf.nbytes, "first": buf.first,
                        "last": buf.last})
        return out

    def layers(self) -> list[dict]:
        """Per-layer facts for the report: name, op, MACs, where its output lives."""
        graph, out = self.program.graph, []
        for step in self.program.steps:
            t = graph.tensor(step.outputs[0])
            buf = self.memory.buffer_of(t.index)
            out.append({
                "index": step.op_index,
                "name": step.layer,
                "op": step.opcode,
                "macs": step.macs,
                "output_shape": list(t.shape),
                "output_location": buf.location,
                "arena_offset": buf.offset if buf.location == "arena" else None,
                "arena_size": buf.nbytes if buf.location == "arena" else 0,
                "weights_bytes": sum(c.nbytes for c in step.constants),
                "scratch_bytes": self.memory.scratch_bytes([s.name for s in step.scratch]),
                "kernel": step.kind,
                **({"variant": step.notes} if step.notes else {}),
                **({"schedule": self.gpu.schedules.get(step.op_index, "-")} if self.gpu else {}),
            })
        return out


def compile_graph(graph: Graph, external_kernels: bool = False,
                  gpu: GpuTarget | None = None, isa: str = "generic",
                  flash_budget: int | None = None, prefer: str = "memory",
                  tuning: Tuning | None = None) -> CompiledModel:
    """Lower, plan and print ``graph``. ``external_kernels``: kernels are declared only, for an
    object file from TVM's LLVM backend (Cortex-A). ``gpu``: kernels for that GPU instead.
    ``isa``: the microcontroller kernel set (``generic``, ``dsp`` or ``mve``). ``flash_budget``:
    bytes the weights may take; SIMD kernels whose widened weights would exceed it give way to
    the portable kernels, largest saving first. ``prefer``: ``"memory"`` (the arena never grows
    for kernel scratch) or ``"speed"`` (every kernel may take its scratch). ``tuning``: the
    schedules `edge-sdk tune` measured for the Linux CPU kernels (``isa`` ``cpu*``); the Linux
    kernels always take their scratch (a padded input copy), as memory is not what limits
    a Linux board."""
    if prefer not in PREFERENCES:
        raise UsageError(f"prefer must be one of {', '.join(PREFERENCES)}, not '{prefer}'")
    if graph.origin == "onnx" and graph.source is not None:
        try:
            return _compile(graph, external_kernels, gpu, isa, flash_budget, prefer, tuning)
        except UnsupportedOpError:  # the target lacks a kernel: TVM's legalized ones instead
            from edge_sdk.frontend.relax_onnx import load_onnx

            graph = load_onnx(graph.source)
    return _compile(graph, external_kernels, gpu, isa, flash_budget, prefer, tuning)


def _compile(graph: Graph, external_kernels: bool, gpu: GpuTarget | None, isa: str,
             flash_budget: int | None, prefer: str, tuning: Tuning | None) -> CompiledModel:
    if graph.origin != "relax":  # Relax already folded an imported graph's constants
        graph = fold_constants(graph)
    if gpu is not None:
        from edge_sdk.codegen.gpu_model import emit_gpu
        from edge_sdk.compiler.gpu.lower import lower_gpu

        program, code = lower_gpu(graph, gpu)
        memory = plan(program, scratch_in_arena=False)
        return CompiledModel(program, memory, emit_gpu(program, memory, code), code)
    target = Target(isa, tuning)
    grow = prefer == "speed" or target.linux
    cache: dict = {}  # lowered steps, shared by every choice tried below
    program, memory = lower_within_arena(graph, target, grow=grow, cache=cache)
    if flash_budget is not None and target.microcontroller_simd:
        portable = _portable_within_flash(graph, program, flash_budget, cache)
        if portable:
            program, memory = lower_within_arena(graph, target, portable, grow=grow,
                                                 cache=cache)
    return CompiledModel(program, memory, emit(program, memory, external_kernels))


def _weights(program: Program) -> dict[int, int]:
    return {s.op_index: sum(c.nbytes for c in s.constants) for s in program.steps}


def _portable_within_flash(graph: Graph, program: Program, budget: int,
                           cache: dict) -> frozenset[int]:
    """Operators to give portable (int8-weight) kernels so the weights fit ``budget``."""
    wide = _weights(program)
    total = sum(wide.values())
    if total <= budget:
        return frozenset()
    everything = frozenset(op.index for op in graph.operators)
    narrow = _weights(lower(graph, program.isa, portable=everything, cache=cache))
    saving = sorted(((wide[i] - narrow[i], i) for i in wide if wide[i] > narrow[i]),
                    reverse=True)
    chosen: set[int] = set()
    for saved, index in saving:
        if total <= budget:
            break
        chosen.add(index)
        total -= saved
    return frozenset(chosen)


def lower_within_arena(graph: Graph, target: Target | str,
                       portable: frozenset[int] = frozenset(), grow: bool = False,
                       cache: dict | None = None) -> tuple[Program, MemoryPlan]:
    """Lower and plan so that kernel scratch never makes the arena larger.

    A kernel with scratch (an im2col buffer) is the faster choice, but only where the buffer
    fits in arena space that is free during its step anyway; elsewhere its operator is lowered
    again with a kernel that needs none. The arena is then exactly what the intermediates need.
    """
    cache = {} if cache is None else cache
    target = as_target(target)
    program = lower(graph, target, portable=portable, cache=cache)
    memory = plan(program)
    if graph.origin == "relax":  # TVM's kernels have no variant without their scratch
        return program, memory
    floor = plan(program, scratch_in_arena=False).arena_bytes
    if grow or memory.arena_bytes <= floor:
        return program, memory
    no_scratch: set[int] = set()
    by_size = sorted((s for s in program.steps if s.scratch),
                     key=lambda s: -sum(sc.nbytes for sc in s.scratch))
    for step in by_size:  # drop the largest scratch first until the arena is back to the floor
        no_scratch.add(step.op_index)
        program = lower(graph, target, frozenset(no_scratch), portable, cache)
        memory = plan(program)
        if memory.arena_bytes <= floor:
            break
    # Keep scratch where dropping it did not help (it was not on the peak).
    for index in sorted(no_scratch):
        trial = lower(graph, target, frozenset(no_scratch - {index}), portable, cache)
        trial_memory = plan(trial)
        if trial_memory.arena_bytes <= floor:
            no_scratch.discard(index)
            program, memory = trial, trial_memory
    return program, memory
