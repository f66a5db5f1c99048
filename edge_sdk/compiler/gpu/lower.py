"""Graph -> GPU program: compute definitions, schedules, device code, launch table."""

from __future__ import annotations

from dataclasses import dataclass

from edge_sdk.compiler import registry
from edge_sdk.compiler.gpu.build import DeviceCode, build_device_code
from edge_sdk.compiler.gpu.schedule import schedule_step
from edge_sdk.compiler.gpu.targets import GpuTarget
from edge_sdk.compiler.kernels.movement import lower_alias
from edge_sdk.compiler.lower import check_graph
from edge_sdk.compiler.program import Program, Step
from edge_sdk.errors import UnsupportedOpError
from edge_sdk.ir import Graph, Operator


@dataclass(frozen=True)
class GpuCode:
    """What the GPU path adds to a compiled model: the target, each layer's schedule, and the
    device code with its launches."""

    target: GpuTarget
    schedules: dict[int, str]  # op index -> the dlight rule that scheduled it
    device: DeviceCode


def supported_gpu_ops() -> list[str]:
    return sorted({*registry.GPU_INT8, *registry.GPU_FLOAT32, *registry.ALIASES})


def _lower_op(op: Operator, graph: Graph) -> Step:
    name = f"{graph.name}_l{op.index}_{op.opcode.lower()}"
    if op.opcode in registry.ALIASES:
        return lower_alias(op, graph, name)
    dtype = next((graph.tensor(t).dtype for t in op.inputs
                  if t >= 0 and not graph.tensor(t).is_constant), "int8")
    table = {"float32": registry.GPU_FLOAT32, "int8": registry.GPU_INT8}.get(dtype, {})
    if op.opcode not in table:
        # Named by the output's type too where it differs (an int16 TRANSPOSE_CONV whose first
        # input is its int32 output shape; QUANTIZE int32 -> int16).
        out = graph.tensor(op.outputs[0]).dtype if op.outputs else dtype
        types = dtype if out == dtype else f"{dtype} -> {out}"
        raise UnsupportedOpError(
            f"operator {op.index} ({op.opcode}, {types}) is not supported on GPU targets "
            f"yet; GPU operators: {', '.join(supported_gpu_ops())}; compile for a CPU "
            "board (e.g. --board rpi4) instead")
    return table[op.opcode](op, graph, name)


def lower_gpu(graph: Graph, target: GpuTarget) -> tuple[Program, GpuCode]:
    if graph.origin == "relax":  # TVM's legalized kernels, scheduled below like ours
        from edge_sdk.compiler.relax_lower import lower_relax

        steps = list(lower_relax(graph, for_cpu=False).steps)
    else:
        check_graph(graph)
        steps = [_lower_op(op, graph) for op in graph.operators]
    schedules: dict[int, str] = {}
    scheduled: list[tuple[int, Step]] = []
    lowered = []
    for i, step in enumerate(steps):
        if step.kind == "kernel":
            done = schedule_step(step, target.tvm_target)
            step.func = done.func
            schedules[step.op_index] = done.rule
            step.notes = (step.notes + "; " if step.notes else "") + done.rule
            scheduled.append((i, step))
            lowered.append(done.lowered)
    program = Program(name=graph.name, graph=graph, steps=steps)
    return program, GpuCode(target, schedules, build_device_code(scheduled, lowered, target))
