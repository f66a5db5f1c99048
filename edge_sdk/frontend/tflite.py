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
from edge_sdk.frontend.tflite_options import TENSOR_TYPES as _TENSOR_TYPES
from edge_sdk.frontend.tflite_options import decode as _options
from edge_sdk.ir import Graph, Operator, QuantParams, Tensor


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


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
