"""ONNX (float) -> an equivalent float ``.tflite``, through TVM's ONNX importer, for ``quantize``.

The quantizer reads TFLite graphs and writes TFLite's int8 spec, which every runtime we target
(LiteRT, TFLite Micro, edge-sdk's own kernels) runs. An ONNX model reaches it in three steps:

1. TVM's Relax frontend imports the model (it knows the ONNX operators and their opset
   variants); ``DecomposeOpsForInference`` and ``FoldConstant`` leave a straight line of
   high-level Relax operators (conv2d, add, max_pool2d, matmul, reshape...) on constants.
2. This module maps each operator to its TFLite counterpart. Activations keep the model's
   NCHW meaning, but a 4-D value may be *stored* NHWC (TFLite's convolution and pooling layout):
   each value records which, and a TRANSPOSE is inserted only where an operator needs the other
   form (a reshape of a feature map, the model's input and output). Channel-wise constants that
   follow a convolution or a fully connected layer (bias, decomposed batch norm) are folded into
   its weights and bias, as a converter from a framework would do.
3. A few multi-operator forms the importer expands are recognised whole: local response
   normalization (LRN, written as square/avg_pool3d/power/divide) becomes TFLite's
   LOCAL_RESPONSE_NORMALIZATION, and ONNX ``Sum`` (stack + sum) a chain of ADD.

The model's input and outputs keep the shapes the framework had (NCHW for PyTorch exports);
``nhwc=True`` takes and gives 4-D tensors NHWC instead, without the boundary transposes.
An operator with no TFLite form is refused with one line naming it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import UnsupportedOpError, clipped
from edge_sdk.frontend.relax_onnx import _constant, _shape_dtype
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.ir import Graph


def last(rank: int) -> tuple[int, ...]:
    """Channels last: stored axis i holds model axis ``last(rank)[i]`` (NCHW -> NHWC,
    NCW -> NWC)."""
    return (0, *range(2, rank), 1)


def first(rank: int) -> tuple[int, ...]:
    """The inverse permutation: channels-last storage back to the model's order."""
    return (0, rank - 1, *range(1, rank - 1))


CHANNELS_LAST_RANKS = (3, 4)  # feature maps of 1-D and 2-D layers
_AFFINE = ("relax.add", "relax.subtract", "relax.multiply", "relax.divide")
# Relax operator -> (TFLite operator, output known >= 0), for the one-to-one unary ones.
_UNARY = {"relu": ("RELU", True), "sigmoid": ("LOGISTIC", True), "tanh": ("TANH", False),
          "abs": ("ABS", True), "exp": ("EXP", True), "sqrt": ("SQRT", True),
          "rsqrt": ("RSQRT", True), "log": ("LOG", False)}
# Two-operand elementwise operators (those with a constant operand are affine chains, above).
_BINARY = {"add": "ADD", "subtract": "SUB", "multiply": "MUL", "divide": "DIV",
           "maximum": "MAXIMUM", "minimum": "MINIMUM"}


@dataclass
class _Value:
    """A Relax tensor as stored in the TFLite graph."""

    tensor: int
    shape: tuple[int, ...]          # the model's shape (NCHW for a feature map)
    nhwc: bool = False              # a 3-D/4-D value stored channels last (NWC, NHWC)
    nonneg: bool = False            # known >= 0 (after ReLU...): max pooling may pad with 0
    views: dict[bool, int] = field(default_factory=dict)  # layout -> tensor (transposes made)

    def stored_axis(self, axis: int) -> int:
        axis %= len(self.shape)
        return last(len(self.shape)).index(axis) if self.nhwc else axis

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[a] for a in last(len(self.shape))) if self.nhwc else self.shape


@dataclass
class _Weighted:
    """A convolution or fully connected layer whose weights and bias are still open to folding
    (bias adds, batch norm's scale and shift) until the graph is written."""

    op: OpSpec
    weights: np.ndarray             # OIHW for a convolution, (out, in) for fully connected
    bias: np.ndarray                # (out,)
    kind: str                       # "conv", "depthwise", "transpose" or "fc"


def _num(x: Any) -> float:
    """A Relax scalar operand or attribute (PrimValue, FloatImm, IntImm...) as a number."""
    while hasattr(x, "value") and not isinstance(x, (int, float)):
        x = x.value
    return float(x)


def _ints(xs: Any) -> list[int]:
    return [int(_num(x)) for x in xs]


def _shape(sinfo: Any, what: str) -> tuple[int, ...]:
    shape, dtype = _shape_dtype(sinfo, what)
    if dtype != "float32":
        raise UnsupportedOpError(f"{what} is {dtype}: quantize takes float32 models "
                                 "(integer tensors such as indices have no int8 form here)")
    return shape


