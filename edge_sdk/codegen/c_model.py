"""Program + memory plan -> ``<name>.h`` and ``<name>.c``: the model as plain C99.

The header is the whole API (the shape of CMSIS-NN's: explicit arena, explicit sizes)::

    #define KWS_ARENA_SIZE 16000
    int kws_run(const int8_t *input, int8_t *output, uint8_t *arena);

The source holds the weights as ``const`` arrays (flash), the kernels TVM generated, and a run
function that calls them in order on statically planned arena offsets. No malloc, no runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_sdk.codegen.text import c_comment
from edge_sdk.codegen.tvm_c import C_TYPES, generate_kernels
from edge_sdk.compiler.planner import STATE_READY, MemoryPlan
from edge_sdk.compiler.program import (
    Constant,
    ModelIO,
    Program,
    Scratch,
    Step,
    TensorArg,
    packed_bytes,
)
from edge_sdk.ir import Tensor

_CTYPES = C_TYPES


@dataclass(frozen=True)
class CSources:
    header_name: str
    header: str
    source_name: str
    source: str
    unique_kernels: int
    function_of_step: dict[int, str]
    external_kernels: bool = False  # kernels declared only; they come from an LLVM object


def _literal(value: object, dtype: str) -> str:
    if dtype.startswith("float") and not math.isfinite(number := float(value)):  # type: ignore[arg-type]
        # math.h's constant expressions (Python would print "inf", "nan": not C). An
        # attention mask's fill value is -inf in a transformers export.
        return "NAN" if math.isnan(number) else "-INFINITY" if number < 0 else "INFINITY"
    if dtype == "float32":  # shortest text that reads back as the same float32
        text = np.format_float_scientific(np.float32(value), unique=True)
        return f"{text}f"
    if dtype == "float64":
        return repr(float(value))  # Python's repr round-trips a double
    return str(int(value))  # type: ignore[call-overload]


def _array(c: Constant, prefix: str) -> str:
    dtype = c.dtype
    ctype = _CTYPES[dtype]
    flat = c.array.reshape(-1)
    per_line = 6 if dtype.startswith("float") else 16
    # Integers print as Python ints in bulk (a MobileNetV2 has 3.5 M weights); floats need
    # their shortest round-tripping text, one by one; bools as 1/0 (Python's ``True`` is not C).
    if dtype == "bool":
        flat = flat.astype(np.uint8)
    texts = ([str(v) for v in flat.tolist()] if not dtype.startswith("float")
             else [_literal(v, dtype) for v in flat])
    lines = ["  " + ", ".join(texts[i : i + per_line]) + ","
             for i in range(0, len(texts), per_line)]
    shape = "x".join(str(d) for d in c.array.shape)
    return (
        f"/* {c.name}: {c.dtype} [{shape}] */\n"
        f"static const {ctype} {prefix}_{c.name}[{flat.size}] EDGE_ALIGNED = {{\n"
        + "\n".join(lines)
        + "\n};\n"
    )


def constants_section(program: Program, prefix: str) -> str:
    """The flash arrays, one per distinct content, then a name for each constant whose values
    another array already holds (an unrolled RNN's repeated weights: stored once)."""
    arrays = [_array(c, prefix) for c in program.constants]
    aliases = [f"#define {prefix}_{alias} {prefix}_{home}  /* the same values */"
               for alias, home in program.constant_aliases.items()]
    return "\n".join([*arrays, *aliases])


def microkernels(isa: str) -> str:
    """The hand-written innermost pieces a kernel set calls (``T.call_extern``)."""
    from edge_sdk.compiler.kernels import dsp, mve

    return {"dsp": dsp.MICROKERNELS, "mve": dsp.MICROKERNELS + "\n" + mve.MICROKERNELS}[isa]


def _shape_text(t: Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _prototypes(kernel_code: str) -> str:
    """``extern`` declarations of kernels defined elsewhere (an object file from LLVM)."""
    lines = [line for line in kernel_code.splitlines() if line.startswith("static void ")]
    return "\n".join("void " + line[len("static void "):].rstrip(" {") + ";" for line in lines)


def _parallel_section(tasks: dict[str, Step]) -> list[str]:
    """``edge_parallel_for`` (serial here; a program with threads, such as the Linux runner,
    links its own) and one adapter per kernel that splits its rows."""
    from edge_sdk.codegen.tvm_c import pointer_types

    lines = [
        "/* ---- rows split over threads ---- */",
        "/* Kernels that can split their work take (phase, first row, end row). The program",
        "   may link its own edge_parallel_for that runs the rows on several threads; this",
        "   one runs them all on the caller's. */",
        "typedef void (*edge_rows_task)(void *const *args, int32_t phase, int32_t begin,",
        "                               int32_t end);",
        "void edge_parallel_for(edge_rows_task task, void *const *args, int32_t phase,",
        "                       int32_t rows);",
        "#if defined(__GNUC__)",
        "__attribute__((weak))",
        "#endif",
        "void edge_parallel_for(edge_rows_task task, void *const *args, int32_t phase,",
        "                       int32_t rows) {",
        "  task(args, phase, 0, rows);",
        "}",
        "",
    ]
    for func, step in tasks.items():
        casts = ", ".join(f"({ctype})args[{k}]" for k, ctype in enumerate(pointer_types(step)))
        lines += [f"static void {func}_rows(void *const *args, int32_t phase, int32_t begin,",
                  "                          int32_t end) {",
                  f"  {func}({casts}, phase, begin, end);", "}", ""]
    return lines


def signature_of(program: Program) -> str:
    """``int <name>_run(const T *input, U *output, uint8_t *arena)``; a model with several
    inputs or outputs takes one typed pointer for each, in the model's order."""
    graph = program.graph

    def param(io: ModelIO) -> str:
        ctype = _CTYPES[graph.tensor(io.tensor).dtype]
        return f"{'const ' if io.role == 'input' else ''}{ctype} *{io.param}"

    params = ", ".join(param(io) for io in (*program.inputs, *program.outputs))
    return f"int {program.name}_run({params}, uint8_t *arena)"


def _io_block(program: Program, io: ModelIO) -> list[str]:
    """The macros of one input or output: ``<NAME>_INPUT_<i>_*``, and ``<NAME>_INPUT_*`` too
    when the model has a single input (the names a one-input model always had)."""
    upper, t = program.name.upper(), program.graph.tensor(io.tensor)
    dims = ", ".join(str(d) for d in t.shape)
    values = [("TYPE", _CTYPES[t.dtype]), ("SIZE", str(t.size)), ("DIMS", str(len(t.shape))),
              ("SHAPE", f"{{{dims}}}"), ("OFFSET", str(io.offset))]
    if t.quant is not None:
        values += [("SCALE", _literal(t.quant.scale[0], "float32")),
                   ("ZERO_POINT", str(t.quant.zero_point[0]))]
    role = io.role.upper()
    several = len(program.inputs if io.role == "input" else program.outputs) > 1
    prefixes = [f"{upper}_{role}_{io.index}"] + ([] if several else [f"{upper}_{role}"])
    lines = [f"/* {io.role} {io.index}: '{c_comment(t.name)}' "
             f"({io.param} in {program.name}_run) */"]
    for prefix in prefixes:
        lines += [f"#define {prefix}_{key} {value}" for key, value in values]
    return lines


def emit_header(program: Program, arena_bytes: int, about: list[str], api_doc: list[str]) -> str:
    """``<name>.h``: sizes, shapes, quantization and the run function (CPU and GPU alike)."""
    name, graph = program.name, program.graph
    upper = name.upper()
    source_name = graph.source.name if graph.source else name
    io_macros = [line for io in (*program.inputs, *program.outputs)
                 for line in _io_block(program, io)]

    return "\n".join(
        [
            f"/* {name}.h: generated by edge-sdk from {source_name}.",
            *about,
            " */",
            f"#ifndef {upper}_H_",
            f"#define {upper}_H_",
            "",
            "#include <stdint.h>",
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            f"#define {upper}_ARENA_SIZE {arena_bytes}",
            f"#define {upper}_NUM_INPUTS {len(program.inputs)}",
            f"#define {upper}_NUM_OUTPUTS {len(program.outputs)}",
            "/* All inputs (outputs) packed into one byte array, each at its _OFFSET: the layout",
            "   edge-sdk's firmware and host tools exchange. */",
            f"#define {upper}_INPUTS_BYTES {packed_bytes(program.inputs)}",
            f"#define {upper}_OUTPUTS_BYTES {packed_bytes(program.outputs)}",
            *io_macros,
            f"#define {upper}_NUM_LAYERS {len(program.steps)}",
            "",
            *api_doc,
            f"{signature_of(program)};",
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            f"#endif /* {upper}_H_ */",
            "",
        ]
    )


STATE_READY_MARK = "0x45444745u"  # "EDGE": a zeroed arena never holds it


def _state_init(program: Program, memory: MemoryPlan) -> tuple[list[str], list[str]]:
    """The arrays and the first-call block that set the model's state to its starting value
    (:attr:`Program.state_init`): memset where the value is one byte repeated (an int8 zero
    point), memcpy from a flash array otherwise. A word in the arena says it was done, so "zero
    the arena" still means "start from the initial state" to every caller."""
    if not program.state_init:
        return [], []
    name = program.name
    ready = memory.scratch(STATE_READY)
    arrays: list[str] = ["/* ---- the state's starting values ---- */"]
    sets: list[str] = []
    for t, value in program.state_init:
        tensor = program.graph.tensor(t)
        buf = memory.buffer_of(t)
        raw = value.reshape(-1).view(np.uint8)
        where = f"arena + {buf.offset}"
        what = f"'{c_comment(tensor.short_name)}', {tensor.dtype} {list(tensor.shape)}"
        if (raw == raw[0]).all():
            sets.append(f"    memset({where}, {int(raw[0])}, {raw.size});  /* {what} */")
        else:
            const = Constant(f"state{t}_initial", value)
            arrays.append(_array(const, name))
            sets.append(f"    memcpy({where}, {name}_{const.name}, {raw.size});  /* {what} */")
    lines = [
        "  /* The state starts from the model's initial values, set on the first call on a",
        "     zeroed arena (TFLite: a variable's initialiser, or its zero point). */",
        f"  uint32_t *const state_ready = (uint32_t *)(arena + {ready.offset});",
        f"  if (*state_ready != {STATE_READY_MARK}) {{",
        *sets,
        f"    *state_ready = {STATE_READY_MARK};",
        "  }",
    ]
    return arrays, lines


def emit(program: Program, memory: MemoryPlan, external_kernels: bool = False) -> CSources:
    """Print the model. With ``external_kernels`` the kernels are only declared: they come from
    an object file compiled by TVM's LLVM backend (the Cortex-A path)."""
    name = program.name
    upper = name.upper()
    graph = program.graph
    kernels = generate_kernels(program, declarations_only=external_kernels)
    signature = signature_of(program)
    buffers = []
    for io in (*program.inputs, *program.outputs):
        t = graph.tensor(io.tensor)
        macro = f"{upper}_{io.role.upper()}_{io.index}"
        quant = f", quantization: {macro}_*" if t.quant is not None else ""
        buffers.append(f" *   {io.param:<7}[{macro}_SIZE] {_CTYPES[t.dtype]}{quant}")
    header = emit_header(program, memory.arena_bytes, [
        " * Integer-only inference, no heap, no runtime. The caller owns the buffers:",
        *buffers,
        f" *   arena  [{upper}_ARENA_SIZE]  scratch for intermediates, 16-byte aligned",
    ], ["/* Run one inference. Returns 0 on success. Inputs and outputs must not overlap",
        "   the arena. Reentrant: all state lives in the arena the caller passes. */",
        *(["/* This model keeps state between inferences (an LSTM's hidden and cell state, a",
           "   stream buffer) in the arena: zero the arena before the first call to start from",
           "   the model's initial state, and keep it between calls. */"]
          if any(t.is_variable for t in graph.tensors) else [])])
    params = {(io.role, io.index): io.param for io in (*program.inputs, *program.outputs)}

    def pointer(tensor: int) -> str:
        buf = memory.buffer_of(tensor)
        if buf.location in ("input", "output"):
            return params[buf.location, buf.io]
        return producer[buf.root]

    def scratch_pointer(sc: Scratch) -> str:
        ctype = _CTYPES[sc.dtype]
        buf = memory.scratch(sc.name)
        return f"({ctype} *)(arena + {buf.offset}) /* {sc.name}, {buf.nbytes} B */"

    # Arena buffers are named after the layer that first writes them: l<index>_out.
    # (a layer with several outputs: l<index>_out, l<index>_out1, ...)
    producer: dict[int, str] = {}
    for step in program.steps:
        for k, t in enumerate(step.outputs):
            producer.setdefault(memory.buffer_of(t).root,
                                f"l{step.op_index}_out{k if k else ''}")
    for step in program.steps:  # a variable that no step writes (its value only read)
        for t in step.inputs:
            buf = memory.buffer_of(t)
            if buf.location == "arena":
                producer.setdefault(buf.root, f"state{buf.root}")
    body: list[str] = []
    declared: set[int] = set()
    tasks: dict[str, Step] = {}  # kernels split over threads, by function
    for position, step in enumerate(program.steps):
        out = graph.tensor(step.outputs[0])
        body.append(f"  /* [{step.op_index}] {step.opcode}: {c_comment(out.short_name)}")
        body.append(f"     -> {_shape_text(out)} {out.dtype}, {step.macs} MACs */")
        # A variable may be read (READ_VARIABLE) before the step that writes it: declared here.
        for t in (*step.inputs, *step.outputs):
            buf = memory.buffer_of(t)
            if buf.location == "arena" and buf.root not in declared:
                declared.add(buf.root)
                ctype = _CTYPES[graph.tensor(t).dtype]
                body.append(f"  {ctype} *const {pointer(t)} = ({ctype} *)(arena + {buf.offset});"
                            f"  /* {buf.nbytes} B, live steps {buf.first}..{buf.last} */")
        if step.notes:
            body.append(f"  /* kernel: {c_comment(step.notes)} */")
        if step.kind == "copy":
            src = (f"{name}_{step.constants[0].name}" if step.constants
                   else pointer(step.inputs[0]))
            body.append(f"  memcpy({pointer(step.outputs[0])}, {src}, {out.nbytes});")
        elif step.kind == "alias":  # the planner gave input and output one buffer
            body.append("  /* shares its input's memory: no code */")
        else:
            args = [
                pointer(a.tensor) if isinstance(a, TensorArg)
                else scratch_pointer(a) if isinstance(a, Scratch) else f"{name}_{a.name}"
                for a in step.args
            ]
            func = kernels.function_of_step[step.op_index]
            if step.row_phases:
                tasks.setdefault(func, step)
                body.append("  {")
                pointers = ", ".join(f"(void *){a}" for a in args)
                body.append(f"    void *const args[] = {{{pointers}}};")
                for phase, rows in enumerate(step.row_phases):
                    what = ("the padded input copy" if phase < len(step.row_phases) - 1
                            else "output rows")
                    body.append(f"    edge_parallel_for({func}_rows, args, {phase}, {rows});"
                                f"  /* {what} */")
                body.append("  }")
            else:
                body.append(f"  {func}({', '.join(args)});")
        body.append(f"  EDGE_PROFILE_LAYER({position});")
        body.append(f"  EDGE_TRACE_LAYER({position}, {pointer(step.outputs[0])}, {out.nbytes});")
        body.append("")

    state_arrays, state_lines = _state_init(program, memory)
    used = {pointer(t) for step in program.steps for t in (*step.inputs, *step.outputs)}
    unused = [f"  (void){io.param};  /* not read by any layer (e.g. a shape operand we fix at "
              "compile time) */" for io in program.inputs if io.param not in used]
    constants = constants_section(program, name)
    source = "\n".join(
        [
            f"/* {name}.c: generated by edge-sdk. Do not edit; regenerate from the model. */",
            f'#include "{name}.h"',
            "",
            "#include <math.h>",
            "#include <stdbool.h>",
            "#include <stdint.h>",
            "#include <string.h>",
            "",
            "#if defined(__GNUC__)",
            "#define EDGE_ALIGNED __attribute__((aligned(4)))",
            "#else",
            "#define EDGE_ALIGNED",
            "#endif",
            "",
            "/* Built with -DEDGE_PROFILE, the program (edge-sdk's firmware) is told when each",
            "   layer ends, to time it; otherwise the hook compiles to nothing. */",
            "#if defined(EDGE_PROFILE)",
            "void edge_profile_layer(uint32_t layer);",
            "#define EDGE_PROFILE_LAYER(k) edge_profile_layer(k)",
            "#else",
            "#define EDGE_PROFILE_LAYER(k) ((void)0)",
            "#endif",
            "/* Built with -DEDGE_TRACE, the program may stop the run after a layer to read that",
            "   layer's output (edge-sdk validate); the run then returns 1. */",
            "#if defined(EDGE_TRACE)",
            "int edge_trace_layer(uint32_t layer, const void *data, uint32_t bytes);",
            "#define EDGE_TRACE_LAYER(k, p, n) \\",
            "  do { if (edge_trace_layer((k), (p), (n))) return 1; } while (0)",
            "#else",
            "#define EDGE_TRACE_LAYER(k, p, n) ((void)0)",
            "#endif",
            "",
            "/* ---- weights and requantization tables (flash) ---- */",
            constants,
            *([microkernels(program.isa)] if program.isa in ("dsp", "mve") else []),
            *(["/* ---- kernels (compiled by Apache TVM's LLVM backend, in kernels.o) ---- */",
                _prototypes(kernels.code), ""] if external_kernels else
              ["/* ---- kernels (generated by Apache TVM's C code generator) ---- */",
               kernels.code]),
            *(_parallel_section(tasks) if tasks else []),
            "/* ---- the model ---- */",
            *state_arrays,
            f"{signature} {{",
            "  (void)arena;",
            *unused,
            *state_lines,
            *body,
            "  return 0;",
            "}",
            "",
        ]
    )
    return CSources(f"{name}.h", header, f"{name}.c", source, kernels.unique_kernels,
                    kernels.function_of_step, external_kernels)
