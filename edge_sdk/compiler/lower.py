"""Graph -> Program: the operator registry and the per-operator lowering.

Each TFLite operator becomes one :class:`~edge_sdk.compiler.program.Step`. The registry below is
the single list of what the microcontroller compiler supports; anything else is refused before
any work is done, naming the operator and its index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial

import numpy as np

from edge_sdk.compiler.kernels import extremes, movement
from edge_sdk.compiler.kernels.activation import (
    lower_leaky_relu_int16,
    lower_prelu,
    lower_rescale,
)
from edge_sdk.compiler.kernels.batch_matmul import lower_batch_matmul
from edge_sdk.compiler.kernels.boundary import lower_dequantize, lower_quantize_float
from edge_sdk.compiler.kernels.common import refuse
from edge_sdk.compiler.kernels.conv import lower_conv2d
from edge_sdk.compiler.kernels.elementwise import (
    lower_add,
    lower_div,
    lower_maximum_minimum,
    lower_mul,
    lower_squared_difference,
)
from edge_sdk.compiler.kernels.fully_connected import lower_fully_connected
from edge_sdk.compiler.kernels.layout import (
    lower_concatenation,
    lower_pad,
    lower_strided_slice,
    lower_transpose,
)
from edge_sdk.compiler.kernels.log_softmax import lower_log_softmax
from edge_sdk.compiler.kernels.lookup import lower_lookup
from edge_sdk.compiler.kernels.lstm import lower_lstm
from edge_sdk.compiler.kernels.normalize import lower_l2_normalization
from edge_sdk.compiler.kernels.pooling import lower_pool2d
from edge_sdk.compiler.kernels.reduce import lower_reduce_sum
from edge_sdk.compiler.kernels.resize import lower_resize_bilinear, lower_resize_nearest
from edge_sdk.compiler.kernels.schedule import Tuning
from edge_sdk.compiler.kernels.softmax import lower_softmax
from edge_sdk.compiler.kernels.svdf import lower_svdf
from edge_sdk.compiler.kernels.transpose_conv import lower_transpose_conv
from edge_sdk.compiler.program import Constant, KernelArg, Program, Step
from edge_sdk.errors import ModelError, UnsupportedOpError
from edge_sdk.ir import Graph, Operator

Lowering = Callable[[Operator, Graph, str], Step]


def lower_alias(op: Operator, graph: Graph, func_name: str) -> Step:
    """RESHAPE/SQUEEZE/EXPAND_DIMS: same bytes, new shape, so the output aliases the input."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype != y.dtype or x.size != y.size:
        raise refuse(op, f"reshape from {x.shape} {x.dtype} to {y.shape} {y.dtype}")
    if x.quant != y.quant:
        raise refuse(op, "reshape changes the quantization parameters")
    return Step(op_index=op.index, opcode=op.opcode, layer=y.name, kind="alias",
                inputs=(x.index,), outputs=(y.index,))


LOWERINGS: dict[str, Lowering] = {
    "CONV_2D": lower_conv2d,
    "DEPTHWISE_CONV_2D": lower_conv2d,
    "FULLY_CONNECTED": lower_fully_connected,
    "AVERAGE_POOL_2D": lower_pool2d,
    "MAX_POOL_2D": lower_pool2d,
    "ADD": lower_add,
    "SUB": lower_add,
    "MUL": lower_mul,
    "RELU": lower_rescale,
    "RELU6": lower_rescale,
    "RELU_N1_TO_1": lower_rescale,
    "QUANTIZE": lambda op, g, name: (
        lower_quantize_float if g.tensor(op.inputs[0]).dtype == "float32" else lower_rescale
    )(op, g, name),
    "DEQUANTIZE": lower_dequantize,
    "PAD": lower_pad,
    "PADV2": lower_pad,
    "CONCATENATION": lower_concatenation,
    "STRIDED_SLICE": lower_strided_slice,
    "TRANSPOSE": lower_transpose,
    "MEAN": lower_reduce_sum,
    "SUM": lower_reduce_sum,
    "BATCH_MATMUL": lower_batch_matmul,
    "L2_NORMALIZATION": lower_l2_normalization,
    "LOG_SOFTMAX": lower_log_softmax,
    "LOGISTIC": lower_lookup,
    "TANH": lower_lookup,
    "HARD_SWISH": lower_lookup,
    "LEAKY_RELU": lambda op, g, name: (
        lower_leaky_relu_int16 if g.tensor(op.inputs[0]).dtype == "int16" else lower_lookup
    )(op, g, name),
    "ABS": lower_lookup,
    "GELU": lower_lookup,
    "RSQRT": lower_lookup,
    "SQUARED_DIFFERENCE": lower_squared_difference,
    "DIV": lower_div,
    "ELU": lower_lookup,
    "PRELU": lower_prelu,
    "TRANSPOSE_CONV": lower_transpose_conv,
    "RESIZE_NEAREST_NEIGHBOR": lower_resize_nearest,
    "RESIZE_BILINEAR": lower_resize_bilinear,
    **movement.LOWERINGS,
    **extremes.LOWERINGS,
    "MAXIMUM": lower_maximum_minimum,
    "MINIMUM": lower_maximum_minimum,
    "SOFTMAX": lower_softmax,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm,
    "SVDF": lower_svdf,
    "RESHAPE": lower_alias,
    "SQUEEZE": lower_alias,
    "EXPAND_DIMS": lower_alias,
}


