"""TFLite's rules for a well-formed graph, checked once at load time.

The compiler's kernels trust the :class:`~edge_sdk.frontend.tflite.Graph` they are given: an
index of -2 would pick a tensor from the end of the list, a NaN scale would reach integer
arithmetic, a stride of 0 would divide by zero. Every such case is refused here, before any
work, with one line naming the operator or tensor and what is wrong. The rules are those the
TFLite interpreter enforces when it builds and prepares a graph (what LiteRT refuses, we
refuse); the few we add (a scale of 0 on an activation, a tensor read before it is written)
are values no converter writes and no kernel could give a meaningful answer for.
"""

from __future__ import annotations

import math

from edge_sdk.errors import ModelError
from edge_sdk.ir import Graph, Operator, Tensor

# Inputs an operator may leave absent (index -1), by position, as TFLite's kernels allow.
_LSTM_OPTIONAL = frozenset({1, 5, 9, 10, 11, 12, 16, 17, 18, 19, 20, 21, 22, 23})
OPTIONAL_INPUTS: dict[str, frozenset[int]] = {
    "FULLY_CONNECTED": frozenset({2}), "TRANSPOSE_CONV": frozenset({3}),
    "SVDF": frozenset({3}), "UNIDIRECTIONAL_SEQUENCE_LSTM": _LSTM_OPTIONAL,
    "LSTM": _LSTM_OPTIONAL,
}
# (fewest inputs, most inputs, fewest outputs, most outputs) of the operators edge-sdk
# compiles, as TFLite's kernels check them in Prepare (None: no limit). Others: one output.
_UNARY = (1, 1, 1, 1)
_BINARY = (2, 2, 1, 1)
ARITY: dict[str, tuple[int, int | None, int, int | None]] = {
    **dict.fromkeys(("ABS", "AVERAGE_POOL_2D", "MAX_POOL_2D", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
                     "DEQUANTIZE", "QUANTIZE", "ELU", "GELU", "HARD_SWISH", "L2_NORMALIZATION",
                     "LEAKY_RELU", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LOG_SOFTMAX",
                     "RELU", "RELU6", "RELU_N1_TO_1", "RSQRT", "SOFTMAX", "SQUEEZE", "TANH"),
                    _UNARY),
    **dict.fromkeys(("ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE",
                     "PRELU", "BATCH_MATMUL", "GATHER", "EXPAND_DIMS", "PAD", "TRANSPOSE",
                     "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "ARG_MAX", "ARG_MIN",
                     "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"), _BINARY),
    "CONV_2D": (3, 3, 1, 1), "DEPTHWISE_CONV_2D": (2, 3, 1, 1),
    "FULLY_CONNECTED": (2, 3, 1, 2), "TRANSPOSE_CONV": (3, 4, 1, 1),
    "RESHAPE": (1, 2, 1, 1), "PADV2": (2, 3, 1, 1), "STRIDED_SLICE": (4, 4, 1, 1),
    "CONCATENATION": (1, None, 1, 1), "PACK": (1, None, 1, 1), "UNPACK": (1, 1, 1, None),
    "SPLIT": (2, 2, 1, None), "SPLIT_V": (3, 3, 1, None), "SVDF": (4, 5, 1, 1),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (20, 24, 1, 1),
}
# Zero points an element type can hold.
_ZP_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}
# Largest tensor accepted: 2 GiB, as TFLite's size arithmetic (int32 byte counts) allows.
_MAX_BYTES = (1 << 31) - 1
# Options that must be positive integers (pairs are (height, width)).
_POSITIVE = ("stride", "dilation", "filter", "depth_multiplier")


def _where(op: Operator) -> str:
    return f"operator {op.index} ({op.opcode})"


def check_tensor(t: Tensor) -> None:
    """Shape, size and quantization of one tensor."""
    what = f"tensor {t.index} '{t.short_name}'"
    if any(d < 0 for d in t.shape):
        raise ModelError(f"{what} has a negative dimension in its shape {t.shape}")
    if t.nbytes > _MAX_BYTES:
        raise ModelError(f"{what} of shape {t.shape} would take more than 2 GiB")
    q = t.quant
    if q is None:
        return
    for s in q.scale:
        if not math.isfinite(s) or s < 0 or (s == 0 and not t.is_constant):
            raise ModelError(f"{what} has quantization scale {s}: a scale must be a positive "
                             "finite number")
    if len(q.zero_point) != len(q.scale):
        raise ModelError(f"{what} has {len(q.scale)} scales but {len(q.zero_point)} zero "
                         "points")
    low, high = _ZP_RANGE.get(t.dtype, (-(1 << 31), (1 << 31) - 1))
    for z in q.zero_point:
        if not low <= z <= high:
            raise ModelError(f"{what} ({t.dtype}) has zero point {z}, outside [{low}, {high}]")
    if len(q.scale) > 1:
        # Old converters wrote a 1-D bias's axis as the weights' (3, in person_detect): a 1-D
        # tensor has one axis to mean, as LiteRT reads it.
        axis = 0 if len(t.shape) == 1 and q.axis >= 0 else q.axis
        if not 0 <= axis < len(t.shape):
            raise ModelError(f"{what} is quantized per channel along axis {q.axis}, which its "
                             f"shape {t.shape} does not have")
        if len(q.scale) != t.shape[axis]:
            raise ModelError(f"{what} has {len(q.scale)} scales for {t.shape[axis]} channels "
                             f"on axis {q.axis}")


