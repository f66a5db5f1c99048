"""Write a ``.tflite`` flatbuffer from small typed descriptions.

Used by the tests to make single-operator models with chosen quantization (edge cases the
MLPerf models never hit), and the base of the quantizer's output. Only the builtin options of the
operators we compile are implemented; the file follows the TFLite schema, so LiteRT loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np

_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}
_ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PAD = {"SAME": 0, "VALID": 1}


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


def _options(b: flatbuffers.Builder, op: OpSpec) -> tuple[int, int]:
    """Build the builtin options table; returns (BuiltinOptions type, offset)."""
    import tflite
    from tflite.BuiltinOptions import BuiltinOptions as BO

    o = op.options
    act = _ACT[o.get("activation", "NONE")]
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        sh, sw = o.get("stride", (1, 1))
        dh, dw = o.get("dilation", (1, 1))
        if op.opcode == "CONV_2D":
            tflite.Conv2DOptionsStart(b)
            tflite.Conv2DOptionsAddPadding(b, _PAD[o.get("padding", "VALID")])
            tflite.Conv2DOptionsAddStrideH(b, sh)
            tflite.Conv2DOptionsAddStrideW(b, sw)
            tflite.Conv2DOptionsAddDilationHFactor(b, dh)
            tflite.Conv2DOptionsAddDilationWFactor(b, dw)
            tflite.Conv2DOptionsAddFusedActivationFunction(b, act)
            return BO.Conv2DOptions, tflite.Conv2DOptionsEnd(b)
        tflite.DepthwiseConv2DOptionsStart(b)
        tflite.DepthwiseConv2DOptionsAddPadding(b, _PAD[o.get("padding", "VALID")])
        tflite.DepthwiseConv2DOptionsAddStrideH(b, sh)
        tflite.DepthwiseConv2DOptionsAddStrideW(b, sw)
        tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, dh)
        tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, dw)
        tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, o.get("depth_multiplier", 1))
        tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
        return BO.DepthwiseConv2DOptions, tflite.DepthwiseConv2DOptionsEnd(b)
    if op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        fh, fw = o["filter"]
        sh, sw = o.get("stride", (1, 1))
        tflite.Pool2DOptionsStart(b)
        tflite.Pool2DOptionsAddPadding(b, _PAD[o.get("padding", "VALID")])
        tflite.Pool2DOptionsAddStrideH(b, sh)
        tflite.Pool2DOptionsAddStrideW(b, sw)
        tflite.Pool2DOptionsAddFilterHeight(b, fh)
        tflite.Pool2DOptionsAddFilterWidth(b, fw)
        tflite.Pool2DOptionsAddFusedActivationFunction(b, act)
        return BO.Pool2DOptions, tflite.Pool2DOptionsEnd(b)
    if op.opcode == "FULLY_CONNECTED":
        tflite.FullyConnectedOptionsStart(b)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(b, act)
        tflite.FullyConnectedOptionsAddKeepNumDims(b, bool(o.get("keep_num_dims", False)))
        return BO.FullyConnectedOptions, tflite.FullyConnectedOptionsEnd(b)
    if op.opcode == "ADD":
        tflite.AddOptionsStart(b)
        tflite.AddOptionsAddFusedActivationFunction(b, act)
        return BO.AddOptions, tflite.AddOptionsEnd(b)
    if op.opcode == "SUB":
        tflite.SubOptionsStart(b)
        tflite.SubOptionsAddFusedActivationFunction(b, act)
        return BO.SubOptions, tflite.SubOptionsEnd(b)
    if op.opcode == "MUL":
        tflite.MulOptionsStart(b)
        tflite.MulOptionsAddFusedActivationFunction(b, act)
        return BO.MulOptions, tflite.MulOptionsEnd(b)
    if op.opcode == "CONCATENATION":
        tflite.ConcatenationOptionsStart(b)
        tflite.ConcatenationOptionsAddAxis(b, int(o["axis"]))
        tflite.ConcatenationOptionsAddFusedActivationFunction(b, act)
        return BO.ConcatenationOptions, tflite.ConcatenationOptionsEnd(b)
    if op.opcode == "SVDF":
        tflite.SVDFOptionsStart(b)
        tflite.SVDFOptionsAddRank(b, int(o.get("rank", 1)))
        tflite.SVDFOptionsAddFusedActivationFunction(b, act)
        return BO.SVDFOptions, tflite.SVDFOptionsEnd(b)
    if op.opcode == "GELU":
        tflite.GeluOptionsStart(b)
        tflite.GeluOptionsAddApproximate(b, bool(o.get("approximate", False)))
        return BO.GeluOptions, tflite.GeluOptionsEnd(b)
    if op.opcode == "BATCH_MATMUL":
        tflite.BatchMatMulOptionsStart(b)
        tflite.BatchMatMulOptionsAddAdjX(b, bool(o.get("adj_x", False)))
        tflite.BatchMatMulOptionsAddAdjY(b, bool(o.get("adj_y", False)))
        return BO.BatchMatMulOptions, tflite.BatchMatMulOptionsEnd(b)
    if op.opcode == "MEAN":
        tflite.ReducerOptionsStart(b)
        tflite.ReducerOptionsAddKeepDims(b, bool(o.get("keep_dims", False)))
        return BO.ReducerOptions, tflite.ReducerOptionsEnd(b)
    if op.opcode == "SHAPE":
        tflite.ShapeOptionsStart(b)
        tflite.ShapeOptionsAddOutType(b, _TYPES[o.get("out_type", "int32")])
        return BO.ShapeOptions, tflite.ShapeOptionsEnd(b)
    if op.opcode == "STRIDED_SLICE":
        tflite.StridedSliceOptionsStart(b)
        tflite.StridedSliceOptionsAddBeginMask(b, int(o.get("begin_mask", 0)))
        tflite.StridedSliceOptionsAddEndMask(b, int(o.get("end_mask", 0)))
        tflite.StridedSliceOptionsAddShrinkAxisMask(b, int(o.get("shrink_axis_mask", 0)))
        return BO.StridedSliceOptions, tflite.StridedSliceOptionsEnd(b)
    if op.opcode in ("SPLIT", "SPLIT_V"):
        name = "SplitOptions" if op.opcode == "SPLIT" else "SplitVOptions"
        getattr(tflite, f"{name}Start")(b)
        getattr(tflite, f"{name}AddNumSplits")(b, int(o["num_splits"]))
        return getattr(BO, name), getattr(tflite, f"{name}End")(b)
    if op.opcode == "PACK":
        tflite.PackOptionsStart(b)
        tflite.PackOptionsAddAxis(b, int(o.get("axis", 0)))
        tflite.PackOptionsAddValuesCount(b, int(o["values_count"]))
        return BO.PackOptions, tflite.PackOptionsEnd(b)
    if op.opcode == "UNPACK":
        tflite.UnpackOptionsStart(b)
        tflite.UnpackOptionsAddAxis(b, int(o.get("axis", 0)))
        tflite.UnpackOptionsAddNum(b, int(o["num"]))
        return BO.UnpackOptions, tflite.UnpackOptionsEnd(b)
    if op.opcode in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"):
        name = "DepthToSpaceOptions" if op.opcode == "DEPTH_TO_SPACE" else "SpaceToDepthOptions"
        getattr(tflite, f"{name}Start")(b)
        getattr(tflite, f"{name}AddBlockSize")(b, int(o["block_size"]))
        return getattr(BO, name), getattr(tflite, f"{name}End")(b)
    if op.opcode == "GATHER":
        tflite.GatherOptionsStart(b)
        tflite.GatherOptionsAddAxis(b, int(o.get("axis", 0)))
        tflite.GatherOptionsAddBatchDims(b, int(o.get("batch_dims", 0)))
        return BO.GatherOptions, tflite.GatherOptionsEnd(b)
    if op.opcode in ("SUM", "REDUCE_MAX"):
        tflite.ReducerOptionsStart(b)
        tflite.ReducerOptionsAddKeepDims(b, bool(o.get("keep_dims", False)))
        return BO.ReducerOptions, tflite.ReducerOptionsEnd(b)
    if op.opcode in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        name = ("ResizeBilinearOptions" if op.opcode == "RESIZE_BILINEAR"
                else "ResizeNearestNeighborOptions")
        getattr(tflite, f"{name}Start")(b)
        getattr(tflite, f"{name}AddAlignCorners")(b, bool(o.get("align_corners", False)))
        getattr(tflite, f"{name}AddHalfPixelCenters")(b, bool(o.get("half_pixel_centers", False)))
        return getattr(BO, name), getattr(tflite, f"{name}End")(b)
    if op.opcode == "TRANSPOSE_CONV":
        sh, sw = o.get("stride", (1, 1))
        tflite.TransposeConvOptionsStart(b)
        tflite.TransposeConvOptionsAddPadding(b, _PAD[o.get("padding", "VALID")])
        tflite.TransposeConvOptionsAddStrideH(b, sh)
        tflite.TransposeConvOptionsAddStrideW(b, sw)
        tflite.TransposeConvOptionsAddFusedActivationFunction(b, act)
        return BO.TransposeConvOptions, tflite.TransposeConvOptionsEnd(b)
    if op.opcode in ("ARG_MAX", "ARG_MIN"):
        name = "ArgMaxOptions" if op.opcode == "ARG_MAX" else "ArgMinOptions"
        getattr(tflite, f"{name}Start")(b)
        getattr(tflite, f"{name}AddOutputType")(b, _TYPES[o.get("output_type", "int64")])
        return getattr(BO, name), getattr(tflite, f"{name}End")(b)
    if op.opcode == "REDUCE_MIN":
        tflite.ReducerOptionsStart(b)
        tflite.ReducerOptionsAddKeepDims(b, bool(o.get("keep_dims", False)))
        return BO.ReducerOptions, tflite.ReducerOptionsEnd(b)
    if op.opcode == "DIV":
        tflite.DivOptionsStart(b)
        tflite.DivOptionsAddFusedActivationFunction(b, act)
        return BO.DivOptions, tflite.DivOptionsEnd(b)
    if op.opcode == "LEAKY_RELU":
        tflite.LeakyReluOptionsStart(b)
        tflite.LeakyReluOptionsAddAlpha(b, float(o.get("alpha", 0.2)))
        return BO.LeakyReluOptions, tflite.LeakyReluOptionsEnd(b)
    if op.opcode == "SOFTMAX":
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, float(o.get("beta", 1.0)))
        return BO.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)
    if op.opcode == "LOCAL_RESPONSE_NORMALIZATION":
        tflite.LocalResponseNormalizationOptionsStart(b)
        tflite.LocalResponseNormalizationOptionsAddRadius(b, int(o["radius"]))
        tflite.LocalResponseNormalizationOptionsAddBias(b, float(o["bias"]))
        tflite.LocalResponseNormalizationOptionsAddAlpha(b, float(o["alpha"]))
        tflite.LocalResponseNormalizationOptionsAddBeta(b, float(o["beta"]))
        return BO.LocalResponseNormalizationOptions, tflite.LocalResponseNormalizationOptionsEnd(b)
    if op.opcode == "RESHAPE":
        shape = _vector_i32(b, list(o["new_shape"]))
        tflite.ReshapeOptionsStart(b)
        tflite.ReshapeOptionsAddNewShape(b, shape)
        return BO.ReshapeOptions, tflite.ReshapeOptionsEnd(b)
    return 0, 0


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
        opt_type, opt = _options(b, op)
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
