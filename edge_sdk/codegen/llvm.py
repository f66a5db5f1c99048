"""Kernels -> a native object file through TVM's LLVM backend (Cortex-A: aarch64, armv7).

TVM lowers private PrimFuncs without the packed-function calling convention; the LLVM backend
then emits them with internal linkage, and drops them as unused. We run TVM's own lowering
pipeline, then give each kernel a ``global_symbol`` just before code generation, so each becomes
an ordinary external C function (same signature as the C backend prints) that the generated
``model.c`` calls. No TVM runtime is linked.
"""

from __future__ import annotations

from pathlib import Path

import tvm
from tvm import tirx

from edge_sdk.compiler.program import Program, Step
from edge_sdk.errors import EdgeSDKError


def unique_kernels(program: Program, function_of_step: dict[int, str]) -> list[Step]:
    names = set(function_of_step.values())
    return [s for s in program.steps if s.kind == "kernel" and s.func_name in names]


def build_kernel_object(program: Program, function_of_step: dict[int, str], target: dict,
                        out: Path) -> Path:
    """Compile the model's (deduplicated) kernels for ``target`` (an LLVM target dict)."""
    steps = unique_kernels(program, function_of_step)
    t = tvm.target.Target(target)
    mod = tvm.IRModule({s.func_name: s.func for s in steps})
    try:
        mod = tirx.transform.BindTarget(t.with_host(t))(mod)
        pipeline, _, _ = tirx.get_default_tir_pipeline(t)
        mod = pipeline(mod)
        mod = tirx.transform.LowerIntrin()(mod)
        exported = tvm.IRModule({gv.name_hint: f.with_attr("global_symbol", gv.name_hint)
                                 for gv, f in mod.functions.items()})
        runtime = tvm.get_global_func("target.build.llvm")(exported, t)
        runtime.write_to_file(str(out))
    except Exception as err:  # TVM raises its own error types
        raise EdgeSDKError(f"TVM's LLVM backend failed for {program.name} on "
                           f"{target.get('mtriple')}: {str(err).splitlines()[0]}") from None
    return out