# Operators whose kernels also take int16x8 (int16 activations, zero point 0), each checked
# bit for bit against LiteRT or TFLM's goldens (tests/test_int16_*.py). Others refuse int16 by
# name. The README's operator table is generated from these registries (edge_sdk.support).
INT16_OPS = frozenset({
    "ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV",
    "LEAKY_RELU", "RELU", "RELU6", "RELU_N1_TO_1", "QUANTIZE", "PAD", "PADV2", "STRIDED_SLICE",
    "TRANSPOSE", "CONCATENATION", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "RESHAPE",
    "SQUEEZE", "EXPAND_DIMS", "MEAN", "SUM", "BATCH_MATMUL", "FULLY_CONNECTED",
    "AVERAGE_POOL_2D", "MAX_POOL_2D", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "GATHER",
    "REDUCE_MAX", "REDUCE_MIN", "SOFTMAX", "ABS", "LOGISTIC", "TANH",
})


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def _is_float_op(op: Operator, graph: Graph) -> bool:
    """A float operator: one of its activation inputs is float32 (QUANTIZE is the boundary;
    TRANSPOSE_CONV's first input is an int32 shape)."""
    if op.opcode in ("QUANTIZE", "DEQUANTIZE") or not op.inputs:
        return False
    return any(graph.tensor(t).dtype == "float32" and not graph.tensor(t).is_constant
               for t in op.inputs if t >= 0)


def lowering_for(op: Operator, graph: Graph) -> Lowering:
    from edge_sdk.compiler.kernels import float32

    if _is_float_op(op, graph) and op.opcode not in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        if op.opcode not in float32.LOWERINGS:
            raise UnsupportedOpError(
                f"operator {op.index} ({op.opcode}) on float32 data is not supported: float "
                f"kernels exist for {', '.join(sorted(float32.LOWERINGS))}; or quantize the "
                "model (`edge-sdk quantize`)")
        return float32.LOWERINGS[op.opcode]
    return LOWERINGS[op.opcode]


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
    from edge_sdk.compiler.kernels import float32

    def supported(op: Operator) -> bool:
        if _is_float_op(op, graph) and op.opcode not in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
            return op.opcode in float32.LOWERINGS
        return op.opcode in LOWERINGS

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


# Kernel sets by instruction set: ``generic`` is portable C (any core, and the LLVM backend);
# ``dsp`` uses the Armv7E-M/Armv8-M DSP extension for the MAC-heavy layers; ``mve`` uses Helium
# (Armv8.1-M), falling back to the DSP kernels, then the portable ones, shape by shape.
# ``cpu`` is for Linux CPUs through LLVM: vector-friendly layouts (:mod:`.kernels.cpu`), with
# ``cpu-avx2`` (x86 ``vpmaddwd``) and ``cpu-dotprod`` (Arm ``sdot``) dot-product steps.
ISAS = ("generic", "dsp", "mve", "cpu", "cpu-avx2", "cpu-dotprod")

SpecialLowering = Callable[..., Step | None]


