"""Fold what an ONNX graph computes from constants and static shapes, before any importer sees it.

PyTorch exports carry shape arithmetic: ``Shape -> Gather -> Div -> Concat -> Reshape`` for a
channel shuffle (ShuffleNetV2), a detector's grid, a view whose size is read from the tensor.
With static input shapes every value in such a chain is known at compile time, but TVM's
importer only folds what it recognises, and leaves the rest as run-time shape computations it
then refuses ("Reshape requires the input new shape to be Shape...", "emit_te now only supports
Tensor that has ShapeExpr shape"). This pass does what onnx-simplifier/onnxslim do for that
part: it walks the graph once in order, evaluates each node whose inputs are all known (with the
``onnx`` package's reference operators, so with ONNX's own meaning of every operator and
opset), and replaces its outputs with initializers.

What it leaves alone, on purpose:
- ``QuantizeLinear``/``DequantizeLinear``: they say where a graph is int8; dequantizing the
  weights here would make them float and four times larger.
- A node whose result would be much larger than what it reads (``ConstantOfShape``, ``Expand``,
  ``Tile`` of a constant): folding it would put a large array in the program for a value that
  is one number broadcast; the kernel that makes it at run time is cheaper in flash.
- Nodes with subgraphs (``If``, ``Loop``, ``Scan``) and operators of other domains.
A model the pass cannot read (shape inference fails) goes on unchanged: folding is an
improvement, never a new refusal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Operators never folded: they mark the model's int8 regions (see the module docstring), or
# they are random (a fold would freeze one draw).
KEEP = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                  "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                  "Bernoulli", "Multinomial"})

# A folded value may be this many bytes larger than what its node reads (a weight's Transpose,
# a shape's Concat); beyond that the node stays and computes it at run time.
GROWTH_ALLOWANCE = 64 * 1024


def _static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Every value whose shape ONNX's shape inference knows in full (no symbolic dimension)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference refuses some models; shapes are then unknown, nothing folds
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    graph = inferred.graph
    for info in (*graph.input, *graph.value_info, *graph.output):
        t = info.type.tensor_type
        if not t.HasField("shape"):
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        if all(d >= 0 for d in dims):
            shapes[info.name] = dims
    return shapes


def _shape_of(node: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``Shape``'s result, with opset 15's ``start``/``end`` (clamped as the operator does)."""
    attrs = {a.name: a.i for a in node.attribute}
    rank = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.array(shape[start:end], dtype=np.int64)


def _foldable(node: Any) -> bool:
    return (node.domain in ("", "ai.onnx") and node.op_type not in KEEP
            and not any(a.type in (5, 10) for a in node.attribute))  # GRAPH, GRAPHS


def _evaluate(node: Any, known: dict[str, np.ndarray], opsets: dict[str, int]
              ) -> list[np.ndarray] | None:
    """The node's outputs from its known inputs, or None where the reference refuses it."""
    from onnx.reference import ReferenceEvaluator

    feeds = {name: known[name] for name in node.input if name}
    try:
        outs = ReferenceEvaluator(node, opsets=opsets).run(None, feeds)
    except Exception:  # an operator the reference lacks, or inputs it rejects: leave it
        return None
    return [np.asarray(o) for o in outs]


# Rounds of fold-then-infer at most: a round makes shapes known that the next can fold (a
# Slice whose ends came from a Shape has no inferred shape until those ends are constants).
ROUNDS = 16


def fold_constants(model: Any) -> Any:
    """``model`` with every node computable at compile time replaced by its value (see the
    module docstring); the same object when nothing folds, else a new ``ModelProto``."""
    for _ in range(ROUNDS):
        folded = _fold_once(model)
        if folded is model:
            break
        model = folded
    return model


def _fold_once(model: Any) -> Any:
    """One pass in graph order over what the shapes inferred now make computable."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    known: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    inputs = {i.name for i in graph.input} - set(known)
    shapes = _static_shapes(model)
    opsets = {o.domain or "": o.version for o in model.opset_import}
    results = {o.name for o in graph.output}  # a node producing one keeps producing it
    folded: set[int] = set()
    for k, node in enumerate(graph.node):
        if not _foldable(node) or results.intersection(node.output):
            continue
        if node.op_type == "Shape" and node.input[0] in shapes:
            values = [_shape_of(node, shapes[node.input[0]])]
        elif node.op_type == "Size" and node.input[0] in shapes:
            values = [np.array(int(np.prod(shapes[node.input[0]])), dtype=np.int64)]
        elif all(not n or (n in known and n not in inputs) for n in node.input):
            evaluated = _evaluate(node, known, opsets)
            if evaluated is None or len(evaluated) != len(node.output):
                continue
            values = evaluated
            read = sum(known[n].nbytes for n in node.input if n)
            if sum(v.nbytes for v in values) > read + GROWTH_ALLOWANCE:
                continue
        else:
            continue
        folded.add(k)
        for name, value in zip(node.output, values, strict=True):
            if name:
                known[name] = value
    if not folded:
        return model

    kept = [n for k, n in enumerate(graph.node) if k not in folded]
    needed = {n for node in kept for n in node.input} | {o.name for o in graph.output}
    needed |= {n for node in kept for a in node.attribute if a.type in (5, 10)
               for n in _outer_names(a)}
    made = {o for k in folded for o in graph.node[k].output if o}
    new = onnx.ModelProto()
    new.CopyFrom(model)
    del new.graph.node[:]
    new.graph.node.extend(kept)
    existing = {i.name for i in graph.initializer}
    for name in sorted(made & needed - existing):
        new.graph.initializer.append(numpy_helper.from_array(known[name], name))
    # Shapes recorded for values that are now initializers would disagree with nothing, but
    # a value_info naming a value that no longer exists is dead weight: drop those.
    alive = needed | {o for n in kept for o in n.output} | existing
    infos = [v for v in graph.value_info if v.name in alive and v.name not in made]
    del new.graph.value_info[:]
    new.graph.value_info.extend(infos)
    return new


def _outer_names(attr: Any) -> set[str]:
    """Names a subgraph attribute reads from the graph around it (an ``If`` branch using a
    value of the main graph): they must stay defined."""
    graphs = [attr.g] if attr.type == 5 else list(attr.graphs)
    names: set[str] = set()
    for g in graphs:
        for node in g.node:
            names.update(n for n in node.input if n)
            for a in node.attribute:
                if a.type in (5, 10):
                    names |= _outer_names(a)
    return names