class _Translator:
    def __init__(self, mod: Any, name: str, nhwc_io: bool) -> None:
        from tvm import relax

        self.relax = relax
        self.mod = mod
        func = self.func = mod["main"]
        self.name = name
        self.nhwc_io = nhwc_io
        self.tensors: list[TensorSpec] = []
        self.ops: list[OpSpec] = []
        self.values: dict[Any, Any] = {}          # Relax var -> _Value | np.ndarray | tuple
        self.weighted: dict[int, _Weighted] = {}  # output tensor -> its open layer
        self.bindings = [b for block in func.body.blocks for b in block.bindings]
        self.defs = {b.var: b.value for b in self.bindings}
        self.uses: Counter = Counter()
        for b in self.bindings:
            relax.analysis.post_order_visit(b.value, self._count_use)
        relax.analysis.post_order_visit(func.body.body, self._count_use)
        self.covered: set[Any] = set()   # vars computed inside a recognised multi-op form
        self.special: dict[Any, Any] = {}  # var -> a handler for a recognised form

    def _count_use(self, e: Any) -> None:
        if isinstance(e, self.relax.Var):
            self.uses[e] += 1

    # -- tensors ------------------------------------------------------------------------------
    def tensor(self, name: str, shape: tuple[int, ...], data: np.ndarray | None = None,
               dtype: str = "float32") -> int:
        self.tensors.append(TensorSpec(name, tuple(int(d) for d in shape), dtype, data=data))
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray) -> int:
        data = np.ascontiguousarray(data)
        return self.tensor(name, data.shape, data, str(data.dtype))

    def i32(self, name: str, values: list[int]) -> int:
        return self.const(name, np.array(values, np.int32))

    def emit(self, opcode: str, ins: list[int], label: str, shape: tuple[int, ...],
             nhwc: bool = False, options: dict | None = None, nonneg: bool = False) -> _Value:
        value = _Value(0, tuple(shape), nhwc, nonneg)
        value.tensor = self.tensor(label, value.stored_shape)
        self.ops.append(OpSpec(opcode, ins, [value.tensor], options or {}))
        return value

    def view(self, v: _Value, nhwc: bool) -> int:
        """``v``'s tensor stored NHWC (``nhwc``) or in model order, transposing once."""
        rank = len(v.shape)
        if v.nhwc == nhwc or rank not in CHANNELS_LAST_RANKS:
            return v.tensor
        if nhwc in v.views:
            return v.views[nhwc]
        src = self.tensors[v.tensor]
        shape = tuple(v.shape[a] for a in last(rank)) if nhwc else v.shape
        out = self.tensor(f"{src.name}/{'nhwc' if nhwc else 'nchw'}", shape)
        if all(d == 1 for d in v.shape[2:]) or v.shape[1] == 1:  # same order: no data moves
            self.ops.append(OpSpec("RESHAPE", [v.tensor, self.i32(f"{src.name}/shape", shape)],
                                   [out], {"new_shape": shape}))
        else:
            perm = last(rank) if nhwc else first(rank)
            self.ops.append(OpSpec("TRANSPOSE", [v.tensor, self.i32(f"{src.name}/perm",
                                                                    list(perm))], [out]))
        v.views[nhwc] = out
        return out

    def refuse(self, var: Any, what: str, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"cannot quantize {self.name}: {what} ('{var.name}') "
                                  f"{why}")

    # -- operands -----------------------------------------------------------------------------
    def value(self, expr: Any) -> Any:
        """A Relax operand: a _Value, a numpy constant, or a tuple of those."""
        data = _constant(expr)
        if data is not None:
            return data
        if isinstance(expr, self.relax.Tuple):
            return tuple(self.value(f) for f in expr.fields)
        if expr in self.values:
            return self.values[expr]
        raise UnsupportedOpError(f"cannot quantize {self.name}: an operand "
                                 f"({type(expr).__name__}) that is not computed before its use")

    def activation(self, expr: Any, var: Any, what: str) -> _Value:
        v = self.value(expr)
        if not isinstance(v, _Value):
            raise self.refuse(var, what, "has a constant where an activation was expected")
        return v

    def const_like(self, data: np.ndarray, like: _Value, label: str) -> int:
        """A constant operand of an elementwise operator, in ``like``'s stored layout."""
        data = np.asarray(data, np.float32)
        rank = len(like.shape)
        if like.nhwc and data.ndim > 0 and data.size > 1:
            data = data.reshape((1,) * (rank - data.ndim) + data.shape).transpose(last(rank))
            while data.ndim > 1 and data.shape[0] == 1:
                data = data[0]
        return self.const(label, data)

    # -- recognised multi-operator forms ------------------------------------------------------
    def _single(self, expr: Any, op: str) -> Any | None:
        """The call that defines ``expr`` when it is ``op`` and used once, else None."""
        call = self.defs.get(expr)
        if (isinstance(call, self.relax.Call) and getattr(call.op, "name", None) == op
                and self.uses[expr] == 1):
            return call
        return None

    def find_forms(self) -> None:
        for b in self.bindings:
            call = b.value
            if not isinstance(call, self.relax.Call):
                continue
            op = getattr(call.op, "name", None)
            if op == "relax.divide":
                self._find_lrn(b.var, call)
            elif op == "relax.sum":
                self._find_sum(b.var, call)
            elif op == "relax.multiply":
                self._find_hard_swish(b.var, call)
        self._find_affine()

    def _find_hard_swish(self, var: Any, mul: Any) -> None:
        """HardSwish as the importer writes it: x * (clip(x + 3, 0, 6) / 6) (or * 1/6), one
        TFLite HARD_SWISH instead of four passes over the tensor (and, quantized, one table
        instead of four roundings)."""
        for x, rest in ((mul.args[0], mul.args[1]), (mul.args[1], mul.args[0])):
            scaled = self.defs.get(rest)
            if not (isinstance(scaled, self.relax.Call) and self.uses[rest] == 1):
                continue
            name = getattr(scaled.op, "name", None)
            k = _constant(scaled.args[1]) if name in ("relax.divide", "relax.multiply") else None
            if k is None or k.size != 1:
                continue
            k = float(k.reshape(()))
            if not np.isclose(k if name == "relax.divide" else 1.0 / k, 6.0, rtol=1e-6):
                continue
            clip = self._single(scaled.args[0], "relax.clip")
            if clip is None or (_num(clip.args[1]), _num(clip.args[2])) != (0.0, 6.0):
                continue
            add = self._single(clip.args[0], "relax.add")
            three = None if add is None else _constant(add.args[1])
            if (three is None or three.size != 1 or float(three.reshape(())) != 3.0
                    or not add.args[0].same_as(x)):
                continue
            self.covered.update((rest, scaled.args[0], clip.args[0]))
            self.special[var] = ("hard_swish", x)
            return

    def _find_affine(self) -> None:
        """Chains of add/subtract/multiply/divide by constants (a bias, batch norm decomposed
        into four operators) become one ``x * k + b``: folded into the convolution or FC layer
        before them where that is per channel, else one MUL and one ADD. Fewer int8 operators
        is fewer roundings as well as less time."""
        affine: dict[Any, tuple] = {}
        for b in self.bindings:
            call = b.value
            if (b.var in self.covered or b.var in self.special
                    or not isinstance(call, self.relax.Call)
                    or getattr(call.op, "name", None) not in _AFFINE):
                continue
            c0, c1 = _constant(call.args[0]), _constant(call.args[1])
            if (c0 is None) == (c1 is None) or (c0 is not None and call.op.name ==
                                                "relax.divide"):
                continue  # two activations, or c / x
            c = c0 if c0 is not None else c1
            if c.dtype.kind != "f":
                continue
            x_expr = call.args[1] if c0 is not None else call.args[0]
            affine[b.var] = (x_expr, call.op.name, c.astype(np.float64), c0 is not None)
        interior = {x for x, *_ in affine.values() if x in affine and self.uses[x] == 1}
        for var in affine:
            if var in interior:
                continue
            chain = [var]
            while affine[chain[-1]][0] in interior:
                chain.append(affine[chain[-1]][0])
            chain.reverse()
            k: Any = np.float64(1.0)
            shift: Any = np.float64(0.0)
            for v in chain:
                _, name, c, const_first = affine[v]
                if name == "relax.add":
                    shift = shift + c
                elif name == "relax.subtract":
                    k, shift = (-k, c - shift) if const_first else (k, shift - c)
                elif name == "relax.multiply":
                    k, shift = k * c, shift * c
                else:
                    k, shift = k / c, shift / c
            self.covered.update(chain[:-1])
            self.special[var] = ("affine", affine[chain[0]][0], k, shift)

    def _find_lrn(self, var: Any, div: Any) -> None:
        """x / (bias + alpha * avg_pool3d(expand_dims(x * x))) ** beta over the channels."""
        x = div.args[0]
        chain = []
        power = self._single(div.args[1], "relax.power")
        if power is None or _constant(power.args[1]) is None:
            return
        chain.append(div.args[1])
        add = self._single(power.args[0], "relax.add")
        if add is None or _constant(add.args[1]) is None:
            return
        chain.append(power.args[0])
        mul = self._single(add.args[0], "relax.multiply")
        if mul is None or _constant(mul.args[1]) is None:
            return
        chain.append(add.args[0])
        squeeze = self._single(mul.args[0], "relax.squeeze")
        pool = None if squeeze is None else self._single(squeeze.args[0], "relax.nn.avg_pool3d")
        expand = None if pool is None else self._single(pool.args[0], "relax.expand_dims")
        square = None if expand is None else self._single(expand.args[0], "relax.multiply")
        if square is None or not (square.args[0].same_as(x) and square.args[1].same_as(x)):
            return
        size = _ints(pool.attrs.pool_size)
        pads = _ints(pool.attrs.padding)
        if (size[1:] != [1, 1] or size[0] % 2 == 0 or pads[0] != pads[3]
                or pads[0] != size[0] // 2 or not pool.attrs.count_include_pad):
            return
        chain += [mul.args[0], squeeze.args[0], pool.args[0], expand.args[0]]
        scalars = [_constant(c) for c in (power.args[1], add.args[1], mul.args[1])]
        if any(s.size != 1 for s in scalars):
            return
        beta, bias, alpha = (float(s.reshape(())) for s in scalars)
        self.covered.update(chain)
        self.special[var] = ("lrn", x, size[0], alpha / size[0], bias, beta)

    def _find_sum(self, var: Any, call: Any) -> None:
        """ONNX Sum as the importer writes it: sum(stack(broadcast_to(a), ...), axis=0)."""
        stack = self._single(call.args[0], "relax.stack")
        if (stack is None or _ints(call.attrs.axis) != [0] or call.attrs.keepdims
                or int(stack.attrs.axis) != 0):
            return
        self.covered.add(call.args[0])
        self.special[var] = ("sum", list(stack.args[0].fields))

    # -- the walk -----------------------------------------------------------------------------
    def translate(self) -> bytes:
        self.find_forms()
        inputs = []
        for p in self.func.params:
            shape = _shape(p.ty, f"input '{p.name}'")
            nhwc = self.nhwc_io and len(shape) == 4
            v = _Value(0, shape, nhwc)
            v.tensor = self.tensor(p.name, v.stored_shape)
            self.values[p] = v
            inputs.append(v.tensor)
        for b in self.bindings:
            if b.var in self.covered:
                continue
            self.values[b.var] = self.binding(b.var, b.value)
        result = self.func.body.body
        results = self.value(result)
        results = results if isinstance(results, tuple) else (results,)
        outputs = []
        for r in results:
            if not isinstance(r, _Value) or r.tensor in inputs:
                raise UnsupportedOpError(f"cannot quantize {self.name}: an output that is not "
                                         "a computed tensor (an input or a constant)")
            outputs.append(self.view(r, self.nhwc_io and len(r.shape) == 4))
        self.finish_weighted()
        return build_model(self.tensors, self.ops, inputs, outputs,
                           description="edge-sdk ONNX import (TVM Relax)")

    def binding(self, var: Any, call: Any) -> Any:
        relax = self.relax
        if var in self.special:
            return self.form(var, self.special[var])
        if isinstance(call, relax.TupleGetItem):
            return self.value(call.tuple_value)[call.index]
        if not isinstance(call, relax.Call):
            return self.value(call)  # an alias, a tuple, a constant
        op = getattr(call.op, "name", str(call.op))
        short = op.removeprefix("relax.").removeprefix("nn.")
        if short == "call_tir":  # the importer wrote a TIR kernel itself (ONNX Pad...)
            gv = call.args[0]
            kernel_name = getattr(gv, "name_hint", None) or getattr(gv, "name", "kernel")
            if kernel_name.startswith("pad"):
                return self.tir_pad(var, call, self.mod[gv])
            short = f"{kernel_name} (a TIR kernel from TVM's importer)"
        if short in _UNARY:
            opcode, nonneg = _UNARY[short]
            return self.unary(var, call, opcode, nonneg=nonneg)
        if short in _BINARY:
            return self.binary(var, call, short, _BINARY[short])
        handler = getattr(self, f"op_{short.replace('.', '_')}", None)
        if handler is None:
            raise self.refuse(var, f"operator {short}", "has no TFLite form the int8 "
                              "quantizer writes (compile and run take the float ONNX model "
                              "as it is)")
        return handler(var, call)

    def out_shape(self, var: Any) -> tuple[int, ...]:
        return _shape(var.ty, f"'{var.name}'")

    # -- convolution and fully connected -----------------------------------------------------
    def conv_operands(self, var: Any, call: Any, what: str,
                      layouts: tuple[str, str]) -> tuple[_Value, np.ndarray]:
        """The input and the constant weights of a convolution in the layouts expected."""
        a = call.attrs
        if (str(a.data_layout), str(a.kernel_layout)) != layouts:
            raise self.refuse(var, what, f"has layout {a.data_layout}/{a.kernel_layout}")
        x = self.activation(call.args[0], var, what)
        w = self.value(call.args[1])
        if not isinstance(w, np.ndarray):
            raise self.refuse(var, what, "has weights computed at run time")
        return x, w

    def op_conv2d(self, var: Any, call: Any) -> _Value:
        a = call.attrs
        x, w = self.conv_operands(var, call, "conv2d", ("NCHW", "OIHW"))
        return self.conv(var, x, w, int(a.groups), _ints(a.strides), _ints(a.dilation),
                         _ints(a.padding), self.out_shape(var), var.name)

    def op_conv1d(self, var: Any, call: Any) -> _Value:
        """As TFLite's converter writes it: the NWC input viewed as N,1,W,C, a CONV_2D with a
        1xK kernel, the output viewed back (both views are RESHAPEs, no data moves)."""
        a = call.attrs
        x, w = self.conv_operands(var, call, "conv1d", ("NCW", "OIW"))
        pads = _ints(a.padding)
        oshape = self.out_shape(var)
        out = self.conv(var, self.as_2d(x, var.name), w[:, :, None, :], int(a.groups),
                        [1, *_ints(a.strides)], [1, *_ints(a.dilation)],
                        [0, pads[0], 0, pads[1]], (*oshape[:2], 1, oshape[2]), f"{var.name}/2d")
        return self.as_1d(out, oshape, var.name)

    def op_conv2d_transpose(self, var: Any, call: Any) -> _Value:
        """TFLite's TRANSPOSE_CONV with VALID padding computes the full output,
        ``(in - 1) * stride + kernel``; the model's pads are then a crop (STRIDED_SLICE), and an
        output padding reaches into what the bottom/right pad removed."""
        a = call.attrs
        x, w = self.conv_operands(var, call, "conv2d_transpose", ("NCHW", "IOHW"))
        if int(a.groups) != 1 or any(d != 1 for d in _ints(a.dilation)):
            raise self.refuse(var, "conv2d_transpose", "with groups or dilation (TFLite's "
                              "TRANSPOSE_CONV has neither)")
        _, o, kh, kw = w.shape
        n, _, h, wd = x.shape
        strides, pads, extra = _ints(a.strides), _ints(a.padding), _ints(a.output_padding)
        oshape = self.out_shape(var)
        full = ((h - 1) * strides[0] + kh, (wd - 1) * strides[1] + kw)
        if any(e > p for e, p in zip(extra, pads[2:], strict=True)):
            raise self.refuse(var, "conv2d_transpose", "with an output padding larger than "
                              "its end padding")
        label = var.name
        out_shape = self.i32(f"{label}/output_shape", [n, *full, o])
        layer = self.weighted_op("TRANSPOSE_CONV", "transpose", self.view(x, True),
                                 w.transpose(1, 0, 2, 3), (n, o, *full), f"{label}/full",
                                 {"padding": "VALID", "stride": tuple(strides)},
                                 inputs=lambda src, wt, bt: [out_shape, wt, src, bt])
        if full == tuple(oshape[2:]):
            return layer
        begin = [0, pads[0], pads[1], 0]
        end = [n, pads[0] + oshape[2], pads[1] + oshape[3], o]
        crop = self.emit("STRIDED_SLICE", [layer.tensor, self.i32(f"{label}/begin", begin),
                                           self.i32(f"{label}/end", end),
                                           self.i32(f"{label}/strides", [1, 1, 1, 1])],
                         label, oshape, True)
        self.weighted[crop.tensor] = self.weighted[layer.tensor]  # a bias after still folds
        return crop

    def as_2d(self, x: _Value, label: str) -> _Value:
        """An N,C,W feature map as N,C,1,W, stored N,1,W,C."""
        src = self.view(x, True)
        n, c, width = x.shape
        v = _Value(0, (n, c, 1, width), True, x.nonneg)
        v.tensor = self.tensor(f"{label}/as_2d", v.stored_shape)
        self.ops.append(OpSpec("RESHAPE", [src, self.i32(f"{label}/shape_2d",
                                                          list(v.stored_shape))],
                               [v.tensor], {"new_shape": v.stored_shape}))
        return v

    def as_1d(self, y: _Value, oshape: tuple[int, ...], label: str) -> _Value:
        """The inverse of :meth:`as_2d`; a layer whose weights are still open stays open."""
        v = _Value(0, tuple(oshape), True, y.nonneg)
        v.tensor = self.tensor(label, v.stored_shape)
        self.ops.append(OpSpec("RESHAPE", [self.view(y, True),
                                           self.i32(f"{label}/shape", list(v.stored_shape))],
                               [v.tensor], {"new_shape": v.stored_shape}))
        if y.tensor in self.weighted:
            self.weighted[v.tensor] = self.weighted[y.tensor]
        return v

    def conv(self, var: Any, x: _Value, w: np.ndarray, groups: int, strides: list[int],
             dilation: list[int], pads: list[int], oshape: tuple[int, ...],
             label: str) -> _Value:
        """A 2-D convolution of ``x`` (N,C,H,W) by OIHW weights (bias folded in later)."""
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        src, padding = self.padded(x, pads, (kh, kw), strides, dilation, oshape[2:], var,
                                   same_ok=True, zero_ok=True)
        opts = {"padding": padding, "stride": tuple(strides), "dilation": tuple(dilation)}
        if groups == 1:
            return self.weighted_op("CONV_2D", "conv", src, w, oshape, label, opts)
        if groups == c and cg == 1:
            opts["depth_multiplier"] = o // c
            return self.weighted_op("DEPTHWISE_CONV_2D", "depthwise", src, w, oshape, label,
                                    opts)
        # Grouped: one convolution per group between a SPLIT and a CONCATENATION, which every
        # TFLite runtime runs (grouped CONV_2D is not in TFLite Micro nor in int8 reference).
        _, ph, pw, _ = self.tensors[src].shape  # after any explicit PAD
        parts = [self.tensor(f"{label}/group{g}/in", (n, ph, pw, c // groups))
                 for g in range(groups)]
        self.ops.append(OpSpec("SPLIT", [self.i32(f"{label}/split_axis", [3]), src], parts,
                               {"num_splits": groups}))
        og = o // groups
        outs = []
        for g in range(groups):
            part = self.weighted_op("CONV_2D", "conv", parts[g], w[g * og:(g + 1) * og],
                                    (n, og, *oshape[2:]), f"{label}/group{g}", dict(opts))
            outs.append(self.view(part, True))
        return self.emit("CONCATENATION", outs, label, oshape, nhwc=True, options={"axis": 3})

    def weighted_op(self, opcode: str, kind: str, src: int, w: np.ndarray,
                    oshape: tuple[int, ...], label: str, options: dict,
                    inputs: Any = None) -> _Value:
        """A layer with weights (OIHW, or (out, in)) and a bias left open to folding;
        ``inputs(src, weights, bias)`` orders the operands where TFLite wants another order."""
        wt = self.tensor(f"{label}/weights", ())  # data written by finish_weighted
        bt = self.tensor(f"{label}/bias", ())
        ins = [src, wt, bt] if inputs is None else inputs(src, wt, bt)
        out = self.emit(opcode, ins, label, oshape, nhwc=kind != "fc", options=options)
        self.weighted[out.tensor] = _Weighted(self.ops[-1], w.astype(np.float32).copy(),
                                              np.zeros(w.shape[0], np.float32), kind)
        return out

    def finish_weighted(self) -> None:
        for layer in self.weighted.values():
            w = layer.weights
            if layer.kind in ("conv", "transpose"):
                w = w.transpose(0, 2, 3, 1)      # OIHW -> OHWI
            elif layer.kind == "depthwise":
                w = w.transpose(1, 2, 3, 0)      # (C*m, 1, H, W) -> (1, H, W, C*m)
            w_at, b_at = (1, 3) if layer.kind == "transpose" else (1, 2)
            for index, data in ((layer.op.inputs[w_at], w), (layer.op.inputs[b_at], layer.bias)):
                spec = self.tensors[index]
                data = np.ascontiguousarray(data, np.float32)
                spec.data, spec.shape = data, tuple(data.shape)

    def padded(self, x: _Value, pads: list[int], kernel: tuple[int, int], strides: list[int],
               dilation: list[int], out_hw: tuple[int, ...], var: Any, same_ok: bool,
               zero_ok: bool) -> tuple[int, str]:
        """``x`` stored NHWC and TFLite's padding for a window of ``kernel``: SAME where the
        model's padding is TFLite's SAME (``same_ok``: SAME leaves pads out of averages),
        else VALID after an explicit PAD with zeros (``zero_ok``: a convolution, an average
        counting pads, a maximum over values >= 0). The pads are the ones the output size
        really uses: a bottom/right pad that no window reaches is dropped, ceil mode's extra
        row is added."""
        src = self.view(x, True)
        h, w = x.shape[2:]
        eff = []
        for size, k, s, d, out, begin in zip((h, w), kernel, strides, dilation, out_hw,
                                             pads[:2], strict=True):
            span = (k - 1) * d + 1
            eff.append((begin, max(0, (out - 1) * s + span - size - begin)))
        if all(p == (0, 0) for p in eff):
            return src, "VALID"
        same = []
        for size, k, s, d in zip((h, w), kernel, strides, dilation, strict=True):
            out = (size + s - 1) // s
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            same.append((total // 2, total - total // 2))
        if same_ok and eff == same and tuple(out_hw) == tuple(
                (v + s - 1) // s for v, s in zip((h, w), strides, strict=True)):
            return src, "SAME"
        if not zero_ok:
            raise self.refuse(var, "pooling", f"with pads {pads} that are not TFLite's SAME, "
                              "where a zero pad would change the result (a maximum over "
                              "values that may be negative, or an average that leaves pads "
                              "out)")
        paddings = np.array([[0, 0], list(eff[0]), list(eff[1]), [0, 0]], np.int32)
        n, c = x.shape[:2]
        shape = (n, h + sum(eff[0]), w + sum(eff[1]), c)
        out = self.tensor(f"{var.name}/padded", shape)
        self.ops.append(OpSpec("PAD", [src, self.const(f"{var.name}/paddings", paddings)],
                               [out]))
        return out, "VALID"

    def op_matmul(self, var: Any, call: Any) -> _Value:
        x = self.value(call.args[0])
        w = self.value(call.args[1])
        oshape = self.out_shape(var)
        if isinstance(x, _Value) and isinstance(w, np.ndarray) and w.ndim == 2:
            src = self.view(x, False)
            out = self.weighted_op("FULLY_CONNECTED", "fc", src, np.ascontiguousarray(w.T),
                                   oshape, var.name,
                                   {"keep_num_dims": len(oshape) > 2})
            return out
        if isinstance(x, _Value) and isinstance(w, _Value):
            return self.emit("BATCH_MATMUL", [self.view(x, False), self.view(w, False)],
                             var.name, oshape)
        raise self.refuse(var, "matmul", "multiplies a constant by an activation")

    # -- elementwise ---------------------------------------------------------------------------
    def fold_affine(self, x: _Value, k: np.ndarray, shift: np.ndarray) -> bool:
        """Fold ``x * k + shift`` into the convolution/FC layer that computes ``x`` where both
        vary along its output channels only; False (nothing changed) otherwise."""
        layer = self.weighted[x.tensor]
        channels = layer.bias.size
        axis = len(x.shape) - 1 if layer.kind == "fc" else 1
        vectors = []
        for c in (np.asarray(k), np.asarray(shift)):
            if c.ndim > len(x.shape):
                return False
            full = c.reshape((1,) * (len(x.shape) - c.ndim) + c.shape)
            if any(d != 1 for a, d in enumerate(full.shape) if a != axis):
                return False
            vectors.append(np.broadcast_to(full.reshape(-1), (channels,)).astype(np.float64))
        kv, bv = vectors
        w_axes = (-1,) + (1,) * (layer.weights.ndim - 1)
        layer.weights = (layer.weights * kv.reshape(w_axes)).astype(np.float32)
        layer.bias = (layer.bias * kv + bv).astype(np.float32)
        return True

    def affine(self, var: Any, x_expr: Any, k: np.ndarray, shift: np.ndarray) -> _Value:
        x = self.activation(x_expr, var, "an elementwise operator")
        if (x.tensor in self.weighted and self.uses[x_expr] == 1
                and self.fold_affine(x, k, shift)):
            return x
        oshape = self.out_shape(var)
        scaled, shifted = bool(np.any(k != 1)), bool(np.any(shift != 0))
        if not (scaled or shifted):
            return x
        nhwc = x.nhwc and len(oshape) == len(x.shape)
        like = _Value(0, oshape, nhwc)
        nonneg = x.nonneg and bool(np.all(k >= 0)) and bool(np.all(shift >= 0))
        current = self.view(x, nhwc)
        if scaled:
            label = f"{var.name}/scaled" if shifted else var.name
            k_arr = np.asarray(k, np.float32)
            factor = self.const_like(k_arr.reshape(1) if k_arr.ndim == 0 else k_arr, like,
                                     f"{var.name}/scale")
            value = self.emit("MUL", [current, factor], label, oshape, nhwc, nonneg=nonneg)
            current = value.tensor
        if shifted:
            b_arr = np.asarray(shift, np.float32)
            term = self.const_like(b_arr.reshape(1) if b_arr.ndim == 0 else b_arr, like,
                                   f"{var.name}/shift")
            value = self.emit("ADD", [current, term], var.name, oshape, nhwc, nonneg=nonneg)
        return value

    def binary(self, var: Any, call: Any, opname: str, opcode: str) -> _Value:
        a, b = self.value(call.args[0]), self.value(call.args[1])
        oshape = self.out_shape(var)
        if opname == "divide" and isinstance(b, np.ndarray):  # x / c == x * (1 / c)
            opcode, b = "MUL", (1.0 / b.astype(np.float64)).astype(np.float32)
        elif opname == "subtract" and isinstance(b, np.ndarray):
            opcode, b = "ADD", -b.astype(np.float32)
        acts = [v for v in (a, b) if isinstance(v, _Value)]
        if not acts:
            raise self.refuse(var, opname, "has only constant operands")
        # Stored NHWC when every activation operand is a feature map and one already is.
        nhwc = (len(oshape) in CHANNELS_LAST_RANKS
                and all(len(v.shape) == len(oshape) for v in acts) and any(v.nhwc for v in acts))
        like = _Value(0, oshape, nhwc)
        ins = []
        for k, v in enumerate((a, b)):
            if isinstance(v, _Value):
                ins.append(self.view(v, nhwc))
            else:
                ins.append(self.const_like(v, like, f"{var.name}/operand{k}"))
        nonneg = opname in ("add", "multiply") and all(
            v.nonneg if isinstance(v, _Value) else bool(np.all(v >= 0)) for v in (a, b))
        return self.emit(opcode, ins, var.name, oshape, nhwc, nonneg=nonneg)

    def unary(self, var: Any, call: Any, opcode: str, nonneg: bool = False,
              options: dict | None = None) -> _Value:
        x = self.activation(call.args[0], var, opcode)
        return self.emit(opcode, [x.tensor], var.name, x.shape, x.nhwc, options,
                         nonneg=nonneg)

    def op_negative(self, var, call):  # -x as x * -1: TFLite's int8 NEG is not in TFLM
        x = self.activation(call.args[0], var, "negative")
        minus = self.const(f"{var.name}/minus_one", np.array([-1.0], np.float32))
        return self.emit("MUL", [x.tensor, minus], var.name, x.shape, x.nhwc)

    def op_leakyrelu(self, var, call):
        return self.unary(var, call, "LEAKY_RELU", options={"alpha": _num(call.attrs.alpha)})

    def op_clip(self, var, call):
        lo, hi = _num(call.args[1]), _num(call.args[2])
        if (lo, hi) == (0.0, 6.0):
            return self.unary(var, call, "RELU6", nonneg=True)
        if (lo, hi) == (-1.0, 1.0):
            return self.unary(var, call, "RELU_N1_TO_1")
        if lo == 0.0 and hi >= 3.4e38:
            return self.unary(var, call, "RELU", nonneg=True)
        # Any other range (HardSigmoid's [0, 1]): MAXIMUM with the low end, MINIMUM with the
        # high one, each only where that end is finite.
        x = self.activation(call.args[0], var, "clip")
        for opcode, bound, active in (("MAXIMUM", lo, lo > -3.4e38), ("MINIMUM", hi, hi < 3.4e38)):
            if active:
                operand = self.const(f"{var.name}/{opcode.lower()}",
                                     np.array([bound], np.float32))
                x = self.emit(opcode, [x.tensor, operand], f"{var.name}/{opcode.lower()}"
                              if opcode == "MAXIMUM" and hi < 3.4e38 else var.name, x.shape,
                              x.nhwc, nonneg=lo >= 0)
        return x

    def op_prelu(self, var, call):
        x = self.activation(call.args[0], var, "prelu")
        alpha = self.value(call.args[1])
        if not isinstance(alpha, np.ndarray):
            raise self.refuse(var, "prelu", "has slopes computed at run time")
        axis = int(call.attrs.axis) % len(x.shape)
        shape = [1] * len(x.shape)
        shape[axis] = alpha.size
        full = np.broadcast_to(alpha.reshape(shape if alpha.size > 1 else [1] * len(x.shape)),
                               [x.shape[k] if k == axis else 1 for k in range(len(x.shape))])
        if x.nhwc:
            full = full.transpose(last(len(x.shape)))
        full = full.reshape(full.shape[1:])  # PRELU's alpha broadcasts without the batch axis
        return self.emit("PRELU", [x.tensor, self.const(f"{var.name}/alpha",
                                                         full.astype(np.float32))],
                         var.name, x.shape, x.nhwc)

    def softmax_like(self, var: Any, call: Any, opcode: str, options: dict) -> _Value:
        x = self.activation(call.args[0], var, opcode)
        axis = int(call.attrs.axis) % len(x.shape)
        src, nhwc = x.tensor, x.nhwc
        if x.stored_axis(axis) != len(x.shape) - 1:
            src, nhwc = self.view(x, not x.nhwc), not x.nhwc
            if (last(len(x.shape)).index(axis) if nhwc else axis) != len(x.shape) - 1:
                raise self.refuse(var, opcode.lower(), "runs over an axis other than the "
                                  "channels or the last one")
        return self.emit(opcode, [src], var.name, x.shape, nhwc, options,
                         nonneg=opcode == "SOFTMAX")

    def op_softmax(self, var, call):
        return self.softmax_like(var, call, "SOFTMAX", {"beta": 1.0})

    def op_log_softmax(self, var, call):
        return self.softmax_like(var, call, "LOG_SOFTMAX", {})

    # -- pooling and reductions --------------------------------------------------------------
    def op_max_pool2d(self, var, call):
        return self.pool(var, call, "MAX_POOL_2D")

    def op_avg_pool2d(self, var, call):
        return self.pool(var, call, "AVERAGE_POOL_2D")

    def op_max_pool1d(self, var, call):
        return self.pool(var, call, "MAX_POOL_2D")

    def op_avg_pool1d(self, var, call):
        return self.pool(var, call, "AVERAGE_POOL_2D")

    def op_image_resize2d(self, var: Any, call: Any) -> _Value:
        """ONNX Resize (nearest, linear) as TFLite's RESIZE_NEAREST_NEIGHBOR/RESIZE_BILINEAR,
        where the two compute the same source coordinates: see :data:`_RESIZE_MODES`."""
        a = call.attrs
        method, mode = str(a.method), str(a.coordinate_transformation_mode)
        rounding = str(a.rounding_method) if method == "nearest_neighbor" else ""
        if str(a.layout) != "NCHW" or any(float(r) != 0.0 for r in a.roi):
            raise self.refuse(var, "resize", f"in layout {a.layout} or with a region of "
                              "interest")
        oshape = self.out_shape(var)
        if mode == "pytorch_half_pixel":  # half_pixel, but 0 for an axis resized to one value
            mode = "half_pixel" if min(oshape[2:]) > 1 else mode
        flags = _RESIZE_MODES.get((method, mode, rounding))
        if flags is None:
            raise self.refuse(var, "resize", f"{method} with {mode} coordinates"
                              + (f" and {rounding} rounding" if rounding else "")
                              + " (TFLite's resize computes other source pixels)")
        x = self.activation(call.args[0], var, "resize")
        if len(oshape) != 4:
            raise self.refuse(var, "resize", f"of a {len(oshape)}-D tensor")
        label = var.name
        opcode = "RESIZE_NEAREST_NEIGHBOR" if method == "nearest_neighbor" else "RESIZE_BILINEAR"
        size = self.i32(f"{label}/size", list(oshape[2:]))
        return self.emit(opcode, [self.view(x, True), size], label, oshape, True,
                         {"align_corners": flags[0], "half_pixel_centers": flags[1]},
                         nonneg=x.nonneg)

    def pool(self, var: Any, call: Any, opcode: str) -> _Value:
        """Pooling in 2-D, or in 1-D through the N,1,W,C view."""
        a = call.attrs
        if any(d != 1 for d in _ints(a.dilation)):
            raise self.refuse(var, "pooling", f"with dilation {_ints(a.dilation)} (TFLite's "
                              "pooling has none)")
        if str(a.layout) not in ("NCHW", "NCW"):
            raise self.refuse(var, "pooling", f"in layout {a.layout}")
        x = self.activation(call.args[0], var, "pooling")
        oshape = self.out_shape(var)
        kernel, strides, pads = _ints(a.pool_size), _ints(a.strides), _ints(a.padding)
        ceil, include = bool(a.ceil_mode), bool(a.count_include_pad)
        if len(oshape) == 4:
            return self.pool_2d(var, x, opcode, tuple(kernel), strides, pads, ceil, include,
                                oshape, var.name)
        y = self.pool_2d(var, self.as_2d(x, var.name), opcode, (1, kernel[0]), [1, strides[0]],
                         [0, pads[0], 0, pads[1]], ceil, include,
                         (*oshape[:2], 1, oshape[2]), f"{var.name}/2d")
        return self.as_1d(y, oshape, var.name)

    def pool_2d(self, var: Any, x: _Value, opcode: str, kernel: tuple[int, int],
                strides: list[int], pads: list[int], ceil: bool, include: bool,
                oshape: tuple[int, ...], label: str) -> _Value:
        options = {"filter": kernel, "stride": tuple(strides)}
        if opcode == "MAX_POOL_2D":
            src, options["padding"] = self.padded(x, pads, kernel, strides, [1, 1],
                                                  oshape[2:], var, True, x.nonneg)
            return self.emit(opcode, [src], label, oshape, True, options, nonneg=x.nonneg)
        include = include and not ceil
        src, options["padding"] = self.padded(x, pads, kernel, strides, [1, 1], oshape[2:],
                                              var, same_ok=not include, zero_ok=True)
        if include or options["padding"] == "SAME" or self.tensors[src].shape[1:3] == tuple(
                x.shape[2:]):
            return self.emit(opcode, [src], label, oshape, True, options, nonneg=x.nonneg)
        # Pads left out of the average, placed where TFLite's SAME would not put them: average
        # over the zero-padded input (which divides by the whole window), then scale each
        # output position by window / (real elements it covered).
        pooled = self.emit(opcode, [src], f"{label}/padded_average", oshape, True, options)
        counts = []
        for size, k, s, out, begin in zip(x.shape[2:], kernel, strides, oshape[2:], pads[:2],
                                          strict=True):
            starts = np.arange(out) * s - begin
            counts.append(np.minimum(starts + k, size) - np.maximum(starts, 0))
        scale = (kernel[0] * kernel[1]) / np.outer(counts[0], counts[1])
        factor = self.const(f"{label}/count_correction",
                            scale.reshape(1, *scale.shape, 1).astype(np.float32))
        return self.emit("MUL", [pooled.tensor, factor], label, oshape, True, nonneg=x.nonneg)

    def op_adaptive_avg_pool2d(self, var, call):
        oshape = self.out_shape(var)
        if oshape[2:] != (1, 1):
            raise self.refuse(var, "adaptive_avg_pool2d", "to an output larger than 1x1")
        x = self.activation(call.args[0], var, "adaptive_avg_pool2d")
        return self.reduce(var, x, [2, 3], True, "MEAN")

    def op_mean(self, var, call):
        x = self.activation(call.args[0], var, "mean")
        return self.reduce(var, x, _ints(call.attrs.axis), bool(call.attrs.keepdims), "MEAN")

    def op_sum(self, var, call):
        x = self.activation(call.args[0], var, "sum")
        return self.reduce(var, x, _ints(call.attrs.axis), bool(call.attrs.keepdims), "SUM")

    def reduce(self, var: Any, x: _Value, axes: list[int], keep: bool, opcode: str) -> _Value:
        rank = len(x.shape)
        axes = sorted(a % rank for a in axes)
        oshape = self.out_shape(var)
        nhwc = x.nhwc
        if nhwc and not keep:
            kept = [m for m in last(rank) if m not in axes]
            if kept != sorted(kept):     # the stored order of what is left differs: reorder
                nhwc = False
        src = self.view(x, nhwc)
        stored = [last(rank).index(a) for a in axes] if nhwc else axes
        if nhwc and not keep:
            nhwc = False                 # what is left is in model order, of lower rank
        out = self.emit(opcode, [src, self.i32(f"{var.name}/axes", sorted(stored))],
                        var.name, oshape, nhwc and keep, {"keep_dims": keep},
                        nonneg=x.nonneg)
        return out

    # -- data movement -----------------------------------------------------------------------
    def op_reshape(self, var, call):
        x = self.activation(call.args[0], var, "reshape")
        oshape = self.out_shape(var)
        src = self.view(x, False)
        return self.emit("RESHAPE", [src, self.i32(f"{var.name}/shape", list(oshape))],
                         var.name, oshape, options={"new_shape": oshape},
                         nonneg=x.nonneg)

    op_squeeze = op_reshape
    op_expand_dims = op_reshape
    op_flatten = op_reshape

    def op_broadcast_to(self, var, call):
        x = self.activation(call.args[0], var, "broadcast_to")
        if tuple(self.out_shape(var)) == x.shape:
            return x
        raise self.refuse(var, "broadcast_to", "that copies data (TFLite's int8 BROADCAST_TO "
                          "is not in TFLite Micro)")

    def op_permute_dims(self, var, call):
        x = self.activation(call.args[0], var, "permute_dims")
        rank = len(x.shape)
        axes = list(range(rank))[::-1] if call.attrs.axes is None else _ints(call.attrs.axes)
        perm = [x.stored_axis(a) for a in axes]
        return self.emit("TRANSPOSE", [x.tensor, self.i32(f"{var.name}/perm", perm)],
                         var.name, self.out_shape(var), nonneg=x.nonneg)

    def op_concat(self, var, call):
        parts = self.value(call.args[0])
        if not all(isinstance(p, _Value) for p in parts):
            raise self.refuse(var, "concat", "joins a constant")
        oshape = self.out_shape(var)
        nhwc = len(oshape) in CHANNELS_LAST_RANKS and any(p.nhwc for p in parts)
        axis = int(call.attrs.axis) % len(oshape)
        stored = last(len(oshape)).index(axis) if nhwc else axis
        return self.emit("CONCATENATION", [self.view(p, nhwc) for p in parts], var.name,
                         oshape, nhwc, {"axis": stored},
                         nonneg=all(p.nonneg for p in parts))

    def op_split(self, var, call):
        x = self.activation(call.args[0], var, "split")
        axis = int(call.attrs.axis) % len(x.shape)
        stored = x.stored_axis(axis)
        shapes = [tuple(_shape(f, f"'{var.name}'")) for f in var.ty.fields]
        outs = [_Value(0, s, x.nhwc, x.nonneg) for s in shapes]
        for k, o in enumerate(outs):
            o.tensor = self.tensor(f"{var.name}/{k}", o.stored_shape)
        sizes = [s[axis] for s in shapes]
        if len(set(sizes)) == 1:
            self.ops.append(OpSpec("SPLIT", [self.i32(f"{var.name}/axis", [stored]),
                                             x.tensor], [o.tensor for o in outs],
                                   {"num_splits": len(outs)}))
        else:
            self.ops.append(OpSpec("SPLIT_V", [x.tensor, self.i32(f"{var.name}/sizes",
                                                                  sizes),
                                               self.i32(f"{var.name}/axis", [stored])],
                                   [o.tensor for o in outs], {"num_splits": len(outs)}))
        return tuple(outs)

    def op_strided_slice(self, var, call):
        x = self.activation(call.args[0], var, "strided_slice")
        rank = len(x.shape)
        axes = _ints(call.args[1].fields)
        begin, end = _ints(call.args[2].fields), _ints(call.args[3].fields)
        steps = _ints(call.args[4].fields) if len(call.args) > 4 else [1] * len(axes)
        oshape = self.out_shape(var)
        b, e, s = [0] * rank, list(x.shape), [1] * rank
        for a, lo, hi, st in zip(axes, begin, end, steps, strict=True):
            a %= rank
            size = x.shape[a]
            if st < 0:
                raise self.refuse(var, "strided_slice", "with a negative step")
            lo = max(0, min(size, lo + size if lo < 0 else lo))
            hi = max(0, min(size, hi + size if hi < 0 else hi))
            b[a], e[a], s[a] = lo, hi, st
        order = last(rank) if x.nhwc else range(rank)
        label = var.name
        return self.emit("STRIDED_SLICE",
                         [x.tensor, self.i32(f"{label}/begin", [b[m] for m in order]),
                          self.i32(f"{label}/end", [e[m] for m in order]),
                          self.i32(f"{label}/strides", [s[m] for m in order])],
                         label, oshape, x.nhwc, {}, nonneg=x.nonneg)

    def op_pad(self, var, call):
        x = self.activation(call.args[0], var, "pad")
        a = call.attrs
        width = _ints(a.pad_width)
        if str(a.pad_mode) != "constant" or _num(a.pad_value) != 0.0:
            raise self.refuse(var, "pad", f"in mode {a.pad_mode} with value "
                              f"{_num(a.pad_value):g} (zero padding only)")
        rank = len(x.shape)
        pairs = [[width[2 * k], width[2 * k + 1]] for k in range(rank)]
        if any(p < 0 for pair in pairs for p in pair):
            raise self.refuse(var, "pad", "with negative pads (a crop)")
        order = last(rank) if x.nhwc else range(rank)
        paddings = np.array([pairs[m] for m in order], np.int32)
        return self.emit("PAD", [x.tensor, self.const(f"{var.name}/paddings", paddings)],
                         var.name, self.out_shape(var), x.nhwc, nonneg=x.nonneg)

    def tir_pad(self, var: Any, call: Any, prim: Any) -> _Value:
        """ONNX Pad with constant pads, which the importer writes as its own TIR kernel. The
        pads are read from the kernel (its read region is ``input[i - before]``) and then
        checked by running the kernel once on this machine against a zero pad of a ramp: a
        reflect or edge pad, or a non-zero value, fails the check and is refused."""
        import tvm
        from tvm import tirx

        x = self.activation(call.args[1].fields[0], var, "pad")
        oshape = self.out_shape(var)
        before = None
        try:
            sch = tvm.s_tir.Schedule(prim)
            blocks = [sch.get(b) for b in sch.get_child_blocks(sch.get_sblock("root"))]
        except Exception:  # not the one-block kernel a constant pad is
            blocks = []
        if len(blocks) == 1 and len(blocks[0].reads) == 1:
            analyzer = tvm.sym.Analyzer()
            for iv in blocks[0].iter_vars:
                dtype = str(getattr(getattr(iv.var, "ty", None), "dtype", "int64"))
                analyzer.bind(iv.var, tirx.const(0, dtype))
            mins = [analyzer.simplify(r.min) for r in blocks[0].reads[0].region]
            if all(isinstance(m, tirx.IntImm) for m in mins):
                before = [-int(m.value) for m in mins]
        if before is None or len(before) != len(x.shape) or any(b < 0 for b in before):
            raise self.refuse(var, "pad", "whose form could not be read (a reflect or edge "
                              "pad?)")
        after = [o - i - b for o, i, b in zip(oshape, x.shape, before, strict=True)]
        ramp = (np.arange(int(np.prod(x.shape)), dtype=np.float32) + 1).reshape(x.shape)
        same, value = False, 0.0
        if all(a >= 0 for a in after):
            try:
                lib = tvm.compile(tvm.IRModule({"main": prim.with_attr("global_symbol",
                                                                       "main")}), target="llvm")
                out = tvm.runtime.empty(oshape, "float32")
                lib["main"](tvm.runtime.tensor(ramp), out)
                got = out.numpy()
                value = float(got.reshape(-1)[0]) if any(before) else float(got.reshape(-1)[-1])
                want = np.pad(ramp, list(zip(before, after, strict=True)),
                              constant_values=value)
                same = np.array_equal(got, want)
            except Exception:  # a kernel we cannot run here: not provably a constant pad
                same = False
        if not same:
            raise self.refuse(var, "pad", "that is not a constant pad (reflect and edge pads "
                              "have no int8 TFLite form)")
        rank = len(x.shape)
        order = last(rank) if x.nhwc else range(rank)
        paddings = self.const(f"{var.name}/paddings",
                              np.array([[before[m], after[m]] for m in order], np.int32))
        if value == 0.0:
            return self.emit("PAD", [x.tensor, paddings], var.name, oshape, x.nhwc,
                             nonneg=x.nonneg)
        fill = self.const(f"{var.name}/value", np.array([value], np.float32))
        return self.emit("PADV2", [x.tensor, paddings, fill], var.name, oshape, x.nhwc,
                         nonneg=x.nonneg and value >= 0)

    def op_dropout(self, var, call):
        x = self.activation(call.args[0], var, "dropout")
        return (x, None)  # inference: the identity (its mask output is never read)

    # -- recognised forms --------------------------------------------------------------------
    def form(self, var: Any, spec: tuple) -> _Value:
        if spec[0] == "affine":
            return self.affine(var, *spec[1:])
        if spec[0] == "hard_swish":
            x = self.activation(spec[1], var, "hard swish")
            return self.emit("HARD_SWISH", [x.tensor], var.name, x.shape, x.nhwc)
        if spec[0] == "lrn":
            _, x_expr, size, alpha, bias, beta = spec
            x = self.activation(x_expr, var, "local response normalization")
            return self.emit("LOCAL_RESPONSE_NORMALIZATION", [self.view(x, True)],
                             var.name, x.shape, nhwc=True,
                             options={"radius": size // 2, "bias": bias, "alpha": alpha,
                                      "beta": beta})
        _, fields = spec
        values = []
        for f in fields:
            src = self._single(f, "relax.broadcast_to")
            values.append(self.value(src.args[0] if src is not None else f))
        oshape = self.out_shape(var)
        if not all(isinstance(v, _Value) and v.shape == oshape for v in values):
            raise self.refuse(var, "sum", "of operands of different shapes or constants")
        total = values[0]
        for k, v in enumerate(values[1:], 1):
            nhwc = total.nhwc or v.nhwc
            label = var.name if k == len(values) - 1 else f"{var.name}/{k}"
            total = self.emit("ADD", [self.view(total, nhwc), self.view(v, nhwc)], label,
                              oshape, nhwc and len(oshape) in CHANNELS_LAST_RANKS,
                              nonneg=total.nonneg and v.nonneg)
        return total


# (Relax resize method, coordinate mode, rounding) -> TFLite's (align_corners,
# half_pixel_centers), for the combinations where ONNX's source coordinate and TFLite's agree:
# nearest asymmetric/floor is floor(x * in/out) in both; TFLite's half-pixel nearest is
# floor((x + 0.5) * in/out), which is ONNX's half_pixel rounded half up (round_prefer_ceil),
# not half down (the two differ on exact halves, e.g. every pixel of a 2x downscale); TFLite's
# align_corners nearest rounds half away from zero, ONNX's round_prefer_ceil on values >= 0.
_RESIZE_MODES: dict[tuple[str, str, str], tuple[bool, bool]] = {
    ("nearest_neighbor", "asymmetric", "floor"): (False, False),
    ("nearest_neighbor", "half_pixel", "round_prefer_ceil"): (False, True),
    ("nearest_neighbor", "align_corners", "round_prefer_ceil"): (True, False),
    ("linear", "asymmetric", ""): (False, False),
    ("linear", "half_pixel", ""): (False, True),
    ("linear", "align_corners", ""): (True, False),
}


def relax_module(model: Any, name: str) -> Any:
    """The model through TVM's importer, batch norm decomposed and constants folded, before
    any lowering: the high-level operators this module translates."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from edge_sdk.frontend.relax_onnx import _bounded_takes, _quiet, _upgraded, operator_names

    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore", UserWarning)
            mod = from_onnx(_upgraded(model), keep_params_in_input=False)
            mod = _bounded_takes(mod)
            mod = tvm.transform.Sequential([
                relax.transform.DecomposeOpsForInference(),
                relax.transform.FoldConstant(),
                relax.transform.DeadCodeElimination(),
            ])(mod)
    except Exception as err:  # TVM raises its own error types, with long messages
        lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
        reason = clipped(lines[-1], 160) if lines else type(err).__name__
        raise UnsupportedOpError(f"TVM's ONNX importer cannot take {name} ({reason}); its "
                                 f"operators: {operator_names(model)}") from None
    return mod


def load_onnx_graph(path: str | Path) -> Graph:
    """An ONNX model as the operator library's operators, so that the kernels, threads and
    tuning written for TFLite graphs serve it too (measured on this page's first users,
    `benchmarks/onnx_light.py`: 3-4x faster than TVM's legalized kernels on a Linux CPU).

    A model this translator cannot express (an operator with no TFLite form, integer or
    dynamic tensors) is loaded through TVM's Relax importer instead
    (:func:`~edge_sdk.frontend.relax_onnx.load_onnx`, ``origin == "relax"``): every model that
    loaded before still loads, and the refusals are that importer's. The compiler does the same
    when a target has no kernel for one of the translated operators."""
    from edge_sdk.frontend.relax_onnx import import_onnx, read_onnx
    from edge_sdk.frontend.tflite import parse

    path = Path(path)
    model = read_onnx(path)  # read and checked once, whichever route takes it
    try:
        graph = parse(translate(model, path.stem), name=path.stem)
    except Exception:
        return import_onnx(model, path)
    if any(graph.tensor(i).dtype != "float32" for i in (*graph.inputs, *graph.outputs)):
        return import_onnx(model, path)
    weights = sum(t.data.nbytes for t in graph.tensors if t.data is not None)
    # The model's size with its weights inline: what the file (and its external data) holds.
    if weights > 2 * model.ByteSize() + EXPANSION_ALLOWANCE:
        return import_onnx(model, path)  # weights made at run time (ConstantOfShape)
    return dataclasses.replace(graph, source=path, origin="onnx")


# Weights the translation may add beyond twice the file's size (folded batch norms, transposed
# copies) before a model whose weights are generated in the graph (``ConstantOfShape``: one
# value, broadcast) goes to TVM's importer instead, which keeps such a weight one value.
EXPANSION_ALLOWANCE = 1 << 20


def translate(model: Any, name: str, nhwc: bool = False) -> bytes:
    """A float ONNX ``ModelProto`` (already read and checked) as float ``.tflite`` bytes."""
    return _Translator(relax_module(model, name), name, nhwc).translate()


def onnx_to_tflite(path: str | Path, nhwc: bool = False) -> bytes:
    """Translate a float ONNX model file into float ``.tflite`` bytes (see module docstring).
    ``nhwc``: 4-D inputs and outputs NHWC instead of the model's own NCHW."""
    from edge_sdk.frontend.relax_onnx import read_onnx

    path = Path(path)
    return translate(read_onnx(path), path.stem, nhwc)
