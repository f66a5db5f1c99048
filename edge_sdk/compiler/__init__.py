"""INT8 TFLite graph -> integer-only C: lowering, memory planning, code generation, report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_sdk.codegen.c_model import CSources, emit
from edge_sdk.compiler.lower import lower, supported_ops
from edge_sdk.compiler.planner import MemoryPlan, plan
from edge_sdk.compiler.program import Program
from edge_sdk.frontend.tflite import Graph

if TYPE_CHECKING:
    from edge_sdk.compiler.gpu.lower import GpuCode
    from edge_sdk.compiler.gpu.targets import GpuTarget

__all__ = ["CompiledModel", "compile_graph", "supported_ops"]


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
        g = self.program.graph
        return g.tensor(self.program.input).nbytes + g.tensor(self.program.output).nbytes

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
                "kernel": step.kind,
                **({"schedule": self.gpu.schedules.get(step.op_index, "-")} if self.gpu else {}),
            })
        return out


def compile_graph(graph: Graph, external_kernels: bool = False,
                  gpu: GpuTarget | None = None) -> CompiledModel:
    """Lower, plan and print ``graph``. ``external_kernels``: kernels are declared only, for an
    object file from TVM's LLVM backend (Cortex-A). ``gpu``: kernels for that GPU instead."""
    if gpu is not None:
        from edge_sdk.codegen.gpu_model import emit_gpu
        from edge_sdk.compiler.gpu.lower import lower_gpu

        program, code = lower_gpu(graph, gpu)
        memory = plan(program)
        return CompiledModel(program, memory, emit_gpu(program, memory, code), code)
    program = lower(graph)
    memory = plan(program)
    return CompiledModel(program, memory, emit(program, memory, external_kernels))
