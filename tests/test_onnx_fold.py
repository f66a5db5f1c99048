"""Shape arithmetic and constant subgraphs of ONNX exports, folded before import (onnx_fold).

The graphs are built the way ``torch.onnx.export`` writes them (``Shape -> Gather -> Div ->
Concat -> Reshape`` for ShuffleNetV2's channel shuffle), and checked against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.frontend.onnx_fold import fold_constants
from tests.test_onnx_route import onnxruntime, save, tensor


def _i64(name: str, values: list[int]):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.array(values, dtype=np.int64), name + "_v"))


def channel_shuffle(tmp_path: Path) -> Path:
    """Conv, then x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w) with
    every size read from the tensor at run time, as PyTorch traces ``x.size()``."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Shape", ["c"], ["s"])]
    for axis in range(4):
        nodes += [_i64(f"i{axis}", [axis]),
                  helper.make_node("Gather", ["s", f"i{axis}"], [f"d{axis}"], axis=0)]
    nodes += [_i64("groups", [2]),
              helper.make_node("Div", ["d1", "groups"], ["per_group"]),
              helper.make_node("Concat", ["d0", "groups", "per_group", "d2", "d3"], ["view"],
                               axis=0),
              helper.make_node("Reshape", ["c", "view"], ["v"]),
              helper.make_node("Transpose", ["v"], ["t"], perm=[0, 2, 1, 3, 4]),
              helper.make_node("Concat", ["d0", "d1", "d2", "d3"], ["back"], axis=0),
              helper.make_node("Reshape", ["t", "back"], ["y"])]
    return save(tmp_path, "channel_shuffle", nodes, [tensor("x", [1, 3, 8, 8])],
                [tensor("y", [1, 8, 8, 8])], {"w": rng.standard_normal((8, 3, 3, 3))})


def test_the_shape_chain_folds_to_constant_reshapes(tmp_path):
    path_model = onnx.load(str(channel_shuffle(tmp_path)))
    folded = fold_constants(path_model)
    ops = [n.op_type for n in folded.graph.node]
    assert ops == ["Conv", "Reshape", "Transpose", "Reshape"]
    shapes = {i.name: numpy_helper.to_array(i).tolist() for i in folded.graph.initializer}
    assert shapes["view"] == [1, 2, 4, 8, 8] and shapes["back"] == [1, 8, 8, 8]
    onnx.checker.check_model(folded)
    assert path_model.graph.node[1].op_type == "Shape"  # the caller's model is left alone


def test_a_channel_shuffle_compiles_and_matches_onnxruntime(tmp_path):
    path = channel_shuffle(tmp_path)
    graph = edge_sdk.load(path)
    assert graph.origin == "onnx"  # the operator library's route, not a refusal or Relax
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    result = edge_sdk.run(graph, board="host", inputs=x[None])
    np.testing.assert_allclose(result.output_list[0].reshape(1, 8, 8, 8), onnxruntime(path, x),
                               rtol=1e-5, atol=1e-5)


def test_a_broadcast_constant_is_not_expanded_into_the_program(tmp_path):
    """ConstantOfShape makes a large tensor of one value: it stays a node, so the weights do not
    grow by its size; Q/DQ pairs stay too (they mark int8 regions)."""
    nodes = [_i64("shape", [1, 64, 64, 64]),
             helper.make_node("ConstantOfShape", ["shape"], ["ones"], value=numpy_helper.from_array(
                 np.array([1.0], dtype=np.float32), "one")),
             helper.make_node("Add", ["x", "ones"], ["y"])]
    model = onnx.load(str(save(tmp_path, "broadcast", nodes, [tensor("x", [1, 64, 64, 64])],
                               [tensor("y", [1, 64, 64, 64])])))
    folded = fold_constants(model)
    assert [n.op_type for n in folded.graph.node] == ["ConstantOfShape", "Add"]
    assert sum(numpy_helper.to_array(i).nbytes for i in folded.graph.initializer) < 1024

    q = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]),
         helper.make_node("MatMul", ["x", "w"], ["y"])], "qdq",
        [tensor("x", [1, 4])], [tensor("y", [1, 4])],
        [numpy_helper.from_array(np.ones((4, 4), np.int8), "wq"),
         numpy_helper.from_array(np.array(0.5, np.float32), "s")])
    qdq = helper.make_model(q, opset_imports=[helper.make_opsetid("", 17)])
    assert fold_constants(qdq) is qdq


def test_a_graph_with_nothing_to_fold_is_returned_as_it_is():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert fold_constants(model) is model
