"""The operator registry: one entry per operator, every fact about it in one place.

An entry says which kernel computes the operator for each kind of data and target family (the
integer kernels, which take int16x8 too where ``int16`` is set; float32; the GPU's int8 and
float32 kernels), how the compiler treats it when it computes nothing at run time, and the
limits a user should know. Everything else is derived from this table: the lowering tables the
compiler reads, ``edge-sdk ops`` and the README's operator table (:mod:`edge_sdk.support`).

The *variants* of an operator on one target (the DSP, Helium or a Linux CPU's kernels of a
convolution) are not here: they are the target's choice (:mod:`edge_sdk.compiler.target`).

Adding an operator: write its kernel in ``kernels/<family>.py``, add one ``OpDef`` here, decode
its options in ``frontend/tflite._options`` if it has any, and test it against LiteRT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge_sdk.compiler.gpu import kernels as gpu
from edge_sdk.compiler.kernels import (
    activation,
    batch_matmul,
    boundary,
    conv,
    elementwise,
    extremes,
    float32,
    fully_connected,
    layout,
    log_softmax,
    lookup,
    lstm,
    movement,
    normalize,
    pooling,
    reduce,
    resize,
    softmax,
    svdf,
    transpose_conv,
)
from edge_sdk.compiler.program import Step
from edge_sdk.ir import Graph, Operator

Lowering = Callable[[Operator, Graph, str], Step]
GpuLowering = Callable[..., Step]


@dataclass(frozen=True)
class OpDef:
    """One operator. ``how``: ``"kernel"`` (code runs), ``"alias"`` (the output is the input's
    bytes under another shape: no code), ``"folded"`` (computed at compile time from constants),
    ``"resolved"`` (removed when the model is loaded, e.g. a resource variable's handle)."""

    name: str
    integer: Lowering | None = None
    float32: Lowering | None = None
    gpu_int8: GpuLowering | None = None
    gpu_float32: GpuLowering | None = None
    int16: bool = False
    how: Literal["kernel", "alias", "folded", "resolved"] = "kernel"
    limits: str = ""


def lower_quantize(op: Operator, graph: Graph, name: str) -> Step:
    """QUANTIZE from float is the model's input boundary; between integer types a rescale."""
    float_input = graph.tensor(op.inputs[0]).dtype == "float32"
    return (boundary.lower_quantize_float if float_input else activation.lower_rescale)(
        op, graph, name)


def lower_leaky_relu(op: Operator, graph: Graph, name: str) -> Step:
    """int16 LEAKY_RELU is arithmetic (TFLite's int16 kernel); int8 is a 256-entry table."""
    int16 = graph.tensor(op.inputs[0]).dtype == "int16"
    return (activation.lower_leaky_relu_int16 if int16 else lookup.lower_lookup)(op, graph, name)


OPS: dict[str, OpDef] = {d.name: d for d in (
    OpDef("ABS",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("ADD",
          integer=elementwise.lower_add, float32=float32.lower_binary, gpu_int8=gpu.add_int8,
          gpu_float32=gpu.binary_float, int16=True),
    OpDef("ARG_MAX",
          integer=extremes.lower_arg_extreme, float32=extremes.lower_arg_extreme),
    OpDef("ARG_MIN",
          integer=extremes.lower_arg_extreme, float32=extremes.lower_arg_extreme),
    OpDef("ASSIGN_VARIABLE",
          integer=movement.lower_variable, float32=movement.lower_variable,
          limits="resource variables: one arena buffer each, kept between inferences"),
    OpDef("AVERAGE_POOL_2D",
          integer=pooling.lower_pool2d, float32=float32.lower_pool, gpu_int8=gpu.pool2d_int8,
          gpu_float32=gpu.pool2d_float, int16=True),
    OpDef("BATCH_MATMUL",
          integer=batch_matmul.lower_batch_matmul, float32=batch_matmul.lower_batch_matmul,
          int16=True,
          limits="adj_x/adj_y, broadcast batch dimensions, either operand constant"),
    OpDef("CALL_ONCE",
          how="resolved",
          limits="an initialiser that assigns constants: set on the first call"),
    OpDef("CONCATENATION",
          integer=layout.lower_concatenation, float32=layout.lower_concatenation,
          gpu_int8=gpu.concatenation, gpu_float32=gpu.concatenation, int16=True),
    OpDef("CONV_2D",
          integer=conv.lower_conv2d, float32=conv.lower_conv2d, gpu_int8=gpu.conv2d,
          gpu_float32=gpu.conv2d, int16=True),
    OpDef("DENSIFY",
          how="folded",
          limits="of sparse weights (CSR, block-sparse): expanded when the model is loaded"),
    OpDef("DEPTHWISE_CONV_2D",
          integer=conv.lower_conv2d, float32=conv.lower_conv2d, gpu_int8=gpu.conv2d,
          gpu_float32=gpu.conv2d, int16=True),
    OpDef("DEPTH_TO_SPACE",
          integer=movement.lower_depth_space, float32=movement.lower_depth_space),
    OpDef("DEQUANTIZE",
          integer=boundary.lower_dequantize,
          limits="of a constant (float16 or int8 weights): folded at compile time"),
    OpDef("DIV",
          integer=elementwise.lower_div, float32=float32.lower_binary,
          gpu_float32=gpu.binary_float),
    OpDef("ELU",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8),
    OpDef("EXPAND_DIMS",
          integer=movement.lower_alias, int16=True, how="alias"),
    OpDef("FULLY_CONNECTED",
          integer=fully_connected.lower_fully_connected,
          float32=fully_connected.lower_fully_connected,
          gpu_int8=gpu.fully_connected, gpu_float32=gpu.fully_connected, int16=True),
    OpDef("GATHER",
          integer=movement.lower_gather, float32=movement.lower_gather, int16=True),
    OpDef("GELU",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8),
    OpDef("HARD_SWISH",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8,
          gpu_float32=gpu.unary_float),
    OpDef("L2_NORMALIZATION",
          integer=normalize.lower_l2_normalization, float32=normalize.lower_l2_normalization,
          limits="last axis; int8 output at TFLite's fixed 1/128, zero point 0"),
    OpDef("LEAKY_RELU",
          integer=lower_leaky_relu, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("LOCAL_RESPONSE_NORMALIZATION",
          float32=float32.lower_lrn),
    OpDef("LOG",
          float32=float32.lower_unary, gpu_float32=gpu.unary_float),
    OpDef("LOGISTIC",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("LOG_SOFTMAX",
          integer=log_softmax.lower_log_softmax, float32=log_softmax.lower_log_softmax,
          limits="int8 output at TFLite's fixed 16/256, zero point 127"),
    OpDef("MAXIMUM",
          integer=elementwise.lower_maximum_minimum, float32=float32.lower_binary,
          gpu_float32=gpu.binary_float, int16=True),
    OpDef("MAX_POOL_2D",
          integer=pooling.lower_pool2d, float32=float32.lower_pool, gpu_int8=gpu.pool2d_int8,
          gpu_float32=gpu.pool2d_float, int16=True),
    OpDef("MEAN",
          integer=reduce.lower_reduce_sum, float32=reduce.lower_reduce_sum,
          gpu_int8=gpu.reduce_mean_sum, gpu_float32=gpu.reduce_mean_sum, int16=True,
          limits="any axes, rank and keep_dims"),
    OpDef("MINIMUM",
          integer=elementwise.lower_maximum_minimum, float32=float32.lower_binary,
          gpu_float32=gpu.binary_float, int16=True),
    OpDef("MUL",
          integer=elementwise.lower_mul, float32=float32.lower_binary,
          gpu_float32=gpu.binary_float, int16=True),
    OpDef("PACK",
          integer=movement.lower_pack, float32=movement.lower_pack, int16=True),
    OpDef("PAD",
          integer=layout.lower_pad, float32=layout.lower_pad, gpu_int8=gpu.pad,
          gpu_float32=gpu.pad, int16=True),
    OpDef("PADV2",
          integer=layout.lower_pad, float32=layout.lower_pad, gpu_int8=gpu.pad,
          gpu_float32=gpu.pad, int16=True),
    OpDef("PRELU",
          integer=activation.lower_prelu, float32=float32.lower_prelu, gpu_int8=gpu.prelu_int8,
          gpu_float32=gpu.prelu_float),
    OpDef("QUANTIZE",
          integer=lower_quantize, int16=True,
          limits="float->int8, int8/int16/int32->int8/int16, int16->int32, int8->uint8"),
    OpDef("READ_VARIABLE",
          integer=movement.lower_variable, float32=movement.lower_variable,
          limits="resource variables: one arena buffer each, kept between inferences"),
    OpDef("REDUCE_MAX",
          integer=extremes.lower_reduce_extreme, float32=extremes.lower_reduce_extreme,
          int16=True),
    OpDef("REDUCE_MIN",
          integer=extremes.lower_reduce_extreme, float32=extremes.lower_reduce_extreme,
          int16=True),
    OpDef("RELU",
          integer=activation.lower_rescale, float32=float32.lower_unary,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("RELU6",
          integer=activation.lower_rescale, float32=float32.lower_unary,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("RELU_N1_TO_1",
          integer=activation.lower_rescale, float32=float32.lower_unary,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("RESHAPE",
          integer=movement.lower_alias, int16=True, how="alias"),
    OpDef("RESIZE_BILINEAR",
          integer=resize.lower_resize_bilinear, float32=resize.lower_resize_bilinear,
          gpu_int8=gpu.resize_bilinear, gpu_float32=gpu.resize_bilinear, int16=True),
    OpDef("RESIZE_NEAREST_NEIGHBOR",
          integer=resize.lower_resize_nearest, float32=resize.lower_resize_nearest,
          gpu_int8=gpu.resize_nearest, gpu_float32=gpu.resize_nearest, int16=True),
    OpDef("RSQRT",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8,
          gpu_float32=gpu.unary_float),
    OpDef("SHAPE",
          how="folded",
          limits="folded at the stored shape (an open batch, -1, compiles as 1), with the "
                 "integer ops after it on constants"),
    OpDef("SOFTMAX",
          integer=softmax.lower_softmax, float32=float32.lower_softmax, gpu_int8=gpu.softmax_int8,
          gpu_float32=gpu.softmax_float, int16=True,
          limits="float: beta 1 only"),
    OpDef("SPACE_TO_DEPTH",
          integer=movement.lower_depth_space, float32=movement.lower_depth_space),
    OpDef("SPLIT",
          integer=movement.lower_split, float32=movement.lower_split, int16=True),
    OpDef("SPLIT_V",
          integer=movement.lower_split, float32=movement.lower_split, int16=True),
    OpDef("SQUARED_DIFFERENCE",
          integer=elementwise.lower_squared_difference, float32=float32.lower_binary,
          gpu_float32=gpu.binary_float),
    OpDef("SQUEEZE",
          integer=movement.lower_alias, int16=True, how="alias"),
    OpDef("STRIDED_SLICE",
          integer=layout.lower_strided_slice, float32=layout.lower_strided_slice, int16=True),
    OpDef("SUB",
          integer=elementwise.lower_add, float32=float32.lower_binary,
          gpu_float32=gpu.binary_float, int16=True),
    OpDef("SUM",
          integer=reduce.lower_reduce_sum, float32=reduce.lower_reduce_sum,
          gpu_int8=gpu.reduce_mean_sum, gpu_float32=gpu.reduce_mean_sum, int16=True,
          limits="any axes; int8/int16 as TFLite Micro computes it (LiteRT's reference reads "
                 "them as uint8)"),
    OpDef("SVDF",
          integer=svdf.lower_svdf, float32=svdf.lower_svdf,
          limits="state kept in the arena between inferences; int8: int16 state and time weights"),
    OpDef("TANH",
          integer=lookup.lower_lookup, float32=float32.lower_unary, gpu_int8=gpu.lookup_int8,
          gpu_float32=gpu.unary_float, int16=True),
    OpDef("TRANSPOSE",
          integer=layout.lower_transpose, float32=layout.lower_transpose, gpu_int8=gpu.transpose,
          gpu_float32=gpu.transpose, int16=True),
    OpDef("TRANSPOSE_CONV",
          integer=transpose_conv.lower_transpose_conv, float32=float32.lower_transpose_conv,
          int16=True,
          limits="output-shape operand fixed at compile time"),
    OpDef("UNIDIRECTIONAL_SEQUENCE_LSTM",
          integer=lstm.lower_lstm, float32=lstm.lower_lstm,
          limits="int8 with int16 cell state (TFLite's 8x8->16) and float32; no peephole, "
                 "projection, layer norm or CIFG"),
    OpDef("UNPACK",
          integer=movement.lower_unpack, float32=movement.lower_unpack, int16=True),
    OpDef("VAR_HANDLE",
          how="resolved",
          limits="resolved when the model is loaded: names the variable's buffer"),
)}

# The tables the lowering reads, derived from OPS.
INTEGER: dict[str, Lowering] = {n: d.integer for n, d in OPS.items() if d.integer}
FLOAT32: dict[str, Lowering] = {n: d.float32 for n, d in OPS.items() if d.float32}
GPU_INT8: dict[str, GpuLowering] = {n: d.gpu_int8 for n, d in OPS.items() if d.gpu_int8}
GPU_FLOAT32: dict[str, GpuLowering] = {n: d.gpu_float32 for n, d in OPS.items()
                                       if d.gpu_float32}
INT16: frozenset[str] = frozenset(n for n, d in OPS.items() if d.int16)
ALIASES: tuple[str, ...] = tuple(n for n, d in OPS.items() if d.how == "alias")
