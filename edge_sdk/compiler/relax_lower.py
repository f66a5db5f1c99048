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
from edge_sdk.ir import Graph, Operator

_ALLOC = re.compile(r'^(\s*)(\w+) = T\.sblock_alloc_buffer\(\(([^()]*(?:\([^()]*\)[^()]*)*)\)'
                    r'(?:, "(\w+)")?\)$')


def pointer_params(func: Any, splats: frozenset[int] = frozenset(),
                   scratch_args: bool = True) -> tuple[Any, list[Scratch]]:
    """The same kernel taking plain typed pointers (``T.handle``) viewed through
    ``decl_buffer``, like our own kernels, instead of buffer parameters: TVM compiles buffer
    parameters only behind its packed calling convention (``MakePackedAPI``), which needs its
    runtime; pointer parameters give an ordinary C function. Done on the kernel's TVMScript
    text, which TVM parses back.

    Parameters whose positions are in ``splats`` are viewed with all strides 0: every element
    reads the first, so a constant whose elements are all equal is passed as one value.

    ``scratch_args``: buffers the kernel allocates become arguments (the arena holds them). A
    GPU build says False: there a schedule inlines such a stage (a convolution's padding) into
    its consumer, which it cannot do to a stage that writes an argument."""
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
    for position, (name, p) in enumerate(zip(names, func.params, strict=True)):
        dims = "".join(f"T.int64({int(d)}), " for d in p.shape)
        strides = (f", strides=({'T.int64(0), ' * len(p.shape)})"
                   if position in splats else "")
        params.append(f'{name}_ptr: T.handle("{p.dtype}")')
        decls.append(f'    {name} = T.decl_buffer(({dims}), "{p.dtype}", data={name}_ptr'
                     f'{strides})')
    # Buffers the kernel allocates (a convolution's padded input) become scratch arguments:
    # TVM would allocate them through its runtime; the arena holds them instead.
    scratch = []
    for k, line in enumerate(lines):
        m = _ALLOC.match(line) if scratch_args else None
        if m is None:
            continue
        name, shape_text, dtype = m.group(2), m.group(3), m.group(4) or "float32"
        extents = [int(a or b)
                   for a, b in re.findall(r"T\.int64\((\d+)\)|\b(\d+)\b", shape_text)]
        params.append(f'{name}_ptr: T.handle("{dtype}")')
        lines[k] = (f'{m.group(1)}{name} = T.decl_buffer(({shape_text}), "{dtype}", '
                    f'data={name}_ptr)')
        scratch.append(Scratch(f"{name}", (int(np.prod(extents)),), dtype))
    source = (text[:start] + "def main(" + ", ".join(params) + "):\n"
              + "\n".join([*lines[:attrs], *decls, *lines[attrs:]]))
    try:
        return tvm.script.from_source(source), scratch
    except Exception as err:  # TVM's parser raises its own diagnostics
        raise EdgeSDKError(f"a TVM kernel could not be given pointer parameters: "
                           f"{str(err).strip().splitlines()[0][:160]}") from None


def _uses(expr: Any, var: Any) -> bool:
    from tvm.tirx.analysis import undefined_vars

    return any(v.same_as(var) for v in undefined_vars(expr, []))


