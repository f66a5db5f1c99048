"""ONNX (float, NCHW) -> an equivalent float ``.tflite`` (NHWC), so one pipeline serves both.

The quantizer and the compiler work on TFLite graphs; an ONNX model is translated operator by
operator into TFLite's layout:

- 4-D activations are kept NHWC; convolution weights are transposed to OHWI (or 1HWC for
  depthwise convolutions, ``group == channels``); per-channel constants move to the last axis.
- ``BatchNormalization`` after a ``Conv`` is folded into its weights and bias; explicit pads
  become a PAD operator before a VALID convolution/pooling.
- Flattening a 4-D tensor inserts a TRANSPOSE back to NCHW first, so the element order (and the
  following ``Gemm``'s weights) match ONNX exactly; a 4-D model output is transposed back too.
- The model's input becomes NHWC; :func:`to_model_layout` converts NCHW samples.

Operators: Conv, BatchNormalization, Relu, Clip (0..6), MaxPool, AveragePool,
GlobalAveragePool, Flatten, Reshape, Gemm, MatMul(+Add), Add, Mul, Softmax, Sigmoid, Tanh,
Concat. Anything else is refused by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_sdk.errors import ModelError
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

NCHW_TO_NHWC_AXIS = [0, 3, 1, 2]


class _Converter:
    def __init__(self, model) -> None:
        import onnx
        from onnx import numpy_helper

        self.onnx = onnx
        self.graph = model.graph
        self.consts = {i.name: numpy_helper.to_array(i).astype(np.float32)
                       if i.data_type == onnx.TensorProto.FLOAT else numpy_helper.to_array(i)
                       for i in self.graph.initializer}
        self.tensors: list[TensorSpec] = []
        self.ops: list[OpSpec] = []
        self.index: dict[str, int] = {}   # ONNX value -> TFLite tensor
        self.nchw: set[str] = set()       # ONNX values that are 4-D activations stored NHWC
        self.shapes: dict[str, tuple[int, ...]] = {}  # ONNX shapes of activations
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1

    # -- helpers ---------------------------------------------------------------------------
    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def tensor(self, name: str, shape: tuple[int, ...], data: np.ndarray | None = None,
               dtype: str = "float32") -> int:
        self.tensors.append(TensorSpec(name, tuple(int(d) for d in shape), dtype, data=data))
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray) -> int:
        return self.tensor(name, data.shape, np.ascontiguousarray(data), str(data.dtype))

    def activation(self, name: str, onnx_shape: tuple[int, ...]) -> int:
        self.shapes[name] = tuple(onnx_shape)
        if len(onnx_shape) == 4:
            self.nchw.add(name)
            n, c, h, w = onnx_shape
            shape = (n, h, w, c)
        else:
            shape = onnx_shape
        self.index[name] = self.tensor(name, shape)
        return self.index[name]

    def emit(self, opcode: str, ins: list[int], out_name: str, out_shape: tuple[int, ...],
             options: dict | None = None) -> None:
        out = self.activation(out_name, out_shape)
        self.ops.append(OpSpec(opcode, ins, [out], options or {}))

    def refuse(self, node, why: str) -> ModelError:
        return ModelError(f"ONNX node '{node.name or node.output[0]}' ({node.op_type}): {why}")

    # -- operators ---------------------------------------------------------------------------
    def pad_if_needed(self, node, x: str, pads: list[int], kernel, strides, dilations):
        """TFLite knows SAME/VALID only: other padding becomes an explicit PAD."""
        n, c, h, w = self.shapes[x]
        if not any(pads):
            return self.index[x], (h, w), "VALID"
        same = []
        for size, k, s, d in zip((h, w), kernel, strides, dilations, strict=True):
            out = (size + s - 1) // s
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            same += [total // 2, total - total // 2]
        if [pads[0], pads[2], pads[1], pads[3]] == same:
            return self.index[x], (h, w), "SAME"
        paddings = np.array([[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]], np.int32)
        name = f"{x}/padded"
        shape = (n, c, h + pads[0] + pads[2], w + pads[1] + pads[3])
        self.emit("PAD", [self.index[x], self.const(f"{name}/paddings", paddings)], name, shape)
        return self.index[name], shape[2:], "VALID"

    def conv(self, node, bn=None) -> None:
        a = self.attrs(node)
        x = node.input[0]
        w = self.consts[node.input[1]]
        m, cg, kh, kw = w.shape
        n, c, _h, _wd = self.shapes[x]
        b = self.consts[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(
            m, np.float32)
        if bn is not None:
            gamma, beta, mean, var, eps, _ = bn
            k = gamma / np.sqrt(var + eps)
            w, b = w * k.reshape(-1, 1, 1, 1), (b - mean) * k + beta
        strides = a.get("strides", [1, 1])
        dilations = a.get("dilations", [1, 1])
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.refuse(node, "auto_pad: export with explicit pads")
        src, (ih, iw), padding = self.pad_if_needed(node, x, a.get("pads", [0, 0, 0, 0]),
                                                    (kh, kw), strides, dilations)
        oh = (ih - (kh - 1) * dilations[0] - 1) // strides[0] + 1 if padding == "VALID" else (
            ih + strides[0] - 1) // strides[0]
        ow = (iw - (kw - 1) * dilations[1] - 1) // strides[1] + 1 if padding == "VALID" else (
            iw + strides[1] - 1) // strides[1]
        group = a.get("group", 1)
        options = {"padding": padding, "stride": tuple(strides), "dilation": tuple(dilations)}
        if group == 1:
            weights = self.const(f"{node.input[1]}/ohwi", w.transpose(0, 2, 3, 1).copy())
            opcode = "CONV_2D"
        elif group == c and cg == 1:
            weights = self.const(f"{node.input[1]}/1hwc", w.transpose(1, 2, 3, 0).copy())
            opcode, options["depth_multiplier"] = "DEPTHWISE_CONV_2D", m // c
        else:
            raise self.refuse(node, f"grouped convolution with {group} groups")
        bias = self.const(f"{node.output[0]}/bias", b.astype(np.float32))
        out = node.output[0] if bn is None else bn[5]
        self.emit(opcode, [src, weights, bias], out, (n, m, oh, ow), options)

    def pool(self, node) -> None:
        a = self.attrs(node)
        x = node.input[0]
        n, c, _h, _w = self.shapes[x]
        kh, kw = a["kernel_shape"]
        strides = a.get("strides", [1, 1])
        pads = a.get("pads", [0, 0, 0, 0])
        if node.op_type == "AveragePool" and any(pads) and a.get("count_include_pad", 0):
            raise self.refuse(node, "count_include_pad=1 with padding (TFLite excludes pads)")
        if a.get("ceil_mode", 0):
            raise self.refuse(node, "ceil_mode=1")
        src, (ih, iw), padding = self.pad_if_needed(node, x, pads, (kh, kw), strides, (1, 1))
        if padding == "VALID":
            oh, ow = (ih - kh) // strides[0] + 1, (iw - kw) // strides[1] + 1
        else:
            oh, ow = (ih + strides[0] - 1) // strides[0], (iw + strides[1] - 1) // strides[1]
        opcode = "MAX_POOL_2D" if node.op_type == "MaxPool" else "AVERAGE_POOL_2D"
        self.emit(opcode, [src], node.output[0], (n, c, oh, ow),
                  {"filter": (kh, kw), "stride": tuple(strides), "padding": padding})

    def flatten(self, node, shape: tuple[int, ...]) -> None:
        x = node.input[0]
        src = self.index[x]
        if x in self.nchw and self.shapes[x][2:] != (1, 1):
            n, c, h, w = self.shapes[x]
            perm = self.const(f"{x}/to_nchw_perm", np.array([0, 3, 1, 2], np.int32))
            self.tensors.append(TensorSpec(f"{x}/nchw", (n, c, h, w), "float32"))
            nchw = len(self.tensors) - 1
            self.ops.append(OpSpec("TRANSPOSE", [src, perm], [nchw]))
            src = nchw
        shape_t = self.const(f"{node.output[0]}/shape", np.array(shape, np.int32))
        self.emit("RESHAPE", [src, shape_t], node.output[0], shape, {"new_shape": shape})

    def operand(self, node, name: str, like: str) -> int:
        """An ADD/MUL operand: an activation, or a constant moved to NHWC if needed."""
        if name in self.index:
            return self.index[name]
        data = self.consts[name].astype(np.float32)
        if like in self.nchw and data.ndim == 4:
            data = data.transpose(0, 2, 3, 1)
        elif like in self.nchw and data.ndim == 3:
            data = data.transpose(1, 2, 0)
        return self.const(f"{name}/nhwc", data.copy())

    def convert(self) -> bytes:
        graph = self.graph
        init = set(self.consts)
        inputs = [i for i in graph.input if i.name not in init]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelError("edge-sdk takes single-input, single-output ONNX models")
        dims = [d.dim_value or 1 for d in inputs[0].type.tensor_type.shape.dim]
        self.activation(inputs[0].name, tuple(dims))
        nodes = list(graph.node)
        skip: set[int] = set()
        for i, node in enumerate(nodes):
            if i in skip:
                continue
            op, ins = node.op_type, node.input
            if op == "Conv":
                nxt = nodes[i + 1] if i + 1 < len(nodes) else None
                if (nxt is not None and nxt.op_type == "BatchNormalization"
                        and nxt.input[0] == node.output[0]
                        and self.consumers.get(node.output[0]) == 1):
                    a = self.attrs(nxt)
                    g, bt, mu, var = (self.consts[n] for n in nxt.input[1:5])
                    self.conv(node, (g, bt, mu, var, a.get("epsilon", 1e-5), nxt.output[0]))
                    skip.add(i + 1)
                else:
                    self.conv(node)
            elif op == "BatchNormalization":
                a = self.attrs(node)
                g, bt, mu, var = (self.consts[n] for n in ins[1:5])
                k = g / np.sqrt(var + a.get("epsilon", 1e-5))
                shape = self.shapes[ins[0]]
                tmp = f"{node.output[0]}/scaled"
                self.emit("MUL", [self.index[ins[0]], self.const(f"{tmp}/k", k)], tmp, shape)
                self.emit("ADD", [self.index[tmp], self.const(f"{tmp}/b", bt - mu * k)],
                          node.output[0], shape)
            elif op in ("Relu", "Sigmoid", "Tanh"):
                opcode = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH"}[op]
                self.emit(opcode, [self.index[ins[0]]], node.output[0], self.shapes[ins[0]])
            elif op == "Clip":
                lo = self.consts.get(ins[1]) if len(ins) > 1 and ins[1] else self.attrs(node).get(
                    "min")
                hi = self.consts.get(ins[2]) if len(ins) > 2 and ins[2] else self.attrs(node).get(
                    "max")
                if lo is None or hi is None or (float(lo), float(hi)) != (0.0, 6.0):
                    raise self.refuse(node, "only Clip(0, 6) (ReLU6) is supported")
                self.emit("RELU6", [self.index[ins[0]]], node.output[0], self.shapes[ins[0]])
            elif op in ("MaxPool", "AveragePool"):
                self.pool(node)
            elif op == "GlobalAveragePool":
                n, c, _, _ = self.shapes[ins[0]]
                axes = self.const(f"{node.output[0]}/axes", np.array([1, 2], np.int32))
                self.emit("MEAN", [self.index[ins[0]], axes], node.output[0], (n, c, 1, 1),
                          {"keep_dims": True})
            elif op == "Flatten":
                shape = self.shapes[ins[0]]
                axis = self.attrs(node).get("axis", 1)
                self.flatten(node, (int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))))
            elif op == "Reshape":
                target = [int(d) for d in self.consts[ins[1]]]
                shape = self.shapes[ins[0]]
                total = int(np.prod(shape))
                target = [shape[k] if d == 0 else d for k, d in enumerate(target)]
                if -1 in target:
                    known = int(np.prod([d for d in target if d != -1]))
                    target[target.index(-1)] = total // known
                self.flatten(node, tuple(target))
            elif op in ("Gemm", "MatMul"):
                a = self.attrs(node)
                if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                    raise self.refuse(node, "alpha/beta != 1 or transA")
                w = self.consts[ins[1]]
                w = w if (op == "Gemm" and a.get("transB", 0)) else w.T
                b = self.consts[ins[2]] if len(ins) > 2 and ins[2] else None
                out = node.output[0]
                nxt = nodes[i + 1] if i + 1 < len(nodes) else None
                if (b is None and nxt is not None and nxt.op_type == "Add"
                        and out in nxt.input and self.consumers.get(out) == 1):
                    other = [n for n in nxt.input if n != out]
                    if other and other[0] in self.consts:
                        b, out = self.consts[other[0]].reshape(-1), nxt.output[0]
                        skip.add(i + 1)
                if b is None:
                    b = np.zeros(w.shape[0], np.float32)
                batch = self.shapes[ins[0]][0]
                self.emit("FULLY_CONNECTED",
                          [self.index[ins[0]], self.const(f"{ins[1]}/weights",
                                                          np.ascontiguousarray(w, np.float32)),
                           self.const(f"{out}/bias", b.astype(np.float32))],
                          out, (batch, w.shape[0]))
            elif op in ("Add", "Mul"):
                like = next(n for n in ins if n in self.index)
                self.emit(op.upper(), [self.operand(node, n, like) for n in ins], node.output[0],
                          self.shapes[like])
            elif op == "Softmax":
                shape = self.shapes[ins[0]]
                axis = self.attrs(node).get("axis", -1)
                if axis not in (-1, len(shape) - 1) or len(shape) != 2:
                    raise self.refuse(node, "softmax over other than the last axis of a 2-D input")
                self.emit("SOFTMAX", [self.index[ins[0]]], node.output[0], shape, {"beta": 1.0})
            elif op == "Concat":
                axis = self.attrs(node)["axis"]
                shapes = [self.shapes[n] for n in ins]
                rank = len(shapes[0])
                axis %= rank
                out_shape = list(shapes[0])
                out_shape[axis] = sum(s[axis] for s in shapes)
                tfl_axis = NCHW_TO_NHWC_AXIS[axis] if ins[0] in self.nchw else axis
                self.emit("CONCATENATION", [self.index[n] for n in ins], node.output[0],
                          tuple(out_shape), {"axis": tfl_axis})
            else:
                raise self.refuse(node, "operator not supported by the ONNX importer")
        out_name = graph.output[0].name
        out = self.index[out_name]
        if out_name in self.nchw and self.shapes[out_name][2:] != (1, 1):
            n, c, h, w = self.shapes[out_name]
            perm = self.const("output/perm", np.array([0, 3, 1, 2], np.int32))
            self.tensors.append(TensorSpec(f"{out_name}/nchw", (n, c, h, w), "float32"))
            self.ops.append(OpSpec("TRANSPOSE", [out, perm], [len(self.tensors) - 1]))
            out = len(self.tensors) - 1
        return build_model(self.tensors, self.ops, [self.index[inputs[0].name]], [out],
                           description="edge-sdk ONNX import")


def onnx_to_tflite(path: str | Path) -> bytes:
    """Translate a float ONNX model file into float ``.tflite`` bytes (see module docstring)."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises its own error family
        raise ModelError(f"{path} is not a valid ONNX model: {str(err).splitlines()[0]}") from None
    from onnx import shape_inference

    model = shape_inference.infer_shapes(model)
    return _Converter(model).convert()


def to_model_layout(x: np.ndarray, onnx_shape: tuple[int, ...]) -> np.ndarray:
    """NCHW samples of an ONNX model -> the NHWC input of the converted model."""
    x = np.asarray(x)
    if x.ndim == 4 and tuple(x.shape) == tuple(onnx_shape):
        return x.transpose(0, 2, 3, 1)
    return x
