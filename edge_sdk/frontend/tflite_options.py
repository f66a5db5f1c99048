"""The builtin options of TFLite operators, declared once for the reader and the writer.

Each operator we know has one row: its options table in the schema and its fields, each with the
name ``Operator.options`` gives it, its kind (how the schema stores it) and the value the writer
uses when a dict lacks it. :func:`decode` (the reader) and :func:`encode` (the writer) walk the
same row, so what one reads the other writes back: a model read and written again keeps its
options (two hand-written chains, 125 and 163 lines, did not: the writer dropped
``pot_scale_int16``, ``weights_format``, string and LSTM options the reader kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# TensorType enum of the TFLite schema -> numpy dtype name.
TENSOR_TYPES: dict[int, str] = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
    13: "resource",  # a resource variable's handle: resolved by frontend.variables
}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS = {0: "SAME", 1: "VALID"}

REQUIRED = object()  # the writer needs this key: no default
OMIT = object()      # the writer leaves the field out when the dict lacks the key


@dataclass(frozen=True)
class Field:
    """One option. ``names``: the schema's field(s), two for a pair such as (StrideH, StrideW).
    ``kind``: int, bool, float, padding, activation, type (a TensorType), string, ints (a
    vector of int32)."""

    key: str
    names: tuple[str, ...]
    kind: str = "int"
    default: Any = 0


PADDING = Field("padding", ("Padding",), "padding", "VALID")
STRIDE = Field("stride", ("StrideH", "StrideW"), "int", (1, 1))
DILATION = Field("dilation", ("DilationHFactor", "DilationWFactor"), "int", (1, 1))
ACTIVATION = Field("activation", ("FusedActivationFunction",), "activation", "NONE")
KEEP_DIMS = Field("keep_dims", ("KeepDims",), "bool", False)
# int16 ADD/SUB only: power-of-two scales (an older, separate kernel); the schema's default is true
POT_SCALE = Field("pot_scale_int16", ("PotScaleInt16",), "bool", True)
RESIZE = (Field("align_corners", ("AlignCorners",), "bool", False),
          Field("half_pixel_centers", ("HalfPixelCenters",), "bool", False))

# opcode -> (options table, fields)
OPTIONS: dict[str, tuple[str, tuple[Field, ...]]] = {
    "CONV_2D": ("Conv2DOptions", (PADDING, STRIDE, DILATION, ACTIVATION)),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", (
        PADDING, STRIDE, DILATION, Field("depth_multiplier", ("DepthMultiplier",), default=1),
        ACTIVATION)),
    "AVERAGE_POOL_2D": ("Pool2DOptions", (
        PADDING, STRIDE, Field("filter", ("FilterHeight", "FilterWidth"), default=REQUIRED),
        ACTIVATION)),
    "FULLY_CONNECTED": ("FullyConnectedOptions", (
        ACTIVATION, Field("keep_num_dims", ("KeepNumDims",), "bool", False),
        Field("weights_format", ("WeightsFormat",), "int", 0))),
    "ADD": ("AddOptions", (ACTIVATION, POT_SCALE)),
    "SUB": ("SubOptions", (ACTIVATION, POT_SCALE)),
    "MUL": ("MulOptions", (ACTIVATION,)),
    "DIV": ("DivOptions", (ACTIVATION,)),
    "SOFTMAX": ("SoftmaxOptions", (Field("beta", ("Beta",), "float", 1.0),)),
    "ARG_MAX": ("ArgMaxOptions", (Field("output_type", ("OutputType",), "type", "int64"),)),
    "ARG_MIN": ("ArgMinOptions", (Field("output_type", ("OutputType",), "type", "int64"),)),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("UnidirectionalSequenceLSTMOptions", (
        ACTIVATION, Field("cell_clip", ("CellClip",), "float", 0.0),
        Field("proj_clip", ("ProjClip",), "float", 0.0),
        Field("time_major", ("TimeMajor",), "bool", False))),
    "SPLIT": ("SplitOptions", (Field("num_splits", ("NumSplits",), default=REQUIRED),)),
    "SPLIT_V": ("SplitVOptions", (Field("num_splits", ("NumSplits",), default=REQUIRED),)),
    "PACK": ("PackOptions", (Field("axis", ("Axis",)),
                             Field("values_count", ("ValuesCount",), default=REQUIRED))),
    "UNPACK": ("UnpackOptions", (Field("axis", ("Axis",)),
                                 Field("num", ("Num",), default=REQUIRED))),
    "DEPTH_TO_SPACE": ("DepthToSpaceOptions", (Field("block_size", ("BlockSize",),
                                                     default=REQUIRED),)),
    "SPACE_TO_DEPTH": ("SpaceToDepthOptions", (Field("block_size", ("BlockSize",),
                                                     default=REQUIRED),)),
    "GATHER": ("GatherOptions", (Field("axis", ("Axis",)), Field("batch_dims", ("BatchDims",)))),
    "SUM": ("ReducerOptions", (KEEP_DIMS,)),
    "MEAN": ("ReducerOptions", (KEEP_DIMS,)),
    "REDUCE_MAX": ("ReducerOptions", (KEEP_DIMS,)),
    "REDUCE_MIN": ("ReducerOptions", (KEEP_DIMS,)),
    "REDUCE_PROD": ("ReducerOptions", (KEEP_DIMS,)),
    "RESIZE_BILINEAR": ("ResizeBilinearOptions", RESIZE),
    "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptions", RESIZE),
    "TRANSPOSE_CONV": ("TransposeConvOptions", (PADDING, STRIDE, ACTIVATION)),
    "LEAKY_RELU": ("LeakyReluOptions", (Field("alpha", ("Alpha",), "float", 0.2),)),
    "LOCAL_RESPONSE_NORMALIZATION": ("LocalResponseNormalizationOptions", (
        Field("radius", ("Radius",), default=REQUIRED),
        Field("bias", ("Bias",), "float", REQUIRED),
        Field("alpha", ("Alpha",), "float", REQUIRED),
        Field("beta", ("Beta",), "float", REQUIRED))),
    "L2_NORMALIZATION": ("L2NormOptions", (ACTIVATION,)),
    "SVDF": ("SVDFOptions", (Field("rank", ("Rank",), default=1), ACTIVATION,
                             Field("asymmetric_quantize_inputs", ("AsymmetricQuantizeInputs",),
                                   "bool", False))),
    "VAR_HANDLE": ("VarHandleOptions", (Field("container", ("Container",), "string", ""),
                                        Field("shared_name", ("SharedName",), "string", ""))),
    "CALL_ONCE": ("CallOnceOptions", (Field("init_subgraph_index", ("InitSubgraphIndex",)),)),
    "GELU": ("GeluOptions", (Field("approximate", ("Approximate",), "bool", False),)),
    "BATCH_MATMUL": ("BatchMatMulOptions", (
        Field("adj_x", ("AdjX",), "bool", False), Field("adj_y", ("AdjY",), "bool", False),
        Field("asymmetric_quantize_inputs", ("AsymmetricQuantizeInputs",), "bool", False))),
    "CONCATENATION": ("ConcatenationOptions", (Field("axis", ("Axis",), default=REQUIRED),
                                               ACTIVATION)),
    "STRIDED_SLICE": ("StridedSliceOptions", (
        Field("begin_mask", ("BeginMask",)), Field("end_mask", ("EndMask",)),
        Field("ellipsis_mask", ("EllipsisMask",)), Field("new_axis_mask", ("NewAxisMask",)),
        Field("shrink_axis_mask", ("ShrinkAxisMask",)),
        Field("offset", ("Offset",), "bool", False))),
    "SHAPE": ("ShapeOptions", (Field("out_type", ("OutType",), "type", "int32"),)),
    "RESHAPE": ("ReshapeOptions", (Field("new_shape", ("NewShape",), "ints", OMIT),)),
}
OPTIONS["MAX_POOL_2D"] = OPTIONS["AVERAGE_POOL_2D"]


# -- reading ---------------------------------------------------------------------------------

def _decode_one(kind: str, value: Any) -> Any:
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    if kind == "padding":
        return PADDINGS.get(value, f"UNKNOWN({value})")
    if kind == "activation":  # kept as UNKNOWN(n) for frontend.checks to refuse, by index
        return ACTIVATIONS.get(value, f"UNKNOWN({value})")
    if kind == "type":
        return TENSOR_TYPES.get(value, f"UNKNOWN({value})")
    if kind == "string":
        return (value or b"").decode("utf-8", "replace")
    return int(value)


def decode(op: Any, opcode: str) -> dict[str, Any]:
    """The options of a flatbuffer ``Operator`` as a plain dict ({} for the ones we do not
    know, or where the model stores none)."""
    import tflite

    row = OPTIONS.get(opcode)
    table = op.BuiltinOptions()
    if row is None or table is None:
        return {}
    obj = getattr(tflite, row[0])()
    obj.Init(table.Bytes, table.Pos)
    options: dict[str, Any] = {}
    for f in row[1]:
        if f.kind == "ints":
            name = f.names[0]
            count = getattr(obj, f"{name}Length")()
            options[f.key] = (tuple(int(v) for v in getattr(obj, f"{name}AsNumpy")())
                              if count else ())
            continue
        values = tuple(_decode_one(f.kind, getattr(obj, name)()) for name in f.names)
        options[f.key] = values if len(values) > 1 else values[0]
    return options


# -- writing ---------------------------------------------------------------------------------

_CODES = {"padding": {v: k for k, v in PADDINGS.items()},
          "activation": {v: k for k, v in ACTIVATIONS.items()},
          "type": {v: k for k, v in TENSOR_TYPES.items()}}


def _encode_one(kind: str, value: Any) -> Any:
    if kind in _CODES:
        return _CODES[kind][value]
    if kind == "bool":
        return bool(value)
    if kind == "float":
        return float(value)
    return int(value)


def encode(b: Any, opcode: str, options: dict[str, Any]) -> tuple[int, int]:
    """Build ``opcode``'s options table from ``options`` in builder ``b``: (the BuiltinOptions
    union type, the table's offset), or (0, 0) for an operator without options. A key the
    dict lacks takes its field's default; a required one raises KeyError, as before."""
    import tflite
    from tflite.BuiltinOptions import BuiltinOptions

    row = OPTIONS.get(opcode)
    if row is None:
        return 0, 0
    table, fields = row
    # Strings and vectors are built before the table starts (flatbuffers' rule).
    made: dict[str, int] = {}
    for f in fields:
        value = options.get(f.key, f.default)
        if value is REQUIRED:
            raise KeyError(f.key)
        if value is OMIT:
            continue
        if f.kind == "string":
            made[f.key] = b.CreateString(str(value))
        elif f.kind == "ints":
            ints = [int(v) for v in value]
            b.StartVector(4, len(ints), 4)
            for v in reversed(ints):
                b.PrependInt32(v)
            made[f.key] = b.EndVector()
    getattr(tflite, f"{table}Start")(b)
    for f in fields:
        value = options.get(f.key, f.default)
        if value is OMIT:
            continue
        if f.key in made:
            getattr(tflite, f"{table}Add{f.names[0]}")(b, made[f.key])
            continue
        values = value if len(f.names) > 1 else (value,)
        for name, v in zip(f.names, values, strict=True):
            getattr(tflite, f"{table}Add{name}")(b, _encode_one(f.kind, v))
    return getattr(BuiltinOptions, table), getattr(tflite, f"{table}End")(b)
