"""Read a ``.tflite`` flatbuffer into small typed objects.

We read the flatbuffer ourselves (with the ``tflite`` package's generated accessors, the same ones
TVM's ``relax.frontend.tflite`` uses) rather than going through Relax's dequantize/float/quantize
import, because bit-exact INT8 needs the exact TFLite operator, its options and its float32
quantization parameters — the things a QDQ graph blurs. Everything downstream (compiler, report,
``inspect``) works on :class:`Graph`, never on the flatbuffer.

A corrupt or truncated file raises :class:`~edge_sdk.errors.ModelError` with one line that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import ModelError, UnsupportedOpError
from edge_sdk.frontend.sparsity import densify, read_sparsity
from edge_sdk.ir import Graph, Operator, QuantParams, Tensor

# TensorType enum of the TFLite schema -> numpy dtype name.
_TENSOR_TYPES: dict[int, str] = {
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

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDINGS = {0: "SAME", 1: "VALID"}


def _activation(code: int) -> str:
    """The fused activation's name; a value outside the schema is kept as ``UNKNOWN(n)`` for
    :mod:`edge_sdk.frontend.checks` to refuse with the operator's index."""
    return _ACTIVATIONS.get(code, f"UNKNOWN({code})")


def _padding(code: int) -> str:
    return _PADDINGS.get(code, f"UNKNOWN({code})")


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options(op: Any, opcode: str) -> dict[str, Any]:
    """Decode the builtin options of the operators we know; others keep an empty dict."""
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}

    def load(cls: type) -> Any:
        obj = cls()
        obj.Init(table.Bytes, table.Pos)
        return obj

    if opcode == "CONV_2D":
        o = load(tflite.Conv2DOptions)
        return {
            "padding": _padding(o.Padding()),
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "activation": _activation(o.FusedActivationFunction()),
        }
    if opcode == "DEPTHWISE_CONV_2D":
        o = load(tflite.DepthwiseConv2DOptions)
        return {
            "padding": _padding(o.Padding()),
            "stride": (o.StrideH(), o.StrideW()),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "depth_multiplier": o.DepthMultiplier(),
            "activation": _activation(o.FusedActivationFunction()),
        }
    if opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = load(tflite.Pool2DOptions)
        return {
            "padding": _padding(o.Padding()),
            "stride": (o.StrideH(), o.StrideW()),
            "filter": (o.FilterHeight(), o.FilterWidth()),
            "activation": _activation(o.FusedActivationFunction()),
        }
    if opcode == "FULLY_CONNECTED":
        o = load(tflite.FullyConnectedOptions)
        return {
            "activation": _activation(o.FusedActivationFunction()),
            "keep_num_dims": bool(o.KeepNumDims()),
            "weights_format": o.WeightsFormat(),
        }
    if opcode in ("ADD", "MUL", "SUB"):
        cls = {"ADD": tflite.AddOptions, "MUL": tflite.MulOptions, "SUB": tflite.SubOptions}
        o = load(cls[opcode])
        options: dict[str, Any] = {"activation": _activation(o.FusedActivationFunction())}
        if opcode != "MUL":  # int16 only: power-of-two scales (an older, separate kernel)
            options["pot_scale_int16"] = bool(o.PotScaleInt16())
        return options
    if opcode == "SOFTMAX":
        return {"beta": load(tflite.SoftmaxOptions).Beta()}
    if opcode in ("ARG_MAX", "ARG_MIN"):
        cls = tflite.ArgMaxOptions if opcode == "ARG_MAX" else tflite.ArgMinOptions
        return {"output_type": load(cls).OutputType()}
    if opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        o = load(tflite.UnidirectionalSequenceLSTMOptions)
        return {"activation": _activation(o.FusedActivationFunction()),
                "cell_clip": float(o.CellClip()), "proj_clip": float(o.ProjClip()),
                "time_major": bool(o.TimeMajor())}
    if opcode == "DIV":
        return {"activation": _activation(load(tflite.DivOptions).FusedActivationFunction())}
    if opcode in ("SPLIT", "SPLIT_V"):
        cls = tflite.SplitOptions if opcode == "SPLIT" else tflite.SplitVOptions
        return {"num_splits": load(cls).NumSplits()}
    if opcode == "PACK":
        o = load(tflite.PackOptions)
        return {"axis": o.Axis(), "values_count": o.ValuesCount()}
    if opcode == "UNPACK":
        o = load(tflite.UnpackOptions)
        return {"axis": o.Axis(), "num": o.Num()}
    if opcode in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"):
        cls = tflite.DepthToSpaceOptions if opcode == "DEPTH_TO_SPACE" else (
            tflite.SpaceToDepthOptions)
        return {"block_size": load(cls).BlockSize()}
    if opcode == "GATHER":
        o = load(tflite.GatherOptions)
        return {"axis": o.Axis(), "batch_dims": o.BatchDims()}
    if opcode in ("SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        return {"keep_dims": bool(load(tflite.ReducerOptions).KeepDims())}
    if opcode in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
        cls = (tflite.ResizeBilinearOptions if opcode == "RESIZE_BILINEAR"
               else tflite.ResizeNearestNeighborOptions)
        o = load(cls)
        return {"align_corners": bool(o.AlignCorners()),
                "half_pixel_centers": bool(o.HalfPixelCenters())}
    if opcode == "TRANSPOSE_CONV":
        o = load(tflite.TransposeConvOptions)
        return {
            "padding": _padding(o.Padding()),
            "stride": (o.StrideH(), o.StrideW()),
            "activation": _activation(o.FusedActivationFunction()),
        }
    if opcode == "LEAKY_RELU":
        return {"alpha": load(tflite.LeakyReluOptions).Alpha()}
    if opcode == "LOCAL_RESPONSE_NORMALIZATION":
        o = load(tflite.LocalResponseNormalizationOptions)
        return {"radius": o.Radius(), "bias": o.Bias(), "alpha": o.Alpha(), "beta": o.Beta()}
    if opcode == "L2_NORMALIZATION":
        return {"activation": _activation(load(tflite.L2NormOptions).FusedActivationFunction())}
    if opcode == "SVDF":
        o = load(tflite.SVDFOptions)
        return {"rank": o.Rank(), "activation": _activation(o.FusedActivationFunction()),
                "asymmetric_quantize_inputs": bool(o.AsymmetricQuantizeInputs())}
    if opcode == "VAR_HANDLE":
        o = load(tflite.VarHandleOptions)
        return {"container": (o.Container() or b"").decode("utf-8", "replace"),
                "shared_name": (o.SharedName() or b"").decode("utf-8", "replace")}
    if opcode == "CALL_ONCE":
        return {"init_subgraph_index": load(tflite.CallOnceOptions).InitSubgraphIndex()}
    if opcode == "GELU":
        return {"approximate": bool(load(tflite.GeluOptions).Approximate())}
    if opcode == "BATCH_MATMUL":
        o = load(tflite.BatchMatMulOptions)
        return {"adj_x": bool(o.AdjX()), "adj_y": bool(o.AdjY()),
                "asymmetric_quantize_inputs": bool(o.AsymmetricQuantizeInputs())}
    if opcode == "CONCATENATION":
        o = load(tflite.ConcatenationOptions)
        return {"axis": o.Axis(), "activation": _activation(o.FusedActivationFunction())}
    if opcode == "MEAN":
        return {"keep_dims": bool(load(tflite.ReducerOptions).KeepDims())}
    if opcode == "STRIDED_SLICE":
        o = load(tflite.StridedSliceOptions)
        return {
            "begin_mask": o.BeginMask(), "end_mask": o.EndMask(),
            "ellipsis_mask": o.EllipsisMask(), "new_axis_mask": o.NewAxisMask(),
            "shrink_axis_mask": o.ShrinkAxisMask(), "offset": bool(o.Offset()),
        }
    return {}


def _quant(t: Any) -> QuantParams | None:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = tuple(float(s) for s in q.ScaleAsNumpy().astype(np.float32))
    zp = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * len(scale)
    return QuantParams(scale=scale, zero_point=zp, axis=int(q.QuantizedDimension()))


def _buffer_data(model: Any, buf_index: int, raw: bytes, dtype: str, shape: tuple[int, ...]):
    if buf_index >= model.BuffersLength():
        raise ModelError(f"a tensor names buffer {buf_index}, of {model.BuffersLength()}")
    buf = model.Buffers(buf_index)
    if buf is None:
        return None
    if buf.DataLength():
        data = buf.DataAsNumpy().tobytes()
    elif buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        start, size = int(buf.Offset()), int(buf.Size())
        if start + size > len(raw):
            raise ModelError("buffer points past the end of the file")
        data = raw[start : start + size]
    else:
        return None
    if len(data) % np.dtype(dtype).itemsize:
        raise ModelError(f"a {dtype} constant's buffer holds {len(data)} bytes, not a whole "
                         "number of elements")
    arr = np.frombuffer(data, dtype=np.dtype(dtype))
    if shape == (-1,):  # a sparse tensor's stored values: any count
        return arr.copy()
    expected = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if arr.size != expected:
        raise ModelError(f"constant buffer holds {arr.size} values, shape {shape} needs {expected}")
    return arr.reshape(shape).copy()


def _name(raw: bytes | None, index: int) -> str:
    """A tensor's name as text fit for one line of a message or a C comment: control
    characters (a corrupt file's, or a hostile one's) become '?'."""
    if not raw:
        return f"tensor_{index}"
    text = raw.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)


