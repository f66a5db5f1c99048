"""Kernels -> C text through TVM's C code generator.

TVM 0.27 prints a private PrimFunc as a plain C function with pointer arguments, wrapped in an
FFI prelude (``#include "tvm/ffi/..."``, ``TVM_DLL``, ``extern "C"``) that our runtime-free output
must not carry. We build all kernels of a model in one IRModule, then keep only the function
definitions: each becomes ``static``, and the arguments the kernel only reads become ``const``.
Structurally identical kernels (same shapes and constants) are emitted once.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import tvm
import tvm_ffi

from edge_sdk.codegen.text import c_comment
from edge_sdk.compiler.program import Constant, Program, Step, TensorArg
from edge_sdk.errors import EdgeSDKError

_DEF = re.compile(r"^TVM_DLL void (\w+)\((.*?)\) \{$", re.MULTILINE)


@dataclass(frozen=True)
class KernelSource:
    """The C definitions of a model's kernels and which function each step calls."""

    code: str
    function_of_step: dict[int, str]
    unique_kernels: int


def _readonly_params(step: Step, params: list[str]) -> set[str]:
    """Parameter names the kernel only reads: constants and input tensors (not scratch)."""
    out = set()
    for name, arg in zip(params, step.args, strict=False):  # row-range ints come last
        if isinstance(arg, Constant) or (isinstance(arg, TensorArg) and not arg.writes):
            out.add(name)
    return out


def _split_params(signature: str) -> list[tuple[str, str]]:
    pairs = []
    for part in signature.split(","):
        ctype, _, name = part.strip().rpartition(" ")
        pairs.append((ctype, name))
    return pairs


# The C type of each tensor element type: kernel pointers here, arrays and buffers in c_model.
C_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
           "float32": "float", "float64": "double", "uint8": "uint8_t", "uint16": "uint16_t",
           "uint32": "uint32_t", "bool": "bool"}


def _register_c_intrinsics() -> None:
    """Math TVM's C target has no lowering for (the kernels Relax legalizes use them):
    ``fabs`` becomes libm's ``fabsf``/``fabs``."""
    from tvm import tirx
    from tvm.tirx.op import register_intrin_lowering

    def fabs(op):
        dtype = str(op.ty.dtype)
        return tirx.call_pure_extern(dtype, "fabsf" if dtype == "float32" else "fabs",
                                     op.args[0])

    with contextlib.suppress(Exception):  # already registered by a second import: keep it
        register_intrin_lowering("tirx.fabs", "c", f=fabs, level=99)


_register_c_intrinsics()


def pointer_types(step: Step) -> list[str]:
    """The C types of the kernel's pointer parameters, ``const`` where it only reads them."""
    params = [(f"{C_TYPES[str(v.ty.element_type.dtype)]} *", v.name)
              for v in step.func.params if hasattr(v.ty, "element_type")]
    readonly = _readonly_params(step, [name for _, name in params])
    return [f"{'const ' if name in readonly else ''}{ctype}" for ctype, name in params]


def _declaration(step: Step) -> str:
    """The kernel's C signature from its PrimFunc's typed pointer parameters, without printing
    its body: kernels that LLVM compiles may use LLVM intrinsics, which TVM's C printer cannot
    write."""
    params = [(f"{C_TYPES[str(v.ty.element_type.dtype)]}*", v.name)
              if hasattr(v.ty, "element_type") else (C_TYPES[str(v.ty.dtype)], v.name)
              for v in step.func.params]
    readonly = _readonly_params(step, [name for _, name in params])
    signature = ", ".join(f"{'const ' if name in readonly else ''}{ctype} {name}"
                          for ctype, name in params)
    return f"static void {step.func_name}({signature}) {{"


def generate_kernels(program: Program, declarations_only: bool = False) -> KernelSource:
    """The C definitions of the model's distinct kernels (``declarations_only``: just their
    signatures, for kernels compiled by LLVM)."""
    unique: list[Step] = []
    function_of_step: dict[int, str] = {}
    for step in program.steps:
        if step.kind != "kernel":
            continue
        for seen in unique:
            if tvm_ffi.structural_equal(seen.func, step.func):
                function_of_step[step.op_index] = seen.func_name
                break
        else:
            unique.append(step)
            function_of_step[step.op_index] = step.func_name
    if not unique:
        return KernelSource("", function_of_step, 0)
    if declarations_only:
        return KernelSource("\n".join(_declaration(s) for s in unique), function_of_step,
                            len(unique))

    mod = tvm.IRModule({s.func_name: s.func for s in unique})
    if len(unique) == 1:
        # A module with a single function marks it as the (exported) entry; a second, unused
        # private function keeps every kernel private.
        mod[f"{program.name}__unused"] = unique[0].func
    try:
        source = tvm.compile(mod, target="c").mod.inspect_source()
    except Exception as err:  # TVM raises its own error types
        raise EdgeSDKError(f"TVM failed to generate C for {program.name}: {err}") from None

    steps_by_name = {s.func_name: s for s in unique}
    chunks: dict[str, str] = {}
    for match in _DEF.finditer(source):
        name = match.group(1)
        if name not in steps_by_name:
            continue
        body_end = source.index("\n}\n", match.end()) + 3
        body = source[match.end() : body_end]
        params = _split_params(match.group(2))
        readonly = _readonly_params(steps_by_name[name], [p for _, p in params])
        signature = ", ".join(
            f"{'const ' if pname in readonly else ''}{ctype} {pname}" for ctype, pname in params
        )
        chunks[name] = f"static void {name}({signature}) {{{body}"
    # In layer order, each under a comment naming the layers it serves and its variant (TVM
    # prints them in name order, and a shared kernel is named after its first layer only).
    code = "\n".join(f"{kernel_comment(s, function_of_step, program)}\n{chunks[s.func_name]}"
                     for s in unique if s.func_name in chunks)
    return KernelSource(code, function_of_step, len(unique))


def kernel_comment(step: Step, function_of_step: dict[int, str], program: Program) -> str:
    """``/* <function>: <opcode>, layer(s) <indices> ('<first layer>'); <variant> */``."""
    served = [i for i, f in function_of_step.items() if f == step.func_name]
    layers = ("layer " if len(served) == 1 else "layers ") + ", ".join(map(str, served))
    name = program.graph.tensor(step.outputs[0]).short_name
    variant = f"; {step.notes}" if step.notes else ""
    return f"/* {c_comment(f'{step.func_name}: {step.opcode}, {layers} ({name!r}){variant}')} */"
