"""Structured mutants of an ONNX model, and onnxruntime's verdict on each.

The ONNX counterpart of ``tests/mutants.py``. Each mutant rewrites one thing a loader must not
trust, at the protobuf level: the operator set's version (0, 1, 99, none), a node's domain (a
custom one), its op_type, an attribute (0, -1, a huge value, removed, a wrong type), an input
name (one that does not exist, the node's own output: a cycle), the order of the nodes, a graph
input's or output's element type or dimension, an initializer's dimension, type or data (cut
short), plus a share of byte flips in the serialized model outside the weights' bytes.
onnxruntime (one thread, no graph rewrites) loads and runs each in a forked child: a mutant can
crash it. Used by ``tests/test_mutants.py`` and ``benchmarks/robustness.py --onnx``.
"""

from __future__ import annotations

import copy

import numpy as np
from mutants import Mutant, Verdict, forked_verdict  # the TFLite mutants' records

AWKWARD_INTS = [0, -1, -2, 2, 7, 1 << 31, -(1 << 40)]
OTHER_OPS = ["Add", "Relu", "Sigmoid", "MatMul", "Conv", "Reshape", "Softmax", "Gemm", "Concat",
             "NoSuchOp"]


def _mutate(model, rng: np.random.Generator):
    """One mutation of a copy of ``model``: (the mutant, what was changed)."""
    from onnx import TensorProto, helper

    m = copy.deepcopy(model)
    g = m.graph
    kind = rng.choice(["opset", "domain", "op_type", "attribute", "attribute", "attribute",
                       "input", "input", "order", "io_type", "io_dim", "init_dim",
                       "init_type", "init_data"])
    node_i = int(rng.integers(0, len(g.node))) if g.node else 0
    node = g.node[node_i] if g.node else None
    if kind == "opset":
        value = int(rng.choice([0, 1, 99, -1]))
        if value == -1:
            del m.opset_import[:]
            return m, "opset_import removed"
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = value
        return m, f"opset -> {value}"
    if kind == "domain" and node is not None:
        node.domain = str(rng.choice(["com.microsoft", "com.evil", "ai.onnx.ml"]))
        m.opset_import.append(helper.make_opsetid(node.domain, 1))
        return m, f"node {node_i} domain -> {node.domain}"
    if kind == "op_type" and node is not None:
        old, node.op_type = node.op_type, str(rng.choice(OTHER_OPS))
        return m, f"node {node_i} op_type {old} -> {node.op_type}"
    if kind == "attribute" and node is not None and node.attribute:
        a = node.attribute[int(rng.integers(0, len(node.attribute)))]
        how = rng.choice(["value", "remove", "type"])
        if how == "remove":
            node.attribute.remove(a)
            return m, f"node {node_i} attribute {a.name} removed"
        if how == "type":
            node.attribute.remove(a)
            node.attribute.append(helper.make_attribute(a.name, "bogus"))
            return m, f"node {node_i} attribute {a.name} -> a string"
        v = int(rng.choice(AWKWARD_INTS))
        if a.type == a.INT:
            a.i = v
        elif a.type == a.INTS and len(a.ints):
            a.ints[int(rng.integers(0, len(a.ints)))] = v
        elif a.type == a.FLOAT:
            a.f = float(rng.choice([0.0, -1.0, np.nan, np.inf, 1e30]))
        elif a.type == a.STRING:
            a.s = b"NO_SUCH_MODE"
        else:
            node.attribute.remove(a)
        return m, f"node {node_i} attribute {a.name} -> awkward"
    if kind == "input" and node is not None and node.input:
        k = int(rng.integers(0, len(node.input)))
        new = str(rng.choice(["ghost", node.output[0] if node.output else "ghost", ""]))
        old, node.input[k] = node.input[k], new
        return m, f"node {node_i} input {k} {old!r} -> {new!r}"
    if kind == "order" and len(g.node) > 1:
        nodes = list(g.node)
        rng.shuffle(nodes)
        del g.node[:]
        g.node.extend(nodes)
        return m, "nodes shuffled"
    if kind in ("io_type", "io_dim"):
        vi = list(g.input) + list(g.output)
        v = vi[int(rng.integers(0, len(vi)))]
        tt = v.type.tensor_type
        if kind == "io_type":
            tt.elem_type = int(rng.choice([TensorProto.FLOAT16, TensorProto.INT64,
                                           TensorProto.STRING, TensorProto.BOOL, 0, 99]))
            return m, f"{v.name} element type -> {tt.elem_type}"
        if len(tt.shape.dim):
            d = tt.shape.dim[int(rng.integers(0, len(tt.shape.dim)))]
            d.dim_value = int(rng.choice([0, 3, 1 << 30]))
            return m, f"{v.name} a dimension -> {d.dim_value}"
    if kind.startswith("init") and g.initializer:
        t = g.initializer[int(rng.integers(0, len(g.initializer)))]
        if kind == "init_dim" and len(t.dims):
            i = int(rng.integers(0, len(t.dims)))
            t.dims[i] = int(rng.choice([0, -t.dims[i], t.dims[i] + 1, 1 << 40]))
            return m, f"initializer {t.name} dim {i} -> {t.dims[i]}"
        if kind == "init_type":
            t.data_type = int(rng.choice([TensorProto.INT8, TensorProto.DOUBLE, 0, 77]))
            return m, f"initializer {t.name} type -> {t.data_type}"
        if kind == "init_data" and t.raw_data:
            t.raw_data = t.raw_data[: len(t.raw_data) // 2]
            return m, f"initializer {t.name} data cut to half"
    return None, ""


def onnx_mutants(model, count: int, seed: int = 0, byte_share: float = 0.15) -> list[Mutant]:
    """``count`` mutants of the ONNX ``model`` (a ModelProto), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    raw = model.SerializeToString()
    weights = bytearray(len(raw))  # positions inside an initializer's raw bytes: left alone
    for t in model.graph.initializer:
        if len(t.raw_data) > 16:
            at = raw.find(t.raw_data)
            if at >= 0:
                weights[at:at + len(t.raw_data)] = b"\x01" * len(t.raw_data)
    free = [i for i in range(len(raw)) if not weights[i]]
    out: list[Mutant] = []
    while len(out) < count:
        if rng.random() < byte_share:
            buf = bytearray(raw)
            pos = int(rng.choice(free))
            flip = int(rng.integers(1, 256))
            buf[pos] ^= flip
            out.append(Mutant(bytes(buf), f"byte {pos} xor 0x{flip:02x}"))
            continue
        mutant, what = _mutate(model, rng)
        if mutant is not None:
            out.append(Mutant(mutant.SerializeToString(), what))
    return out


def _ort(raw: bytes, inputs: list[np.ndarray]) -> Verdict:
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 4
        session = ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        if len(names) != len(inputs):
            return Verdict(False, error=f"{len(names)} inputs")
        outs = session.run(None, dict(zip(names, inputs, strict=True)))
        return Verdict(True, [np.asarray(o) for o in outs])
    except Exception as err:
        return Verdict(False, error=" ".join(str(err).split())[:200] or repr(err))


def ort_verdict(raw: bytes, inputs: list[np.ndarray]) -> Verdict:
    """onnxruntime's verdict on ``raw`` with ``inputs``, in a forked child (a crash is a
    verdict: rejected, ``crashed``)."""
    return forked_verdict(_ort, raw, inputs, "onnxruntime")


def sample_model(seed: int = 0):
    """A small image classifier as PyTorch exports one (opset 17): Conv, Relu, MaxPool,
    Conv with groups, GlobalAveragePool, Flatten, Gemm, Softmax, with random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def w(name: str, *shape: int):
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="dwconv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], group=8),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "sample", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [w("w1", 8, 3, 3, 3), w("b1", 8), w("w2", 8, 1, 3, 3), w("b2", 8), w("w3", 5, 8),
         w("b3", 5)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8)
