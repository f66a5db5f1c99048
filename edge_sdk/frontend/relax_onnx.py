"""ONNX models through TVM's own importer: ``.onnx`` -> Relax -> one TIR kernel per layer.

TVM's Relax ONNX frontend (``tvm.relax.frontend.onnx.from_onnx``) knows the ONNX operators;
Relax's passes then do the rest of what our TFLite path does by hand: decompose operators for
inference (batch norm into arithmetic), legalize every operator into a TIR PrimFunc, and fold
what is constant.
What is left in ``main`` is a straight line of ``call_tir(kernel, args)``: this module turns it
into the same :class:`~edge_sdk.ir.Graph` the rest of edge-sdk reads, with one
operator per call (its ``options["prim_func"]`` is the kernel) and one tensor per value, so
the planner, the C/LLVM code generators, the runners and the reports need nothing new, and the
board still gets plain C (or ``kernels.o``), one arena and no TVM runtime.

Layout stays as the model has it (NCHW for PyTorch exports); shapes must be static.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import ModelError, UnsupportedOpError, clipped
from edge_sdk.ir import Graph, Operator, Tensor


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hold back what TVM's C++ side and the importer print on the process's own stdout and
    stderr ("Warning: Fast mode segfaults...", "Error converting operator ..."): a failure
    reaches the user as one EdgeSDKError line, and a success says nothing."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _bounded_takes(mod: Any) -> Any:
    """Every ``take`` (ONNX Gather, an embedding lookup) in "clip" mode instead of the
    importer's "fast", which reads past the table for an index out of range: on a board that is
    a read of whatever memory follows. The importer already turns negative indices into
    positive ones, so in-range results are the same; an out-of-range index reads the nearest
    row instead of memory that is not the table."""
    import tvm
    from tvm import relax

    take = tvm.ir.Op.get("relax.take")

    @relax.expr_functor.mutator
    class Bounded(relax.PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if call.op.same_as(take) and str(call.attrs.mode) == "fast":
                return relax.op.take(call.args[0], call.args[1], call.attrs.axis, mode="clip")
            return call

    for gv, func in list(mod.functions_items()):
        if isinstance(func, relax.Function):
            mod[gv] = Bounded().visit_expr(func)
    return mod


def _relax_passes(mod: Any) -> Any:
    import tvm
    from tvm import relax

    mod = _bounded_takes(mod)

    # No FuseOps/FuseTIR: without a schedule that inlines, a fused kernel keeps one loop nest
    # per operator and puts the intermediates in buffers of its own; unfused, those are arena
    # tensors the planner can share.
    seq = tvm.transform.Sequential([
        relax.transform.DecomposeOpsForInference(),
        relax.transform.LegalizeOps(),
        relax.transform.FoldConstant(),
        relax.transform.DeadCodeElimination(),
    ])
    return seq(mod)


def _shape_dtype(ty: Any, what: str) -> tuple[tuple[int, ...], str]:
    from tvm import relax

    shape = getattr(ty, "shape", None) if isinstance(ty, relax.TensorType) else None
    if shape is None or not hasattr(shape, "values"):
        raise UnsupportedOpError(f"{what} is not a tensor of known shape ({ty})")
    dims = []
    for d in shape.values:
        if not hasattr(d, "value"):
            raise UnsupportedOpError(f"{what} has a dynamic shape ({shape}); give the "
                                     "model's inputs fixed shapes")
        dims.append(int(d.value))
    return tuple(dims), str(ty.dtype)


def _constant(expr: Any) -> np.ndarray | None:
    """The value of a constant operand (Relax's ``GenericConst``), else None."""
    value = getattr(expr, "value", None)
    return value.numpy() if hasattr(value, "numpy") else None


def operator_names(model: Any) -> str:
    """The model's operator types for a refusal, sorted; an operator that holds subgraphs
    (``If``, ``Loop``, ``Scan``) is followed by the operators inside them, since a refusal is
    often about those (a dynamic ``Pad`` inside an ``If``)."""
    def names(graph: Any) -> list[str]:
        found: set[str] = set()
        for node in graph.node:
            inner = sorted({n for a in node.attribute if a.type in (5, 10)
                            for g in ([a.g] if a.type == 5 else list(a.graphs))
                            for n in names(g)})
            found.add(f"{node.op_type} (inside: {', '.join(inner)})" if inner else node.op_type)
        return sorted(found)

    return ", ".join(names(model.graph))


def read_onnx(path: Path) -> Any:
    """The ONNX model in ``path`` (external data loaded), checked as ONNX itself would; one
    line and a ModelError for a file that is not one. Both ONNX routes start here, once."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError, ValueError... for a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ModelError(f"{path} is not a valid ONNX model: {first}; re-export it") from None
    from edge_sdk.frontend.onnx_check import check_onnx

    check_onnx(model, path)
    return model


def load_onnx(path: str | Path) -> Graph:
    """Import ``path`` through Relax and return the layer-by-layer graph."""
    path = Path(path)
    return import_onnx(read_onnx(path), path)


def _opset(model: Any) -> int:
    """The model's version of the default ONNX operator set."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 99)


def _legacy_prelu_slopes(model: Any) -> Any:
    """Before opset 7, PRelu's one-dimensional slope is one value per channel (axis 1), as
    PyTorch exported ``nn.PReLU(C)``; TVM's importer reads it with today's rule (numpy
    broadcasting, so the last axis) and refuses the shape. Give such slopes the shape
    (C, 1, ..., 1), which today's rule reads as axis 1, so the importer applies the old
    meaning."""
    import onnx
    from onnx import numpy_helper

    opset = _opset(model)
    if opset >= 7 or not any(n.op_type == "PRelu" for n in model.graph.node):
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())  # leave the caller's alone
    try:  # the rank of a PRelu's input inside the network
        shaped = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # shape inference refuses some old models: inputs' ranks only
        shaped = model.graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim)
             for v in (*shaped.input, *shaped.value_info)}
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "PRelu" or node.input[1] not in inits:
            continue
        slope = numpy_helper.to_array(inits[node.input[1]])
        rank = ranks.get(node.input[0], 0)
        if slope.ndim == 1 and slope.size > 1 and rank > 2:
            new = numpy_helper.from_array(slope.reshape(slope.size, *[1] * (rank - 2)),
                                          node.input[1])
            inits[node.input[1]].CopyFrom(new)
            for v in model.graph.input:  # an initializer listed as an input too
                if v.name == node.input[1]:
                    del v.type.tensor_type.shape.dim[:]
                    for d in new.dims:
                        v.type.tensor_type.shape.dim.add().dim_value = d
    return model


