"""Checks and accessors shared by the operator lowerings (TFLite's ``Prepare`` preconditions)."""

from __future__ import annotations

import numpy as np

from edge_sdk.errors import ModelError, UnsupportedOpError
from edge_sdk.ir import Graph, Operator, Tensor


def refuse(op: Operator, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(
        f"operator {op.index} ({op.opcode}) is not supported: {why}; "
        "see `edge-sdk inspect MODEL` for the ops this compiler implements"
    )


def int8_tensor(op: Operator, graph: Graph, index: int, role: str) -> Tensor:
    """An int8, per-tensor-quantized activation tensor, or a clear refusal."""
    t = graph.tensor(index)
    if t.dtype != "int8" or t.quant is None:
        raise refuse(op, f"{role} '{t.name}' is {t.dtype}, expected quantized int8 "
                         "(quantize the model with `edge-sdk quantize` first)")
    if t.quant.per_channel:
        raise refuse(op, f"{role} '{t.name}' is per-channel quantized")
    return t


def quantized_tensor(op: Operator, graph: Graph, index: int, role: str) -> Tensor:
    """An int8 or int16 per-tensor-quantized activation (int16: TFLite's 16x8 scheme, whose
    activations are symmetric: zero point 0), or a clear refusal."""
    t = graph.tensor(index)
    if t.dtype == "int16" and t.quant is not None and not t.quant.per_channel:
        if t.quant.zero_point[0] != 0:
            raise refuse(op, f"int16 {role} '{t.name}' has zero point {t.quant.zero_point[0]} "
                             "(TFLite's int16 activations are symmetric)")
        return t
    return int8_tensor(op, graph, index, role)


def scale(t: Tensor) -> float:
    assert t.quant is not None
    return t.quant.scale[0]


def zero_point(t: Tensor) -> int:
    assert t.quant is not None
    return t.quant.zero_point[0]


def optional_input(op: Operator, graph: Graph, position: int) -> Tensor | None:
    if len(op.inputs) > position and op.inputs[position] >= 0:
        return graph.tensor(op.inputs[position])
    return None


def constant_data(op: Operator, t: Tensor, role: str) -> np.ndarray:
    if t.data is None:
        raise refuse(op, f"{role} '{t.name}' is not a constant")
    return t.data


def bias_or_zeros(op: Operator, graph: Graph, position: int, channels: int,
                  dtype: str = "int32") -> np.ndarray:
    """The bias (int32; int64 for int16x8 layers, which also accept int32), or zeros."""
    b = optional_input(op, graph, position)
    if b is None:
        return np.zeros(channels, dtype=dtype)
    if b.dtype != dtype and not (dtype == "int64" and b.dtype == "int32"):
        raise refuse(op, f"bias '{b.name}' is {b.dtype}, expected {dtype}")
    data = constant_data(op, b, "bias").reshape(-1)
    if data.size != channels:
        raise ModelError(
            f"operator {op.index}: bias has {data.size} values for {channels} channels")
    return data.astype(dtype)


def symmetric_weights(op: Operator, w: Tensor) -> None:
    if w.dtype != "int8" or w.quant is None:
        raise refuse(op, f"weights '{w.name}' are {w.dtype}, expected int8")
    if any(z != 0 for z in w.quant.zero_point):
        raise refuse(op, f"weights '{w.name}' have a non-zero zero point")
