"""Scheduled steps -> device code (PTX or OpenCL C) and the list of kernel launches.

We run TVM's own TIR pipeline for the target, split host from device the way ``tvm.compile``
does, and then keep the two halves apart: the device half goes through TVM's code generator
(CUDA C compiled to PTX by NVRTC, or OpenCL C), and from the host half we read
only what it would do at run time — which kernel, with which buffers, on what grid. Shapes are
static, so that is a fixed table; a small C runner replays it through the CUDA driver API or
the OpenCL API, with no TVM runtime on the board.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm.target import Target
from tvm.tirx.build import split_host_device_mods

from edge_sdk.compiler.gpu.nvrtc import compile_ptx
from edge_sdk.compiler.gpu.targets import GpuTarget
from edge_sdk.compiler.program import KernelArg, Step
from edge_sdk.errors import UnsupportedOpError

_DIMS = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class Launch:
    """One kernel launch: ``kernel<<<grid, block>>>(args...)`` of step ``step``."""

    step: int
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: tuple[KernelArg, ...]


@dataclass(frozen=True)
class DeviceCode:
    api: str           # "cuda" or "opencl"
    language: str      # what the board loads: "ptx" or "opencl-c"
    code: str
    launches: tuple[Launch, ...]
    source: str        # the kernels as TVM printed them (CUDA C or OpenCL C), for reading


def _launches(host: tvm.IRModule, steps: dict[str, tuple[int, Step]]) -> list[Launch]:
    """Read the kernel launches off the host functions, in the order each step makes them."""
    launches: list[Launch] = []
    for gv, func in sorted(host.functions_items(), key=lambda kv: steps[kv[0].name_hint][0]):
        index, step = steps[gv.name_hint]
        names = [str(p.name) for p in step.func.params]
        by_name = dict(zip(names, step.args, strict=True))
        calls: list = []
        tvm_ffi.structural_walk(func.body, [(tvm.ir.Call, calls.append)], order="pre")
        for call in calls:
            if "call_ffi_kernel" not in call.op.name:
                continue
            tags = list(call.attrs.launch_params)
            values = [int(v) for v in call.args[len(call.args) - len(tags):]]
            grid, block = [1, 1, 1], [1, 1, 1]
            for tag, value in zip(tags, values, strict=True):
                scope, dim = tag.split(".")
                if scope not in ("blockIdx", "threadIdx"):
                    raise UnsupportedOpError(f"layer {step.op_index}: kernel needs '{tag}', "
                                             "which the edge-sdk runner does not launch")
                (grid if scope == "blockIdx" else block)[_DIMS[dim]] = value
            args = []
            for a in call.args[1: len(call.args) - len(tags)]:
                name = str(a).removesuffix(".data")
                if name not in by_name:  # a Relax kernel's pointer is named after its buffer
                    name += "_ptr"
                if name not in by_name:
                    raise UnsupportedOpError(f"layer {step.op_index}: kernel argument {a} is "
                                             "not a buffer of the layer")
                args.append(by_name[name])
            launches.append(Launch(index, str(call.args[0].value), (grid[0], grid[1], grid[2]),
                                   (block[0], block[1], block[2]), tuple(args)))
        host_work: list = []
        tvm_ffi.structural_walk(func.body, [(tvm.tirx.For, host_work.append),
                                            (tvm.tirx.BufferStore, host_work.append)], order="pre")
        if host_work:  # the runner replays launches only: work left on the host would be lost
            raise UnsupportedOpError(f"layer {step.op_index} ({step.opcode}): part of its "
                                     "schedule runs on the host, which the runner does not do; "
                                     "report this model, or compile for a CPU board")
        if any(k in func.script() for k in ("AllocWorkspace", "device_api.")):
            raise UnsupportedOpError(f"layer {step.op_index} ({step.opcode}): its schedule "
                                     "needs device workspace, which the runner does not manage")
    return launches


# ``edge_dp4a`` (see :data:`.kernels.DOT4`) for each API, put before the kernels that call it.
DOT4_DEFINITIONS = {
    "cuda": "__device__ __forceinline__ int edge_dp4a(int a, int b, int c) {\n"
            "  return __dp4a(a, b, c);\n}\n",
    "opencl": "int edge_dp4a(int a, int b, int c) {\n"
              "  char4 x = as_char4(a), y = as_char4(b);\n"
              "  return c + x.s0 * y.s0 + x.s1 * y.s1 + x.s2 * y.s2 + x.s3 * y.s3;\n}\n",
}


def _with_definitions(source: str, api: str) -> str:
    return DOT4_DEFINITIONS[api] + source if "edge_dp4a(" in source else source


def lower_tir(mod: tvm.IRModule, tvm_target: Target) -> tvm.IRModule:
    """TVM's default TIR pipeline for the target, on scheduled functions."""
    mod = tvm.tirx.transform.BindTarget(tvm_target.with_host(tvm_target.host))(mod)
    pipeline, _finalize_host, _finalize_device = tvm.tirx.get_default_tir_pipeline(tvm_target)
    return pipeline(mod)


def build_device_code(steps: list[tuple[int, Step]], lowered: list[tvm.IRModule],
                      target: GpuTarget) -> DeviceCode:
    """``steps``: (index in the program, step with a scheduled function) for every kernel;
    ``lowered``: each one's function through :func:`lower_tir`, named after the step (the
    schedule's check lowered it already; lowering is most of a GPU compile's time)."""
    tvm_target: Target = target.tvm_target
    mod = tvm.IRModule()
    for one in lowered:
        mod.update(one)
    _pipeline, _finalize_host, finalize_device = tvm.tirx.get_default_tir_pipeline(tvm_target)
    host, devices = split_host_device_mods(mod)
    (device,) = devices.values()
    device = finalize_device()(device)
    launches = _launches(host, {s.func_name: (i, s) for i, s in steps})
    if target.api == "cuda":
        # TVM's CUDA C printer; the CUDA toolkit step TVM would run next is replaced by NVRTC
        # (see nvrtc.py), so the callback only has to hand the source back.
        tvm_ffi.register_global_func("tvm_callback_cuda_compile",
                                     lambda code, *_: bytearray(code.encode()), override=True)
        with tvm_target:
            source = tvm.get_global_func("target.build.cuda")(device, tvm_target)
        source = _with_definitions(source.inspect_source("cuda"), "cuda")
        ptx = compile_ptx(source, target.arch)
        return DeviceCode("cuda", "ptx", ptx, tuple(launches), source)
    module = tvm.get_global_func("target.build.opencl")(device, tvm_target)
    # OpenCL C may contract a*b+c into fma by default; TFLite's float steps are not contracted.
    source = "#pragma OPENCL FP_CONTRACT OFF\n" + _with_definitions(module.inspect_source(),
                                                                    "opencl")
    return DeviceCode("opencl", "opencl-c", source, tuple(launches), source)