# Opsets below this are converted up first (``onnx.version_converter``): TVM's importer knows
# some operators only in their newer form (Slice-1 kept starts/ends in attributes; it reads
# only Slice-10's inputs).
UPGRADE_BELOW = 13


def _upgraded(model: Any) -> Any:
    """The model in a form TVM's importer reads: old PRelu slopes reshaped, an old opset
    converted to ``UPGRADE_BELOW`` (a model the converter cannot take goes in as it is), then
    its shape arithmetic and constant subgraphs folded (:mod:`~edge_sdk.frontend.onnx_fold`)."""
    from onnx import version_converter

    from edge_sdk.frontend.onnx_fold import fold_constants

    model = _legacy_prelu_slopes(model)
    if _opset(model) < UPGRADE_BELOW:
        # The converter raises on operators it has no adapter for.
        with contextlib.suppress(Exception):
            model = version_converter.convert_version(model, UPGRADE_BELOW)
    return fold_constants(model)


def import_onnx(model: Any, path: Path | None = None, name: str | None = None) -> Graph:
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    name = name or (path.stem if path else "model")
    name = "".join(c if c.isascii() and c.isalnum() else "_" for c in name) or "model"
    if name[0].isdigit():
        name = "m_" + name
    try:
        with warnings.catch_warnings(), _quiet():  # it warns for every input it renames
            warnings.simplefilter("ignore", UserWarning)
            mod = from_onnx(_upgraded(model), keep_params_in_input=False)
            mod = _relax_passes(mod)
    except Exception as err:  # TVM raises its own error types, with long messages
        first = str(err).strip().splitlines()
        reason = next((ln for ln in reversed(first) if ln.strip()), type(err).__name__)
        raise UnsupportedOpError(f"TVM's ONNX importer cannot take {name} "
                                 f"({clipped(reason, 160)}); its operators: "
                                 f"{operator_names(model)}") from None

    main = mod["main"]
    tensors: list[Tensor] = []
    value_of: dict[Any, int] = {}

    def new_tensor(label: str, shape: tuple[int, ...], dtype: str,
                   data: np.ndarray | None = None) -> int:
        tensors.append(Tensor(len(tensors), label, shape, dtype, data=data))
        return len(tensors) - 1

    inputs = []
    for param in main.params:
        shape, dtype = _shape_dtype(param.ty, f"input '{param.name}'")
        index = new_tensor(param.name, shape, dtype)
        value_of[param] = index
        inputs.append(index)

    def operand(expr: Any, what: str) -> int:
        data = _constant(expr)
        if data is not None:
            return new_tensor(f"const{len(tensors)}", tuple(data.shape), str(data.dtype), data)
        if expr in value_of:
            return value_of[expr]
        raise UnsupportedOpError(f"{what}: an operand ({type(expr).__name__}) that is not a "
                                 "tensor computed earlier")

    operators: list[Operator] = []
    body = main.body
    for block in body.blocks:
        for binding in block.bindings:
            var, value = binding.var, binding.value
            if isinstance(value, relax.Var) and value in value_of:
                value_of[var] = value_of[value]  # an alias
                continue
            if isinstance(value, relax.TupleGetItem) and value.tuple_value in value_of:
                value_of[var] = value_of[value.tuple_value][value.index]
                continue
            if isinstance(value, relax.Tuple):
                value_of[var] = tuple(operand(f, "a tuple") for f in value.fields)
                continue
            if not (isinstance(value, relax.Call) and value.op.name == "relax.call_tir"):
                what = value.op.name if isinstance(value, relax.Call) else type(value).__name__
                raise UnsupportedOpError(f"{name}: '{what}' has no kernel after legalization "
                                         "(a dynamic or runtime-only operator)")
            gv, args = value.args[0], value.args[1]
            if len(value.args) > 2:
                raise UnsupportedOpError(f"{name}: '{gv.name_hint}' needs shape variables at "
                                         "run time (dynamic shapes)")
            func = mod[gv]
            ins = tuple(operand(a, gv.name_hint) for a in args.fields)
            ty = var.ty
            outs_info = list(ty.fields) if isinstance(ty, relax.TupleType) else [ty]
            outs = tuple(new_tensor(f"{var.name}{'' if len(outs_info) == 1 else k}",
                                    *_shape_dtype(s, f"the output of {gv.name_hint}"))
                         for k, s in enumerate(outs_info))
            value_of[var] = outs[0] if isinstance(ty, relax.TensorType) else outs
            operators.append(Operator(len(operators), gv.name_hint, ins, outs,
                                      {"prim_func": func}))
    result = body.body
    results = result.fields if isinstance(result, relax.Tuple) else [result]
    outputs = []
    for r in results:
        if isinstance(r, relax.TupleGetItem) and isinstance(value_of.get(r.tuple_value), tuple):
            index = value_of[r.tuple_value][r.index]
        else:
            index = value_of.get(r)
        indices = index if isinstance(index, tuple) else (index,)  # a tuple of outputs
        for i in indices:
            if not isinstance(i, int) or tensors[i].data is not None or i in inputs:
                raise UnsupportedOpError(f"{name}: an output that is not a computed tensor "
                                         "(an input or a constant passed through)")
            outputs.append(i)
    if not operators:
        raise ModelError(f"{name} computes nothing (its outputs are its inputs or constants)")
    _ = tvm  # imported for its side effect of registering the Relax passes
    return Graph(name=name, tensors=tensors, operators=operators, inputs=tuple(inputs),
                 outputs=tuple(outputs), source=path, origin="relax")
