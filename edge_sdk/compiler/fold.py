"""Work on constants only, done once at compile time instead of at every inference.

Converters store weights compactly and let the runtime expand them: MediaPipe's float models keep
their weights in float16, each followed by a DEQUANTIZE to float32 (TFLite runs those once, at
``Prepare``). We do the same before lowering: a DEQUANTIZE of a constant becomes a float32
constant and the operator disappears, so no kernel, no arena buffer and no float16 support is
needed. Sparse weights are the same story: the frontend expands them when it loads the model, and
their DENSIFY disappears here.

Shape arithmetic is folded too. Keras leaves the batch open (-1 in the shape signature), and the
converter then computes shapes at run time: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE. The file
stores the batch as 1, and that is what edge-sdk compiles for: SHAPE of a tensor is its stored
shape, and the small integer operators on constants after it are evaluated here with numpy,
so the RESHAPE gets a constant shape. ``fold_constants`` returns a new graph; the caller's is left
as it was, and ``folded_dynamic`` names the tensors whose open dimensions were fixed that way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge_sdk.ir import Graph, Operator, Tensor


def _dequantized(t: Tensor) -> np.ndarray | None:
    """The float32 value of a constant DEQUANTIZE input, or None if it is not one we fold."""
    if t.data is None:
        return None
    if t.dtype == "float16":
        return t.data.astype(np.float32)
    if t.dtype in ("int8", "int16") and t.quant is not None:
        q = t.quant
        if q.per_channel:
            shape = [1] * len(t.shape)
            shape[q.axis] = -1
            scale = np.asarray(q.scale, np.float32).reshape(shape)
            zp = np.asarray(q.zero_point, np.int32).reshape(shape)
        else:
            scale, zp = np.float32(q.scale[0]), np.int32(q.zero_point[0])
        # TFLite's Dequantize: (q - zp) * scale, in float32
        return ((t.data.astype(np.int32) - zp).astype(np.float32) * scale).astype(np.float32)
    return None


# Integer operators evaluated when every input is a constant (index and shape arithmetic).
_INT_DTYPES = ("int32", "int64")


def _strided_slice(x: np.ndarray, begin, end, strides, o: dict) -> np.ndarray | None:
    if o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("offset"):
        return None
    index: list = []
    for axis in range(len(begin)):
        b = None if o.get("begin_mask", 0) >> axis & 1 else int(begin[axis])
        e = None if o.get("end_mask", 0) >> axis & 1 else int(end[axis])
        s = int(strides[axis])
        if s == 0:
            return None
        if o.get("shrink_axis_mask", 0) >> axis & 1:
            if b is None or not -x.shape[axis] <= b < x.shape[axis]:
                return None
            index.append(b)
        else:
            index.append(slice(b, e, s))
    return np.asarray(x[tuple(index)])


def _evaluate(op: Operator, ins: list[Tensor], out: Tensor) -> np.ndarray | None:
    """The value of an integer operator whose inputs are all constants, or None if it is not
    one evaluated here."""
    if out.dtype not in _INT_DTYPES or any(t.data is None for t in ins):
        return None
    v = [np.asarray(t.data) for t in ins]
    o = op.options
    result: np.ndarray | None = None
    if op.opcode == "STRIDED_SLICE" and len(v) == 4:
        result = _strided_slice(v[0], v[1].reshape(-1), v[2].reshape(-1), v[3].reshape(-1), o)
    elif op.opcode == "PACK":
        result = np.stack(v, axis=o.get("axis", 0))
    elif op.opcode == "CONCATENATION" and o.get("activation", "NONE") == "NONE":
        result = np.concatenate(v, axis=o.get("axis", 0))
    elif op.opcode in ("CAST", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"):  # the bytes as they are
        result = v[0]
    elif op.opcode in ("MUL", "ADD", "SUB") and len(v) == 2 and (
            o.get("activation", "NONE") == "NONE"):
        result = {"MUL": np.multiply, "ADD": np.add, "SUB": np.subtract}[op.opcode](
            v[0].astype(np.int64), v[1].astype(np.int64))
    if result is None or result.size != out.size:
        return None
    return result.astype(out.dtype).reshape(out.shape)


def folded_dynamic(original: Graph) -> list[Tensor]:
    """The tensors with an open dimension whose SHAPE ``fold_constants`` fixed at the stored
    shape (what a message should name)."""
    return [original.tensor(op.inputs[0]) for op in original.operators
            if op.opcode == "SHAPE" and op.inputs and original.tensor(op.inputs[0]).dynamic]


def fold_constants(graph: Graph) -> Graph:
    """``graph`` with every DEQUANTIZE of a constant replaced by the float32 constant it makes.

    A graph output produced that way (a model whose output is a constant) is left alone."""
    tensors = list(graph.tensors)
    kept: list[Operator] = []
    for op in graph.operators:
        # Inputs are read from ``tensors``, which holds what earlier folds made: a DENSIFY of
        # sparse float16 weights feeds a DEQUANTIZE (MediaPipe's full-range face detector), and
        # reading the graph's own tensors left that DEQUANTIZE with no constant to fold.
        if (op.opcode == "DENSIFY" and len(op.inputs) == 1 and op.outputs[0] not in graph.outputs
                and 0 <= op.inputs[0] < len(tensors) and tensors[op.inputs[0]].data is not None):
            # The frontend already expanded the sparse constant (edge_sdk.frontend.sparsity).
            src, out = tensors[op.inputs[0]], tensors[op.outputs[0]]
            assert src.data is not None  # tested above
            tensors[out.index] = dataclasses.replace(
                out, data=src.data.reshape(out.shape), quant=out.quant or src.quant)
            continue
        if (op.opcode == "SHAPE" and len(op.inputs) == 1 and op.outputs[0] not in graph.outputs
                and 0 <= op.inputs[0] < len(tensors)
                and tensors[op.outputs[0]].dtype in _INT_DTYPES):
            out = tensors[op.outputs[0]]
            shape = np.array(tensors[op.inputs[0]].shape, out.dtype)
            if shape.size == out.size:
                tensors[out.index] = dataclasses.replace(out, data=shape.reshape(out.shape),
                                                         quant=None)
                continue
        if (op.outputs and op.outputs[0] not in graph.outputs
                and all(0 <= t < len(tensors) for t in op.inputs)):
            value = _evaluate(op, [tensors[t] for t in op.inputs], tensors[op.outputs[0]])
            if value is not None:
                out = tensors[op.outputs[0]]
                tensors[out.index] = dataclasses.replace(out, data=value, quant=None)
                continue
        if (op.opcode == "DEQUANTIZE" and len(op.inputs) == 1 and op.outputs[0] not in graph.outputs
                and 0 <= op.inputs[0] < len(tensors)):
            value = _dequantized(tensors[op.inputs[0]])
            if value is not None:
                out = tensors[op.outputs[0]]
                tensors[out.index] = dataclasses.replace(
                    out, data=value.reshape(out.shape), quant=None)
                continue
        kept.append(op)
    if len(kept) == len(graph.operators):
        return graph
    return dataclasses.replace(graph, tensors=tensors, operators=kept)
