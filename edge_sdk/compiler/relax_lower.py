"""Steps for a graph imported through Relax: each layer is already a TIR kernel.

Relax legalized every ONNX operator into a PrimFunc that takes its inputs and writes its
outputs (destination-passing style); the step calls it with activations from the arena and
constants as ``const`` arrays, exactly like our own kernels, so planning and code generation
are shared. The kernels are TVM's default (unscheduled) loop nests: correct everywhere, fast
nowhere in particular.
"""

from __future__ import annotations

from edge_sdk.compiler.program import Constant, Program, Step, TensorArg
from edge_sdk.frontend.tflite import Graph


def lower_relax(graph: Graph) -> Program:
    steps = []
    for op in graph.operators:
        func = op.options["prim_func"]
        args = []
        for index in op.inputs:
            t = graph.tensor(index)
            args.append(Constant(f"c{index}", t.data) if t.data is not None else TensorArg(index))
        args += [TensorArg(index, writes=True) for index in op.outputs]
        steps.append(Step(
            op_index=op.index, opcode=op.opcode, layer=graph.tensor(op.outputs[0]).name,
            kind="kernel", inputs=tuple(i for i in op.inputs if graph.tensor(i).data is None),
            outputs=op.outputs, func=func.with_attr("tirx.noalias", True),
            func_name=f"{graph.name}_l{op.index}_{op.opcode}", args=tuple(args),
            notes="TVM Relax (ONNX importer, legalized)"))
    return Program(name=graph.name, graph=graph, steps=steps, isa="generic")
