"""What an ONNX file must be before edge-sdk compiles it: what ONNX itself calls valid.

TVM's importer takes much that ONNX forbids and compiles it without a word: a hostile or
damaged file (opset 0 or 99, no ``opset_import``, strides of 0, ``auto_pad`` together with
``pads``, a declared output type the graph does not compute, negative dimensions) became C, and
a node of another operator set (``com.microsoft:Sigmoid``, ``com.evil:Add``) was compiled as if
it were the standard operator of that name. ONNX Runtime refuses all of these; so does this
check, in one line that names the node, before anything is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_sdk.errors import ModelError, UnsupportedOpError

STANDARD_DOMAINS = ("", "ai.onnx")
# Operators whose padding is given either by ``auto_pad`` or by ``pads``, never both.
PADDED = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "AveragePool", "MaxPool",
          "LpPool")
GROUPED = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv")
# Operator sets before 6 predate every exporter in use; ONNX Runtime has no kernels for them
# (Relu-1), so nothing could check our result. 6 stays: PyTorch's own conformance models use it.
OLDEST_OPSET = 6


def _known_types() -> frozenset[int]:
    from onnx import TensorProto

    return frozenset(v for v in TensorProto.DataType.values() if v != TensorProto.UNDEFINED)


def _node_name(node: Any, k: int) -> str:
    label = f"'{node.name}'" if node.name else f"#{k}"
    return f"node {label} ({(node.domain + ':') if node.domain else ''}{node.op_type})"


def check_onnx(model: Any, path: Path | None = None) -> None:
    """Refuse ``model`` unless ONNX's own checker (full check, with shape and type inference)
    passes and every node is a standard ONNX operator with attributes it allows."""
    import onnx
    from onnx import defs

    known_types = _known_types()
    where = path.name if path is not None else "the model"
    versions = {o.domain: o.version for o in model.opset_import}
    default = [versions[d] for d in STANDARD_DOMAINS if d in versions]
    if not default:
        raise ModelError(f"{where} names no version of the ONNX operator set (opset_import "
                         "is empty): re-export it, e.g. torch.onnx.export(..., opset_version=17)")
    newest = defs.onnx_opset_version()
    if not 1 <= default[0] <= newest:
        raise ModelError(f"{where} asks for ONNX operator set {default[0]}, which does not "
                         f"exist (1 to {newest} do): re-export it with a real opset_version")
    if default[0] < OLDEST_OPSET:
        raise ModelError(f"{where} uses ONNX operator set {default[0]}, older than any exporter "
                         f"in use makes and than ONNX Runtime implements: re-export it with "
                         "opset_version 7 or newer")
    for v in (*model.graph.input, *model.graph.output):
        kind = v.type.WhichOneof("value")
        if kind == "tensor_type" and v.type.tensor_type.elem_type not in known_types:
            raise ModelError(f"{where}: '{v.name}' has element type "
                             f"{v.type.tensor_type.elem_type}, which ONNX does not define: "
                             "re-export it")
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    for k, node in enumerate(model.graph.node):
        if node.domain not in STANDARD_DOMAINS:
            raise UnsupportedOpError(
                f"{where}: {_node_name(node, k)} is from operator set '{node.domain}', not "
                "standard ONNX: edge-sdk implements only the standard operators (export "
                "without custom or vendor operators, e.g. no onnxruntime 'contrib' fusions)")
        attrs = {a.name: a for a in node.attribute}
        if node.op_type in PADDED and "pads" in attrs and "auto_pad" in attrs and (
                attrs["auto_pad"].s not in (b"", b"NOTSET")):
            raise ModelError(f"{where}: {_node_name(node, k)} has both auto_pad and pads, "
                             "which ONNX forbids: re-export it")
        if (node.op_type in ("Conv", "ConvTranspose") and "kernel_shape" in attrs
                and len(node.input) > 1 and node.input[1] in weights
                and list(attrs["kernel_shape"].ints) != weights[node.input[1]][2:]):
            raise ModelError(f"{where}: {_node_name(node, k)} says kernel_shape "
                             f"{list(attrs['kernel_shape'].ints)} but its weights have "
                             f"{weights[node.input[1]][2:]}: re-export it")
        if node.op_type in GROUPED and "group" in attrs and attrs["group"].i < 1:
            raise ModelError(f"{where}: {_node_name(node, k)} has group {attrs['group'].i}; "
                             "ONNX requires 1 or more: re-export it")
    try:
        if path is not None and model.ByteSize() > 1_900_000_000:  # protobuf's 2 GB limit
            onnx.checker.check_model(str(path), full_check=True)
        else:
            onnx.checker.check_model(model, full_check=True)
    except Exception as err:  # ValidationError, InferenceError, and the like
        said = " ".join(str(err).split()) or type(err).__name__  # its lines, joined
        first = said if len(said) <= 200 else said[:197] + "..."
        raise ModelError(f"{where} is not a valid ONNX model by ONNX's own checker ({first}): "
                         "re-export it") from None
