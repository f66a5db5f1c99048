"""GPU program -> ``<name>.h`` and ``<name>.c``: the same API as the microcontroller output.

``<name>_run(input, output, arena)`` keeps its signature (``arena`` is unused: intermediates
live in GPU memory), so the Linux runner, the project templates and ``edge-sdk deploy`` work
unchanged. The source holds the weights, the device code as a string, one device buffer per
activation (tensors joined by a reshape share one), weight table and scratch array, and the
launch table, each launch commented with its source layer and the schedule TVM gave it.
"""

from __future__ import annotations

from edge_sdk.codegen.c_model import (
    CSources,
    constants_section,
    emit_header,
    signature_of,
)
from edge_sdk.codegen.text import c_comment
from edge_sdk.compiler.gpu.lower import GpuCode
from edge_sdk.compiler.planner import MemoryPlan
from edge_sdk.compiler.program import Constant, Program, Scratch, TensorArg
from edge_sdk.errors import UnsupportedOpError


def _string_literal(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        escaped = line.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
        out.append(f'  "{escaped}\\n"')
    return out or ['  ""']


def emit_gpu(program: Program, memory: MemoryPlan, gpu: GpuCode) -> CSources:
    name, graph = program.name, program.graph
    upper = name.upper()
    device = gpu.device

    # Buffers: input, output, one per planned activation buffer, then constants and scratch.
    names: list[str] = []
    sizes: list[int] = []
    data: list[str] = []
    index_of_tensor: dict[int, int] = {}
    producer: dict[int, int] = {}
    for step in program.steps:
        for t in step.outputs:
            producer.setdefault(memory.buffer_of(t).root, step.op_index)
    params = {(io.role, io.index): io.param for io in (*program.inputs, *program.outputs)}
    for buf in sorted(memory.buffers, key=lambda b: ({"input": 0, "output": 1}.get(
            b.location, 2), b.io, b.first)):
        label = (params[buf.location, buf.io] if buf.location != "arena"
                 else f"l{producer[buf.root]}_out")
        if label in names:  # a layer with several outputs (a split): out, out1, out2...
            label += str(sum(n.startswith(label) for n in names))
        for t in buf.tensors:
            index_of_tensor[t] = len(names)
        names.append(label)
        sizes.append(buf.nbytes)
        data.append("NULL")
    index_of_other: dict[str, int] = {}
    for step in program.steps:
        if step.kind == "copy" or (step.kind == "alias" and index_of_tensor[step.inputs[0]]
                                   != index_of_tensor[step.outputs[0]]):
            raise UnsupportedOpError(f"layer {step.op_index} ({step.opcode}) copies the model "
                                     "input straight to its output; nothing to run on a GPU")
        for a in step.args:
            if isinstance(a, (Constant, Scratch)) and a.name not in index_of_other:
                index_of_other[a.name] = len(names)
                names.append(a.name)
                sizes.append(a.nbytes)
                data.append(f"{name}_{a.name}" if isinstance(a, Constant) else "NULL")

    def buffer_index(a) -> int:
        return index_of_tensor[a.tensor] if isinstance(a, TensorArg) else index_of_other[a.name]

    enum = [f"  {upper}_BUF_{n.upper()} = {i}," for i, n in enumerate(names)]
    table = [f'  [{upper}_BUF_{n.upper()}] = {{"{n}", {size}u, {d}}},'
             for n, size, d in zip(names, sizes, data, strict=True)]
    steps_by_index = dict(enumerate(program.steps))
    arg_lists, launches = [], []
    for k, launch in enumerate(device.launches):
        step = steps_by_index[launch.step]
        out = graph.tensor(step.outputs[0])
        args = ", ".join(f"{upper}_BUF_{names[buffer_index(a)].upper()}" for a in launch.args)
        arg_lists.append(f"static const uint16_t {name}_args{k}[] = {{{args}}};")
        g, b = launch.grid, launch.block
        launches += [
            f"  /* [{step.op_index}] {step.opcode}: {c_comment(out.short_name)}, "
            f"{gpu.schedules[step.op_index]} */",
            f'  {{"{launch.kernel}", {{{g[0]}, {g[1]}, {g[2]}}}, {{{b[0]}, {b[1]}, {b[2]}}}, '
            f"{len(launch.args)}, {name}_args{k}}},",
        ]
    what = "PTX (CUDA C from TVM, compiled by NVRTC)" if device.language == "ptx" else (
        "OpenCL C from TVM")
    header = emit_header(program, 0, [
        f" * GPU inference ({gpu.target.summary}): the first call sets the GPU up and uploads",
        " * the weights; each call then copies the input in, runs the kernels, copies the",
        " * output out. `arena` is unused (pass NULL): intermediates live in GPU memory.",
    ], ["/* Run one inference. Returns 0 on success (a failure prints one line to stderr).",
        "   Not reentrant: the GPU state is shared by all calls. */"])
    constants = constants_section(program, name)
    source = "\n".join([
        f"/* {name}.c: generated by edge-sdk for {gpu.target.summary}. Do not edit. */",
        f'#include "{name}.h"',
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        '#include "edge_gpu.h"',
        "",
        "#if defined(__GNUC__)",
        "#define EDGE_ALIGNED __attribute__((aligned(16)))",
        "#else",
        "#define EDGE_ALIGNED",
        "#endif",
        "",
        "/* ---- weights and requantization tables (uploaded once) ---- */",
        constants,
        f"/* ---- device code: {what} ---- */",
        f"static const char {name}_device_code[] =",
        *_string_literal(device.code),
        "  ;",
        "",
        "/* ---- device buffers ---- */",
        "enum {",
        *enum,
        f"  {upper}_NUM_BUFFERS = {len(names)}",
        "};",
        f"static const edge_gpu_buffer {name}_buffers[{upper}_NUM_BUFFERS] = {{",
        *table,
        "};",
        "",
        "/* ---- kernel launches, in order ---- */",
        *arg_lists,
        f"static const edge_gpu_launch {name}_launches[] = {{",
        *launches,
        "};",
        "",
        f"static const uint16_t {name}_inputs[] = {{"
        + ", ".join(f"{upper}_BUF_{io.param.upper()}" for io in program.inputs) + "};",
        f"static const uint16_t {name}_outputs[] = {{"
        + ", ".join(f"{upper}_BUF_{io.param.upper()}" for io in program.outputs) + "};",
        f"static const edge_gpu_program {name}_program = {{",
        f'  "{name}", {name}_device_code, {name}_buffers, {upper}_NUM_BUFFERS,',
        f"  {name}_launches, sizeof {name}_launches / sizeof {name}_launches[0],",
        f"  {len(program.inputs)}, {len(program.outputs)}, {name}_inputs, {name}_outputs,",
        "};",
        f"static void *{name}_state;",
        "",
        f"{signature_of(program)} {{",
        f"  const void *const inputs[] = {{{', '.join(io.param for io in program.inputs)}}};",
        f"  void *const outputs[] = {{{', '.join(io.param for io in program.outputs)}}};",
        "  (void)arena;",
        f"  return edge_gpu_run(&{name}_program, &{name}_state, inputs, outputs);",
        "}",
        "",
    ])
    return CSources(f"{name}.h", header, f"{name}.c", source, len(device.launches), {})
