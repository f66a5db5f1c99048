"""Write a ``.tflite`` flatbuffer from small typed descriptions.

Used by the tests to make single-operator models with chosen quantization (edge cases the
MLPerf models never hit), and the base of the quantizer's output. Builtin options come from the
table the reader uses too (:mod:`.tflite_options`); the file follows the TFLite schema, so
LiteRT loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np

from edge_sdk.frontend.tflite_options import encode as encode_options

_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}


@dataclass
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...] | None = None
    zero_point: tuple[int, ...] | None = None
    axis: int = 0
    data: np.ndarray | None = None
    variable: bool = False  # state kept across inferences (an LSTM's or SVDF's)
    sparsity: Any = None  # edge_sdk.frontend.sparsity.Sparsity: ``data`` holds the non-zeros
    signature: tuple[int, ...] | None = None  # shape_signature: -1 where a dimension is open


@dataclass
class OpSpec:
    opcode: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


def _opcode_value(name: str) -> int:
    from tflite.BuiltinOperator import BuiltinOperator

    return int(getattr(BuiltinOperator, name))


def _vector_i32(b: flatbuffers.Builder, values: list[int]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(int(v))
    return b.EndVector()


def _int32_vector_table(b, values) -> int:
    import tflite

    vec = _vector_i32(b, list(values))
    tflite.Int32VectorStart(b)
    tflite.Int32VectorAddValues(b, vec)
    return tflite.Int32VectorEnd(b)


def _sparsity(b, sp) -> int:
    """``SparsityParameters`` (CSR segments and indices as Int32Vector unions)."""
    import tflite

    dims = []
    for m in sp.dims:
        seg = idx = None
        if m.format:
            seg, idx = _int32_vector_table(b, m.segments), _int32_vector_table(b, m.indices)
        tflite.DimensionMetadataStart(b)
        tflite.DimensionMetadataAddFormat(b, m.format)
        tflite.DimensionMetadataAddDenseSize(b, m.dense_size)
        if m.format:
            tflite.DimensionMetadataAddArraySegmentsType(b, tflite.SparseIndexVector.Int32Vector)
            tflite.DimensionMetadataAddArraySegments(b, seg)
            tflite.DimensionMetadataAddArrayIndicesType(b, tflite.SparseIndexVector.Int32Vector)
            tflite.DimensionMetadataAddArrayIndices(b, idx)
        dims.append(tflite.DimensionMetadataEnd(b))
    b.StartVector(4, len(dims), 4)
    for d in reversed(dims):
        b.PrependUOffsetTRelative(d)
    dim_vec = b.EndVector()
    order = _vector_i32(b, list(sp.traversal_order))
    block = _vector_i32(b, list(sp.block_map)) if sp.block_map else None
    tflite.SparsityParametersStart(b)
    tflite.SparsityParametersAddTraversalOrder(b, order)
    if block is not None:
        tflite.SparsityParametersAddBlockMap(b, block)
    tflite.SparsityParametersAddDimMetadata(b, dim_vec)
    return tflite.SparsityParametersEnd(b)


def build_model(tensors: list[TensorSpec], ops: list[OpSpec], inputs: list[int],
                outputs: list[int], description: str = "edge-sdk") -> bytes:
    """Serialize one subgraph into ``.tflite`` bytes (schema version 3)."""
    import tflite

    b = flatbuffers.Builder(1024)
    # Buffer 0 is the empty sentinel; each constant tensor gets its own buffer.
    buffer_data: list[bytes | None] = [None]
    tensor_buffer: list[int] = []
    for t in tensors:
        if t.data is None:
            tensor_buffer.append(0)
        else:
            buffer_data.append(np.ascontiguousarray(t.data, dtype=t.dtype).tobytes())
            tensor_buffer.append(len(buffer_data) - 1)

    buffer_offsets = []
    for data in buffer_data:
        vec = None
        if data:
            b.StartVector(1, len(data), 16)
            b.head = b.head - len(data)
            b.Bytes[b.head : b.head + len(data)] = data
            vec = b.EndVector()
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        buffer_offsets.append(tflite.BufferEnd(b))

    tensor_offsets = []
    for t, buf in zip(tensors, tensor_buffer, strict=True):
        name = b.CreateString(t.name)
        shape = _vector_i32(b, list(t.shape))
        signature = _vector_i32(b, list(t.signature)) if t.signature is not None else None
        quant = None
        if t.scale is not None:
            scales = list(t.scale)
            zps = list(t.zero_point or [0] * len(scales))
            b.StartVector(4, len(scales), 4)
            for s in reversed(scales):
                b.PrependFloat32(float(s))
            scale_vec = b.EndVector()
            b.StartVector(8, len(zps), 8)
            for z in reversed(zps):
                b.PrependInt64(int(z))
            zp_vec = b.EndVector()
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale_vec)
            tflite.QuantizationParametersAddZeroPoint(b, zp_vec)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
            quant = tflite.QuantizationParametersEnd(b)
        sparsity = _sparsity(b, t.sparsity) if t.sparsity is not None else None
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        tflite.TensorAddType(b, _TYPES[t.dtype])
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, name)
        if t.variable:
            tflite.TensorAddIsVariable(b, True)
        if sparsity is not None:
            tflite.TensorAddSparsity(b, sparsity)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))

    opcodes = sorted({op.opcode for op in ops})
    op_offsets = []
    for op in ops:
        opt_type, opt = encode_options(b, op.opcode, op.options)
        ins, outs = _vector_i32(b, op.inputs), _vector_i32(b, op.outputs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opcodes.index(op.opcode))
        tflite.OperatorAddInputs(b, ins)
        tflite.OperatorAddOutputs(b, outs)
        if opt_type:
            tflite.OperatorAddBuiltinOptionsType(b, opt_type)
            tflite.OperatorAddBuiltinOptions(b, opt)
        op_offsets.append(tflite.OperatorEnd(b))

    def table_vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    tensors_vec, ops_vec = table_vector(tensor_offsets), table_vector(op_offsets)
    in_vec, out_vec = _vector_i32(b, inputs), _vector_i32(b, outputs)
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddOperators(b, ops_vec)
    tflite.SubGraphAddInputs(b, in_vec)
    tflite.SubGraphAddOutputs(b, out_vec)
    tflite.SubGraphAddName(b, sg_name)
    subgraph = tflite.SubGraphEnd(b)

    code_offsets = []
    for name in opcodes:
        value = _opcode_value(name)
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(value, 127))
        tflite.OperatorCodeAddBuiltinCode(b, value)
        tflite.OperatorCodeAddVersion(b, 1)
        code_offsets.append(tflite.OperatorCodeEnd(b))

    codes_vec = table_vector(code_offsets)
    subgraphs_vec = table_vector([subgraph])
    buffers_vec = table_vector(buffer_offsets)
    desc = b.CreateString(description)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers_vec)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())