def reductions_outside(func: Any) -> Any:
    """The kernel with each reduction's loops moved outside its innermost spatial loop, where
    that loop walks the last (contiguous) axis of everything it reads.

    TVM's legalized kernels reduce innermost: a convolution sums one output pixel over its
    taps and channels before the next, a matmul with (K, N) weights strides N floats per step.
    Reduced outside, the innermost loop runs along rows of the input, weights and output,
    which the C compiler vectorizes. Each output element still sums its terms in the same
    order, so results are bit-for-bit those of the kernel as TVM wrote it."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    try:
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
    except Exception:  # a kernel without the usual root block: leave it as it is
        return func
    for block in blocks:
        stmt = sch.get(block)
        kinds = [int(iv.iter_type) for iv in stmt.iter_vars]
        loops = sch.get_loops(block)
        spatial = [k for k, kind in enumerate(kinds) if kind == 0]
        if 2 not in kinds or len(loops) != len(kinds) or not spatial or stmt.init is None:
            continue
        if set(kinds) - {0, 2} or any(int(sch.get(loop).extent) != int(iv.dom.extent)
                                      for loop, iv in zip(loops, stmt.iter_vars, strict=True)):
            continue  # loops that are not the block's axes, one for one
        inner = stmt.iter_vars[spatial[-1]].var
        if int(sch.get(loops[spatial[-1]]).extent) < 4:
            continue
        rows = all(not _uses(r.min, inner) for region in stmt.reads
                   for r in list(region.region)[:-1])
        if not rows:
            continue
        reduce = [loops[k] for k, kind in enumerate(kinds) if kind == 2]
        try:
            sch.reorder(*[loops[k] for k in spatial[:-1]], *reduce, loops[spatial[-1]])
            sch.decompose_reduction(block, reduce[0])
        except Exception:  # TVM refused the new order (a binding it cannot move)
            return func
    return sch.mod["main"]


def relax_macs(op: Operator, graph: Graph) -> int:
    """Multiply-accumulates of a legalized kernel, from its name and shapes (TVM names each
    kernel after the operator it computes: ``conv2d3``, ``matmul``): a convolution's output
    values times its weights' values per output channel (``conv2d_transpose``: per input
    value), a matmul's output values times its inner dimension; any other kernel counts
    its output values, as the operator library's elementwise kernels do. What ``inspect``,
    the report and the run-time budget read."""
    kind = op.opcode.rstrip("0123456789")
    shapes = [graph.tensor(i).shape for i in op.inputs]
    out = graph.tensor(op.outputs[0])
    size = int(np.prod(out.shape, dtype=np.int64))
    if kind.startswith("conv") and len(shapes) > 1 and len(shapes[1]) >= 3:
        per = int(np.prod(shapes[1][1:], dtype=np.int64))
        if "transpose" in kind:
            return int(np.prod(shapes[0], dtype=np.int64)) * per
        return size * per
    if kind in ("matmul", "dense") and shapes and shapes[0]:
        return size * int(shapes[0][-1])
    return size


def lower_relax(graph: Graph, for_cpu: bool = True) -> Program:
    """One step per Relax kernel. ``for_cpu``: move reductions outside (CPU loop order) and
    give the kernels' own buffers to the arena; a GPU build leaves the kernels as TVM wrote
    them, for its schedule rules."""
    steps = []
    for op in graph.operators:
        args: list = []
        splats = set()
        for position, index in enumerate(op.inputs):
            data = graph.tensor(index).data
            if data is None:
                args.append(TensorArg(index))
            elif data.size > 1 and (data == data.flat[0]).all():
                # All elements equal (a zero bias; weights made by ConstantOfShape): one value,
                # read through strides of 0, instead of the whole array in flash.
                args.append(Constant(f"c{index}", data.reshape(-1)[:1]))
                splats.add(position)
            else:
                args.append(Constant(f"c{index}", data))
        args += [TensorArg(index, writes=True) for index in op.outputs]
        func = op.options["prim_func"]
        func, scratch = pointer_params(reductions_outside(func) if for_cpu else func,
                                       frozenset(splats), scratch_args=for_cpu)
        args += [Scratch(f"l{op.index}_{sc.name}", sc.shape, sc.dtype) for sc in scratch]
        steps.append(Step(
            op_index=op.index, opcode=op.opcode, layer=graph.tensor(op.outputs[0]).name,
            kind="kernel", inputs=tuple(i for i in op.inputs if graph.tensor(i).data is None),
            outputs=op.outputs, func=func,
            func_name=f"{graph.name}_l{op.index}_{op.opcode}", args=tuple(args),
            macs=relax_macs(op, graph), notes="TVM Relax (ONNX importer, legalized)"))
    return Program(name=graph.name, graph=graph, steps=steps, isa="generic")
