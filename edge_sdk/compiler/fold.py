"""Work on constants only, done once at compile time instead of at every inference.

Converters store weights compactly and let the runtime expand them: MediaPipe's float models keep
their weights in float16, each followed by a DEQUANTIZE to float32 (TFLite runs those once, at
``Prepare``). We do the same before lowering: a DEQUANTIZE of a constant becomes a float32
constant and the operator disappears, so no kernel, no arena buffer and no float16 support is
needed. Sparse weights are the same story: the frontend expands them when it loads the model, and
their DENSIFY disappears here. ``fold_constants`` returns a new graph; the caller's is left as it
was.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge_sdk.frontend.tflite import Graph, Operator, Tensor


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
            tensors[out.index] = dataclasses.replace(
                out, data=src.data.reshape(out.shape), quant=out.quant or src.quant)
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