def _special_lowerings(isa: str, tuning: Tuning | None = None
                       ) -> dict[str, list[SpecialLowering]]:
    """For each MAC-heavy opcode, the SIMD kernels to try in order (each may return None)."""
    if isa == "generic":
        return {}
    if isa.startswith("cpu"):
        from edge_sdk.compiler.kernels import cpu, cpu_float

        conv = partial(cpu.lower_conv2d_cpu, isa=isa, tuning=tuning)
        float_conv = partial(cpu_float.lower_conv_float_cpu, isa=isa, tuning=tuning)
        return {"CONV_2D": [conv], "DEPTHWISE_CONV_2D": [conv],
                "FULLY_CONNECTED": [partial(cpu.lower_fully_connected_cpu, isa=isa,
                                            tuning=tuning)],
                # float32 layers (keys "float32:<opcode>")
                "float32:CONV_2D": [float_conv], "float32:DEPTHWISE_CONV_2D": [float_conv],
                "float32:FULLY_CONNECTED": [
                    partial(cpu_float.lower_fully_connected_float_cpu, isa=isa, tuning=tuning)]}
    from edge_sdk.compiler.kernels import dsp, mve

    chains: dict[str, list[SpecialLowering]] = {
        "CONV_2D": [dsp.lower_conv2d_dsp], "DEPTHWISE_CONV_2D": [dsp.lower_conv2d_dsp],
        "FULLY_CONNECTED": [dsp.lower_fully_connected_dsp], "ADD": [dsp.lower_add_dsp],
        "SUB": [dsp.lower_add_dsp]}
    if isa == "mve":
        chains["CONV_2D"].insert(0, mve.lower_conv2d_mve)
        chains["DEPTHWISE_CONV_2D"].insert(0, mve.lower_conv2d_mve)
        chains["FULLY_CONNECTED"].insert(0, mve.lower_fully_connected_mve)
    return chains


def lower(graph: Graph, isa: str = "generic", no_scratch: frozenset[int] = frozenset(),
          portable: frozenset[int] = frozenset(),
          cache: dict[tuple[int, bool, bool], Step] | None = None,
          tuning: Tuning | None = None) -> Program:
    """Lower every operator; with ``isa="dsp"``/``"mve"`` the SIMD kernels take the layers they
    fit and the portable kernels the rest. Operators in ``no_scratch`` get kernels that need no
    scratch buffer, those in ``portable`` the portable kernels (int8 weights: less flash).
    ``cache`` keeps lowered steps between calls that try other choices for a few operators.
    A graph TVM's Relax importer made (``origin == "onnx"``) is already one kernel per layer."""
    if graph.origin == "onnx":
        from edge_sdk.compiler.relax_lower import lower_relax

        return lower_relax(graph)
    check_graph(graph)
    graph, copies = separate_outputs(graph)
    special = _special_lowerings(isa, tuning)
    cache = {} if cache is None else cache
    steps = []
    for op in graph.operators:
        key = (op.index, op.index not in no_scratch, op.index in portable)
        if key not in cache:
            try:
                cache[key] = _lower_op(op, graph, special, scratch=key[1], portable=key[2])
            except ModelError as err:  # name the layer where the kernel did not
                if str(err).startswith("operator "):
                    raise
                raise type(err)(f"operator {op.index} ({op.opcode}): {err}") from None
            except _MALFORMED as err:
                raise malformed(op, graph, err) from err
        steps.append(cache[key])
    return Program(name=graph.name, graph=graph, steps=steps + copies, isa=isa)


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
    detail = " ".join(f"{type(err).__name__}: {err}".split())[:160]
    return ModelError(f"operator {op.index} ({op.opcode}) cannot be compiled from tensors of "
                      f"shapes {shapes} ({detail}): if LiteRT runs this model, please report "
                      "it as an edge-sdk bug")


def _lower_op(op: Operator, graph: Graph, special: dict[str, list[SpecialLowering]],
              scratch: bool, portable: bool) -> Step:
    name = f"{graph.name}_l{op.index}_{op.opcode.lower()}"
    # The SIMD kernels are int8 only: int16x8 layers take the portable kernels.
    int8 = all(graph.tensor(t).dtype == "int8" for t in (op.inputs[0], op.outputs[0]))
    key = f"float32:{op.opcode}" if _is_float_op(op, graph) else op.opcode if int8 else None
    if key in special and not portable:
        for lowering in special[key]:
            step = lowering(op, graph, name, scratch=scratch)
            if step is not None:
                return step
    return lowering_for(op, graph)(op, graph, name)
