"""Steps for a graph imported through Relax: each layer is already a TIR kernel.

Relax legalized every ONNX operator into a PrimFunc that takes its inputs and writes its
outputs (destination-passing style); the step calls it with activations from the arena and
constants as ``const`` arrays, exactly like our own kernels, so planning and code generation
are shared. The kernels are TVM's default (unscheduled) loop nests: correct everywhere, fast
nowhere in particular.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from edge_sdk.compiler.program import Constant, Program, Scratch, Step, TensorArg
from edge_sdk.errors import EdgeSDKError
from edge_sdk.frontend.tflite import Graph

_ALLOC = re.compile(r'^(\s*)(\w+) = T\.sblock_alloc_buffer\(\(([^()]*(?:\([^()]*\)[^()]*)*)\)'
                    r'(?:, "(\w+)")?\)$')


def pointer_params(func: Any) -> tuple[Any, list[Scratch]]:
    """The same kernel taking plain typed pointers (``T.handle``) viewed through
    ``decl_buffer``, like our own kernels, instead of buffer parameters: TVM compiles buffer
    parameters only behind its packed calling convention (``MakePackedAPI``), which needs its
    runtime; pointer parameters give an ordinary C function. Done on the kernel's TVMScript
    text, which TVM parses back."""
    import tvm

    text = func.script()
    start = text.index("def main(")
    body = text.index("):\n", start) + 3
    lines = text[body:].split("\n")
    attrs = 0
    while attrs < len(lines) and lines[attrs].lstrip().startswith("T.func_attr("):
        attrs += 1
    # The names as the script prints them (unique, where two parameters share a name hint).
    names = re.findall(r"(\w+): T\.Buffer\(", text[start:body])
    if len(names) != len(func.params):
        raise EdgeSDKError("a TVM kernel's parameters could not be read from its script")
    params, decls = [], []
    for name, p in zip(names, func.params, strict=True):
        dims = "".join(f"T.int64({int(d)}), " for d in p.shape)
        params.append(f'{name}_ptr: T.handle("{p.dtype}")')
        decls.append(f'    {name} = T.decl_buffer(({dims}), "{p.dtype}", data={name}_ptr)')
    # Buffers the kernel allocates (a convolution's padded input) become scratch arguments:
    # TVM would allocate them through its runtime; the arena holds them instead.
    scratch = []
    for k, line in enumerate(lines):
        m = _ALLOC.match(line)
        if m is None:
            continue
        name, shape, dtype = m.group(2), m.group(3), m.group(4) or "float32"
        dims = [int(a or b) for a, b in re.findall(r"T\.int64\((\d+)\)|\b(\d+)\b", shape)]
        params.append(f'{name}_ptr: T.handle("{dtype}")')
        lines[k] = f'{m.group(1)}{name} = T.decl_buffer(({shape}), "{dtype}", data={name}_ptr)'
        scratch.append(Scratch(f"{name}", (int(np.prod(dims)),), dtype))
    source = (text[:start] + "def main(" + ", ".join(params) + "):\n"
              + "\n".join([*lines[:attrs], *decls, *lines[attrs:]]))
    try:
        return tvm.script.from_source(source), scratch
    except Exception as err:  # TVM's parser raises its own diagnostics
        raise EdgeSDKError(f"a TVM kernel could not be given pointer parameters: "
                           f"{str(err).strip().splitlines()[0][:160]}") from None


def lower_relax(graph: Graph) -> Program:
    steps = []
    for op in graph.operators:
        args: list = []
        for index in op.inputs:
            t = graph.tensor(index)
            args.append(Constant(f"c{index}", t.data) if t.data is not None else TensorArg(index))
        args += [TensorArg(index, writes=True) for index in op.outputs]
        func, scratch = pointer_params(op.options["prim_func"])
        args += [Scratch(f"l{op.index}_{sc.name}", sc.shape, sc.dtype) for sc in scratch]
        steps.append(Step(
            op_index=op.index, opcode=op.opcode, layer=graph.tensor(op.outputs[0]).name,
            kind="kernel", inputs=tuple(i for i in op.inputs if graph.tensor(i).data is None),
            outputs=op.outputs, func=func,
            func_name=f"{graph.name}_l{op.index}_{op.opcode}", args=tuple(args),
            notes="TVM Relax (ONNX importer, legalized)"))
    return Program(name=graph.name, graph=graph, steps=steps, isa="generic")
