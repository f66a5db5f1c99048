"""Sparse constant tensors (TFLite's ``SparsityParameters``) made dense at load time.

A sparse tensor stores only its non-zero values (``buffer``) and, per dimension in traversal
order, either a dense extent or a CSR pair (segments, indices); block sparsity adds block
dimensions mapped back onto original ones (``block_map``). TFLite's ``DENSIFY`` operator and
sparse ``FULLY_CONNECTED`` weights expand them at run time; we expand them once, here, so every
later stage sees an ordinary constant and ``DENSIFY`` folds away (:mod:`edge_sdk.compiler.fold`).
The walk is TFLite's ``FormatConverter::SparseToDense`` order: leaves in traversal order consume
the stored values one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_sdk.errors import ModelError

DENSE, SPARSE_CSR = 0, 1


@dataclass(frozen=True)
class DimMetadata:
    format: int
    dense_size: int = 0
    segments: tuple[int, ...] = ()
    indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Sparsity:
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dims: tuple[DimMetadata, ...]


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Sparsity) -> np.ndarray:
    """The dense array of ``shape`` that ``values`` (the stored non-zeros) and ``sparsity``
    describe; a clear error if they do not fit together."""
    rank, order = len(shape), sparsity.traversal_order
    levels = len(order)
    if len(sparsity.dims) != levels or levels != rank + len(sparsity.block_map) or sorted(
            order) != list(range(levels)):
        raise ModelError("sparse tensor: traversal order, block map and dimension metadata "
                         "do not fit together")
    block_size = [0] * len(sparsity.block_map)
    for level, expanded in enumerate(order):
        if expanded >= rank:
            block_size[expanded - rank] = sparsity.dims[level].dense_size
    dense = np.zeros(shape, dtype=values.dtype)
    flat = dense.reshape(-1)
    strides = [int(np.prod(shape[d + 1:], dtype=np.int64)) for d in range(rank)]
    expanded_index = [0] * levels
    consumed = 0

    def leaf() -> None:
        nonlocal consumed
        original = list(expanded_index[:rank])
        for j, d in enumerate(sparsity.block_map):
            original[d] = original[d] * block_size[j] + expanded_index[rank + j]
        if consumed >= values.size or any(not 0 <= i < n for i, n in zip(original, shape,
                                                                          strict=True)):
            raise ModelError("sparse tensor: its indices or values do not fit its shape")
        flat[sum(i * s for i, s in zip(original, strides, strict=True))] = values[consumed]
        consumed += 1

    def walk(level: int, position: int) -> None:
        if level == levels:
            leaf()
            return
        meta = sparsity.dims[level]
        if meta.format == DENSE:
            for i in range(meta.dense_size):
                expanded_index[order[level]] = i
                walk(level + 1, position * meta.dense_size + i)
        else:
            if position + 1 >= len(meta.segments):
                raise ModelError("sparse tensor: CSR segments are too short")
            for i in range(meta.segments[position], meta.segments[position + 1]):
                expanded_index[order[level]] = meta.indices[i]
                walk(level + 1, i)

    walk(0, 0)
    if consumed != values.size:
        raise ModelError(f"sparse tensor: {values.size} values stored, {consumed} placed")
    return dense


def read_sparsity(t) -> Sparsity | None:
    """The ``SparsityParameters`` of a flatbuffer tensor, or None."""
    import tflite

    sp = t.Sparsity()
    if sp is None:
        return None

    def vector(table_cls, union_table) -> tuple[int, ...]:
        if union_table is None:
            return ()
        v = table_cls()
        v.Init(union_table.Bytes, union_table.Pos)
        return tuple(int(x) for x in v.ValuesAsNumpy()) if v.ValuesLength() else ()

    kinds = {tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
             tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
             tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector}
    dims = []
    for k in range(sp.DimMetadataLength()):
        m = sp.DimMetadata(k)
        if m.Format() == DENSE:
            dims.append(DimMetadata(DENSE, int(m.DenseSize())))
            continue
        seg_cls, idx_cls = kinds.get(m.ArraySegmentsType()), kinds.get(m.ArrayIndicesType())
        if seg_cls is None or idx_cls is None:
            raise ModelError("sparse tensor: CSR metadata without segments or indices")
        dims.append(DimMetadata(SPARSE_CSR, 0, vector(seg_cls, m.ArraySegments()),
                                vector(idx_cls, m.ArrayIndices())))
    order = tuple(int(x) for x in sp.TraversalOrderAsNumpy()) if sp.TraversalOrderLength() else ()
    blocks = tuple(int(x) for x in sp.BlockMapAsNumpy()) if sp.BlockMapLength() else ()
    return Sparsity(order, blocks, tuple(dims))