def _check_arity(op: Operator) -> None:
    low_in, high_in, low_out, high_out = ARITY.get(op.opcode, (0, None, 1, None))
    for label, count, low, high in (("inputs", len(op.inputs), low_in, high_in),
                                    ("outputs", len(op.outputs), low_out, high_out)):
        if count < low or (high is not None and count > high):
            want = f"{low}" if high == low else f"{low} to {high if high is not None else 'any'}"
            raise ModelError(f"{_where(op)} has {count} {label}; it takes {want}")


def _check_indices(op: Operator, n: int) -> None:
    optional = OPTIONAL_INPUTS.get(op.opcode, frozenset())
    for k, t in enumerate(op.inputs):
        if t == -1 and k in optional:
            continue
        if not 0 <= t < n:
            absent = " (-1 means absent, which this input may not be)" if t == -1 else ""
            if t == -1 and k == 2 and op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                absent += ": TFLite's convolutions need their bias tensor; give a zero one"
            raise ModelError(f"{_where(op)} input {k} refers to tensor {t}, which does not "
                             f"exist{absent}")
    for label, indices in (("output", op.outputs), ("intermediate", op.intermediates)):
        for k, t in enumerate(indices):
            if not 0 <= t < n:
                raise ModelError(f"{_where(op)} {label} {k} refers to tensor {t}, which does "
                                 "not exist")


def _check_options(op: Operator) -> None:
    opts = op.options
    for key in _POSITIVE:
        values = opts.get(key, ())
        values = values if isinstance(values, tuple) else (values,)
        if any(not isinstance(v, int) or v < 1 for v in values):
            raise ModelError(f"{_where(op)} has {key} {opts[key]}: it must be at least 1")
    act = opts.get("activation")
    if isinstance(act, str) and (act.startswith("UNKNOWN") or act == "SIGN_BIT"):
        raise ModelError(f"{_where(op)} has fused activation {act}, which no TFLite "
                         "converter writes and edge-sdk does not run: re-export the model")
    pad = opts.get("padding")
    if isinstance(pad, str) and pad.startswith("UNKNOWN"):
        raise ModelError(f"{_where(op)} has padding {pad}: it must be SAME or VALID")
    beta = opts.get("beta")
    if isinstance(beta, float) and not math.isfinite(beta):
        raise ModelError(f"{_where(op)} has beta {beta}: it must be finite")


def _check_bias_scale(op: Operator, graph: Graph) -> None:
    """A per-tensor quantized convolution's bias scale must be input scale x weight scale, to
    within 2% of the output scale: TFLite's kernels refuse the layer in Prepare otherwise."""
    position = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2,
                "TRANSPOSE_CONV": 3}.get(op.opcode)
    if position is None or len(op.inputs) <= position or op.inputs[position] < 0:
        return
    data = 2 if op.opcode == "TRANSPOSE_CONV" else 0
    x, w = graph.tensors[op.inputs[data]], graph.tensors[op.inputs[1]]
    b, y = graph.tensors[op.inputs[position]], graph.tensors[op.outputs[0]]
    if any(t.quant is None or t.quant.per_channel for t in (x, w, b, y)):
        return
    product = x.quant.scale[0] * w.quant.scale[0]
    if abs(product - b.quant.scale[0]) > 0.02 * y.quant.scale[0]:
        raise ModelError(f"{_where(op)}: bias scale {b.quant.scale[0]:.6g} is not input scale x "
                         f"weight scale ({product:.6g}) within 2% of the output scale "
                         f"{y.quant.scale[0]:.6g}, as TFLite requires")


def check_model(graph: Graph) -> None:
    """Refuse a graph that breaks TFLite's rules (see the module docstring)."""
    n = len(graph.tensors)
    for t in graph.tensors:
        check_tensor(t)
    for label, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for t in indices:
            if not 0 <= t < n:
                raise ModelError(f"graph {label} refers to tensor {t}, which does not exist")
    for t in graph.inputs:
        if graph.tensors[t].is_constant:
            raise ModelError(f"graph input tensor {t} '{graph.tensors[t].short_name}' is a "
                             "constant: an input must be filled by the caller")
    written: dict[int, int] = {}  # tensor -> the operator that writes it
    ready = {t.index for t in graph.tensors if t.is_constant or t.is_variable}
    ready.update(graph.inputs)
    for op in graph.operators:
        _check_arity(op)
        _check_indices(op, n)
        _check_options(op)
        if op.outputs and len(op.inputs) > 1:
            _check_bias_scale(op, graph)
        for t in op.inputs:
            if t >= 0 and t not in ready:
                raise ModelError(
                    f"{_where(op)} reads tensor {t} '{graph.tensors[t].short_name}' before any "
                    "operator writes it: the operators are out of order or an index is wrong")
        for t in op.outputs:
            tensor = graph.tensors[t]
            if tensor.is_constant or t in graph.inputs:
                raise ModelError(f"{_where(op)} writes tensor {t} '{tensor.short_name}', which "
                                 f"is {'a constant' if tensor.is_constant else 'a graph input'}")
            if t in written and not tensor.is_variable:  # ASSIGN_VARIABLEs may repeat
                raise ModelError(f"{_where(op)} writes tensor {t} '{tensor.short_name}', which "
                                 f"operator {written[t]} writes too")
            written[t] = op.index
            ready.add(t)
    for t in graph.outputs:
        if t not in ready:
            raise ModelError(f"graph output tensor {t} '{graph.tensors[t].short_name}' is "
                             "written by no operator")