def _signature(t: Any, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The tensor's shape signature when it differs from its shape (a -1 left open)."""
    if not t.ShapeSignatureLength():
        return None
    signature = tuple(int(d) for d in t.ShapeSignatureAsNumpy())
    return signature if signature != shape and len(signature) == len(shape) else None


def _read_subgraph(model: Any, raw: bytes, index: int, names: dict[int, str]
                   ) -> tuple[list[Tensor], list[Operator], tuple[int, ...], tuple[int, ...]]:
    """The tensors, operators, inputs and outputs of subgraph ``index`` (0 is the model; a
    CALL_ONCE's initialiser is another)."""
    graph = model.Subgraphs(index)
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        ttype = t.Type()
        if ttype not in _TENSOR_TYPES:
            raise ModelError(f"tensor {i} has unsupported element type {ttype}")
        dtype = _TENSOR_TYPES[ttype]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        sparsity = read_sparsity(t)
        if sparsity is not None:  # stored non-zeros: expand to the dense constant now
            values = _buffer_data(model, t.Buffer(), raw, dtype, (-1,))
            if values is None:
                raise ModelError(f"sparse tensor {i} has no values")
            tensors.append(Tensor(index=i, name=_name(t.Name(), i), shape=shape, dtype=dtype,
                                  quant=_quant(t), data=densify(values, shape, sparsity)))
            continue
        tensors.append(
            Tensor(
                index=i,
                name=_name(t.Name(), i),
                shape=shape,
                dtype=dtype,
                quant=_quant(t),
                data=_buffer_data(model, t.Buffer(), raw, dtype, shape),
                is_variable=bool(t.IsVariable()),
                signature=_signature(t, shape),
            )
        )
    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if op.OpcodeIndex() >= model.OperatorCodesLength():
            raise ModelError(f"operator {i} names operator code {op.OpcodeIndex()}, of "
                             f"{model.OperatorCodesLength()}")
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        opcode = names.get(code, f"BUILTIN_{code}")
        if opcode == "CUSTOM":
            opcode = f"CUSTOM:{oc.CustomCode().decode('utf-8', 'replace')}"
        ins = tuple(int(x) for x in op.InputsAsNumpy()) if op.InputsLength() else ()
        outs = tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else ()
        mids = (tuple(int(x) for x in op.IntermediatesAsNumpy())
                if op.IntermediatesLength() else ())
        for t in (*ins, *outs, *mids):
            if t >= len(tensors):
                raise ModelError(f"operator {i} refers to tensor {t}, which does not exist")
        operators.append(Operator(i, opcode, ins, outs, _options(op, opcode), mids))
    inputs = tuple(int(x) for x in graph.InputsAsNumpy()) if graph.InputsLength() else ()
    outputs = tuple(int(x) for x in graph.OutputsAsNumpy()) if graph.OutputsLength() else ()
    return tensors, operators, inputs, outputs


def parse(raw: bytes, name: str = "model", source: Path | None = None) -> Graph:
    """Parse flatbuffer bytes into a :class:`Graph` (the first subgraph). ``name`` becomes the
    C prefix of everything generated, so it is made a valid identifier here."""
    import tflite

    from edge_sdk.frontend.checks import check_model
    from edge_sdk.frontend.variables import resolve_variables
    from edge_sdk.frontend.verify import verify_flatbuffer

    where = str(source) if source else name
    name = c_identifier(name)
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ModelError(
            f"{where} is not a TFLite model (no 'TFL3' identifier): "
            "pass a .tflite file written by the TFLite converter or `edge-sdk quantize`"
        )
    try:
        verify_flatbuffer(raw)
        model = tflite.Model.GetRootAsModel(raw, 0)
        if model.SubgraphsLength() < 1:
            raise ModelError("the model has no subgraph")
        names = _builtin_names()
        tensors, operators, inputs, outputs = _read_subgraph(model, raw, 0, names)
        tensors, operators = resolve_variables(
            tensors, operators, lambda k: _read_subgraph(model, raw, k, names)[:2],
            model.SubgraphsLength())
        result = Graph(name, tensors, operators, inputs, outputs, source)
        check_model(result)
    except UnsupportedOpError as err:
        raise UnsupportedOpError(f"{where}: {err}") from None
    except ModelError as err:
        raise ModelError(f"{where} is not a valid TFLite model: {err}") from None
    except Exception as err:  # flatbuffers raises IndexError/struct.error on garbage
        raise ModelError(
            f"{where} is corrupt or truncated ({type(err).__name__}): re-export the model"
        ) from None
    return result


def load(path: str | Path) -> Graph:
    """Load a ``.tflite`` file. The graph's name is the file stem, sanitised for C."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a directory: give the model file (.tflite)")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: check the path")
    return parse(path.read_bytes(), name=c_identifier(path.stem), source=path)


def c_identifier(text: str) -> str:
    """Turn a file stem into a C identifier usable as a symbol prefix."""
    # ASCII only: a C identifier of other letters is legal C99 but not every toolchain's.
    out = "".join(c if c.isascii() and c.isalnum() else "_"
                  for c in text.lower()).strip("_") or "model"
    return out if not out[0].isdigit() else f"m_{out}"
