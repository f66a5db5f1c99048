"""SPLIT, SPLIT_V, PACK, UNPACK, DEPTH_TO_SPACE, SPACE_TO_DEPTH and GATHER (int8, int16, float32)
against LiteRT's reference kernels: every output, bit for bit. Several of them have several
outputs (SPLIT, UNPACK) or inputs (PACK, run-time GATHER indices)."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from tests.test_multi_io import litert


def t(name, shape, dtype):
    if dtype == "int8":
        return TensorSpec(name, shape, "int8", (0.05,), (3,))
    if dtype == "int16":
        return TensorSpec(name, shape, "int16", (0.001,), (0,))
    return TensorSpec(name, shape, dtype)


def const(name, values):
    data = np.array(values, np.int32)
    return TensorSpec(name, data.shape, "int32", data=data)


def split(dtype):
    return build_model([const("axis", [2]), t("x", (1, 3, 6, 2), dtype),
                        *[t(f"y{k}", (1, 3, 2, 2), dtype) for k in range(3)]],
                       [OpSpec("SPLIT", [0, 1], [2, 3, 4], {"num_splits": 3})], [1], [2, 3, 4])


def split_v(dtype):
    return build_model([t("x", (2, 7, 3), dtype), const("sizes", [2, -1, 1]), const("axis", [-2]),
                        t("a", (2, 2, 3), dtype), t("b", (2, 4, 3), dtype),
                        t("c", (2, 1, 3), dtype)],
                       [OpSpec("SPLIT_V", [0, 1, 2], [3, 4, 5], {"num_splits": 3})], [0],
                       [3, 4, 5])


def pack(dtype):
    return build_model([t("a", (3, 4), dtype), t("b", (3, 4), dtype), t("y", (3, 2, 4), dtype)],
                       [OpSpec("PACK", [0, 1], [2], {"axis": 1, "values_count": 2})], [0, 1], [2])


def unpack(dtype):
    return build_model([t("x", (2, 3, 4), dtype), *[t(f"y{k}", (2, 4), dtype) for k in range(3)]],
                       [OpSpec("UNPACK", [0], [1, 2, 3], {"axis": -2, "num": 3})], [0], [1, 2, 3])


def depth_to_space(dtype):
    return build_model([t("x", (1, 2, 3, 8), dtype), t("y", (1, 4, 6, 2), dtype)],
                       [OpSpec("DEPTH_TO_SPACE", [0], [1], {"block_size": 2})], [0], [1])


def space_to_depth(dtype):
    return build_model([t("x", (1, 6, 4, 3), dtype), t("y", (1, 3, 2, 12), dtype)],
                       [OpSpec("SPACE_TO_DEPTH", [0], [1], {"block_size": 2})], [0], [1])


def gather_const(dtype):
    return build_model([t("x", (2, 5, 3), dtype), const("idx", [[4, 0], [2, 2], [1, 3]]),
                        t("y", (2, 3, 2, 3), dtype)],
                       [OpSpec("GATHER", [0, 1], [2], {"axis": 1})], [0], [2])


def gather_runtime(dtype):
    return build_model([t("x", (6, 4), dtype), TensorSpec("idx", (3,), "int32"),
                        t("y", (3, 4), dtype)],
                       [OpSpec("GATHER", [0, 1], [2], {"axis": 0})], [0, 1], [2])


BUILDERS = [split, split_v, pack, unpack, depth_to_space, space_to_depth, gather_const,
            gather_runtime]


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_movement_matches_litert(builder, dtype):
    if dtype == "int16" and builder in (depth_to_space, space_to_depth):
        with pytest.raises(edge_sdk.EdgeSDKError, match="int16"):
            edge_sdk.compile(parse(builder(dtype)))
        return  # LiteRT has no int16 kernel for these either
    model = builder(dtype)
    graph = parse(model, name=f"{builder.__name__}_{dtype}")
    rng = np.random.default_rng(7)
    xs = []
    for i in graph.inputs:
        tensor = graph.tensor(i)
        if tensor.dtype == "int32":  # GATHER's run-time indices
            xs.append(rng.integers(0, 6, size=(3, *tensor.shape), dtype=np.int32))
        elif dtype in ("int8", "int16"):
            info = np.iinfo(dtype)
            xs.append(rng.integers(info.min, info.max + 1, size=(3, *tensor.shape), dtype=dtype))
        else:
            xs.append(rng.standard_normal((3, *tensor.shape)).astype(np.float32))
    want = litert(model, xs)
    got = edge_sdk.run(graph, board="host", inputs=xs).output_list
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.reshape(w.shape), w)


def arg_extreme(opcode, dtype, out_type):
    return build_model([t("x", (2, 5, 3), dtype), const("axis", [1]), TensorSpec("y", (2, 3),
                                                                             out_type)],
                       [OpSpec(opcode, [0, 1], [2], {"output_type": out_type})], [0], [2])


def reduce_extreme(opcode, dtype, keep_dims):
    out_shape = (2, 1, 1, 3) if keep_dims else (2, 3)
    return build_model([t("x", (2, 4, 5, 3), dtype), const("axes", [1, -2]),
                        t("y", out_shape, dtype)],
                       [OpSpec(opcode, [0, 1], [2], {"keep_dims": keep_dims})], [0], [2])


EXTREMES = {
    "arg_max_int64": lambda d: arg_extreme("ARG_MAX", d, "int64"),
    "arg_min_int32": lambda d: arg_extreme("ARG_MIN", d, "int32"),
    "reduce_max_keep_dims": lambda d: reduce_extreme("REDUCE_MAX", d, True),
    "reduce_min": lambda d: reduce_extreme("REDUCE_MIN", d, False),
}


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
@pytest.mark.parametrize("case", sorted(EXTREMES))
def test_extremes_match_litert(case, dtype):
    """Ties included: int8 data in a narrow range repeats values, and ARG_* must keep the
    first index of the extreme."""
    model = EXTREMES[case](dtype)
    graph = parse(model, name=f"{case}_{dtype}")
    if dtype == "int16" and case.startswith("arg_"):
        with pytest.raises(edge_sdk.EdgeSDKError, match="int16"):
            edge_sdk.compile(graph)
        return  # LiteRT has no int16 ARG_MAX/ARG_MIN either
    shape = graph.tensor(graph.inputs[0]).shape
    rng = np.random.default_rng(8)
    x = (rng.integers(-3, 4, size=(4, *shape)).astype(dtype) if dtype != "float32"
         else rng.standard_normal((4, *shape)).astype(np.float32))
    want = litert(model, [x])[0]
    got = edge_sdk.run(graph, board="host", inputs=x).outputs
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.reshape(want.shape), want)
