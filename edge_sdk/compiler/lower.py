"""Graph -> Program: the operator registry and the per-operator lowering.

Each TFLite operator becomes one :class:`~edge_sdk.compiler.program.Step`. The registry below is
the single list of what the microcontroller compiler supports; anything else is refused before
any work is done, naming the operator and its index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from edge_sdk.compiler import registry
from edge_sdk.compiler.program import Constant, KernelArg, Program, Step
from edge_sdk.compiler.target import Target, as_target
from edge_sdk.errors import ModelError, UnsupportedOpError, clipped
from edge_sdk.ir import Graph, Operator

Lowering = Callable[[Operator, Graph, str], Step]


def supported_ops() -> list[str]:
    """The operators with an integer kernel (the microcontroller compiler's list)."""
    return sorted(registry.INTEGER)


def is_float_op(op: Operator, graph: Graph) -> bool:
    """A float operator: one of its activation inputs is float32 (QUANTIZE is the boundary;
    TRANSPOSE_CONV's first input is an int32 shape)."""
    if op.opcode in ("QUANTIZE", "DEQUANTIZE") or not op.inputs:
        return False
    return any(graph.tensor(t).dtype == "float32" and not graph.tensor(t).is_constant
               for t in op.inputs if t >= 0)


def lowering_for(op: Operator, graph: Graph) -> Lowering:
    if is_float_op(op, graph) and op.opcode not in registry.ALIASES:
        if op.opcode not in registry.FLOAT32:
            raise UnsupportedOpError(
                f"operator {op.index} ({op.opcode}) on float32 data is not supported: float "
                f"kernels exist for {', '.join(sorted(registry.FLOAT32))}; or quantize the "
                "model (`edge-sdk quantize`)")
        return registry.FLOAT32[op.opcode]
    return registry.INTEGER[op.opcode]


def unsupported_summary(graph: Graph, known: set[str] | dict | Callable[[Operator], bool]
                        ) -> str:
    """Every operator of ``graph`` outside ``known`` (names, or a test per operator), in one
    line: custom operators first and by name (they are the model author's own code: no compiler
    has them), then builtins with the index of their first use and how many there are."""
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    supported = known if callable(known) else (lambda op: op.opcode in known)
    for op in graph.operators:
        if not supported(op):
            first.setdefault(op.opcode, op.index)
            count[op.opcode] = count.get(op.opcode, 0) + 1

    def describe(opcode: str) -> str:
        where = f"operator {first[opcode]}" + (f" and {count[opcode] - 1} more"
                                                if count[opcode] > 1 else "")
        if opcode.startswith("CUSTOM:"):
            return f"custom operator '{opcode[len('CUSTOM:'):]}' ({where})"
        return f"{opcode} ({where})"

    ordered = sorted(first, key=lambda o: (not o.startswith("CUSTOM:"), first[o]))
    return ", ".join(describe(o) for o in ordered)


def check_graph(graph: Graph) -> None:
    """Refuse, before any work, what the integer compiler cannot take: every unsupported
    operator named at once, so one attempt tells the whole story."""
    def supported(op: Operator) -> bool:
        if is_float_op(op, graph) and op.opcode not in registry.ALIASES:
            return op.opcode in registry.FLOAT32
        return op.opcode in registry.INTEGER

    missing = unsupported_summary(graph, supported)
    if missing:
        custom = any(op.opcode.startswith("CUSTOM:") for op in graph.operators)
        raise UnsupportedOpError(
            f"not supported: {missing}; "
            + ("a custom operator is code the model's author wrote for their own runtime: "
               "re-export the model with builtin operators; " if custom else "")
            + "`edge-sdk ops` lists the operators and data types each target runs")
    if not graph.inputs or not graph.outputs:
        raise ModelError("the model has no inputs or no outputs: nothing to compile")
    for i in (*graph.inputs, *graph.outputs):
        t = graph.tensor(i)
        quantized = t.dtype in ("int8", "int16", "uint8")
        if t.dtype not in ("int8", "int16", "uint8", "int32", "int64", "float32") or (
                quantized and t.quant is None):
            raise ModelError(
                f"model input/output '{t.name}' is {t.dtype}"
                f"{' without quantization' if quantized else ''}: edge-sdk takes int8 and "
                "int16x8 models (float32 input/output around QUANTIZE/DEQUANTIZE is fine); run "
                "`edge-sdk quantize MODEL --calibration DATA -o model_int8.tflite` first"
            )


def lower(graph: Graph, target: Target | str = "generic",
          no_scratch: frozenset[int] = frozenset(),
          portable: frozenset[int] = frozenset(),
          cache: dict[tuple[int, bool, bool], Step] | None = None) -> Program:
    """Lower every operator: the ``target``'s variants (:mod:`.target`) take the layers they
    fit and the portable kernels of the registry the rest. Operators in ``no_scratch`` get
    kernels that need no scratch buffer, those in ``portable`` the portable kernels (int8
    weights: less flash). ``cache`` keeps lowered steps between calls that try other choices
    for a few operators. A graph TVM's Relax importer made (``origin == "relax"``) is already
    one kernel per layer."""
    if graph.origin == "relax":
        from edge_sdk.compiler.relax_lower import lower_relax

        return lower_relax(graph)
    check_graph(graph)
    graph, copies = separate_outputs(graph)
    target = as_target(target)
    cache = {} if cache is None else cache
    steps = []
    for op in graph.operators:
        key = (op.index, op.index not in no_scratch, op.index in portable)
        if key not in cache:
            try:
                cache[key] = _lower_op(op, graph, target, scratch=key[1], portable=key[2])
            except ModelError as err:  # name the layer where the kernel did not
                if str(err).startswith("operator "):
                    raise
                raise type(err)(f"operator {op.index} ({op.opcode}): {err}") from None
            except _MALFORMED as err:
                raise malformed(op, graph, err) from err
        steps.append(cache[key])
    steps = _copy_inputs_reshaped_into_outputs(graph, steps)
    return Program(name=graph.name, graph=graph, steps=steps + copies, isa=target.kernels)


def _copy_inputs_reshaped_into_outputs(graph: Graph, steps: list[Step]) -> list[Step]:
    """A model output that is a model input reshaped (a model that only flattens) cannot share
    the input's memory: the caller passes two buffers. Its last reshape becomes a copy."""
    source = {s.outputs[0]: s.inputs[0] for s in steps if s.kind == "alias"}

    def root(t: int) -> int:
        while t in source:
            t = source[t]
        return t

    return [dataclasses.replace(s, kind="copy", notes="the model's input, reshaped")
            if s.kind == "alias" and s.outputs[0] in graph.outputs
            and root(s.inputs[0]) in graph.inputs else s for s in steps]


def separate_outputs(graph: Graph) -> tuple[Graph, list[Step]]:
    """A model output that no operator writes (the model's input passed through, a constant)
    or that is listed twice gets a tensor of its own and a step that copies into it.

    LiteRT returns the input or the constant there; without this the output buffer was never
    written (all zeros, exit 0) or the C had an unused ``output`` parameter (-Werror failed,
    blamed on the toolchain)."""
    written = {t for op in graph.operators for t in op.outputs}
    seen: set[int] = set()
    tensors, outputs = list(graph.tensors), list(graph.outputs)
    copies: list[Step] = []
    for k, t in enumerate(graph.outputs):
        src = graph.tensor(t)
        if t in written and t not in seen and not src.is_variable:
            seen.add(t)
            continue
        index = len(tensors)
        tensors.append(dataclasses.replace(src, index=index, name=f"{src.name} (output {k})",
                                           data=None, is_variable=False))
        outputs[k] = index
        op_index = len(graph.operators) + len(copies)
        what = "constant" if src.is_constant else "input" if t in graph.inputs else "tensor"
        args: tuple[KernelArg, ...] = ()
        if src.is_constant:
            args = (Constant(f"output{k}_value", np.ascontiguousarray(
                np.asarray(src.data).astype(src.dtype).reshape(src.shape))),)
        copies.append(Step(op_index=op_index, opcode="COPY", layer=tensors[index].name,
                           kind="copy", inputs=() if src.is_constant else (t,),
                           outputs=(index,), args=args,
                           notes=f"output {k} is the model's {what} '{src.short_name}'"))
    if not copies:
        return graph, []
    return dataclasses.replace(graph, tensors=tensors, outputs=tuple(outputs)), copies


# What a kernel's own arithmetic raises when an operator's tensors do not fit together (a
# shape of the wrong rank, an axis past the end, a zero extent) in a way no check before it saw.
_MALFORMED = (ValueError, IndexError, KeyError, ZeroDivisionError, OverflowError, TypeError)


def malformed(op: Operator, graph: Graph, err: Exception) -> ModelError:
    """One line for an operator whose kernel could not be built from its tensors. Corrupt
    models end here (LiteRT refuses them too); a model LiteRT runs that ends here is our bug,
    and the message says to report it."""
    shapes = ", ".join(f"{graph.tensors[t].shape}" for t in (*op.inputs, *op.outputs)
                       if 0 <= t < len(graph.tensors))
    detail = clipped(f"{type(err).__name__}: {err}", 160)
    return ModelError(f"operator {op.index} ({op.opcode}) cannot be compiled from tensors of "
                      f"shapes {shapes} ({detail}): if LiteRT runs this model, please report "
                      "it as an edge-sdk bug")


def _lower_op(op: Operator, graph: Graph, target: Target, scratch: bool, portable: bool
              ) -> Step:
    name = f"{graph.name}_l{op.index}_{op.opcode.lower()}"
    # The SIMD kernels are int8 only: int16x8 layers take the portable kernels.
    int8 = all(graph.tensor(t).dtype == "int8" for t in (op.inputs[0], op.outputs[0]))
    key = f"float32:{op.opcode}" if is_float_op(op, graph) else op.opcode if int8 else None
    if key is not None and not portable:
        for variant in target.variants(key):
            step = variant(op, graph, name, scratch=scratch)
            if step is not None:
                return step
    return lowering_for(op, graph)(op, graph, name)
