"""Float graph + activation ranges -> a full-integer ``.tflite`` (TFLite's int8 spec).

- Weights: symmetric int8 in [-127, 127], per output channel (axis 0 for CONV_2D,
  TRANSPOSE_CONV and FULLY_CONNECTED, axis 3 for DEPTHWISE_CONV_2D) or per tensor; biases int32 with
  ``scale = input_scale * weight_scale``.
- Activations: asymmetric int8 from the calibrated range (always holding 0).
- Operators whose output must share the input's parameters (pooling, reshape, pad, slice,
  transpose, resize, split...) and concatenation's (pack's, maximum's, minimum's) inputs and
  output are put in one group with one range.
- SOFTMAX and LOGISTIC output 1/256 with zero point -128; TANH 1/128 with zero point 0;
  LOG_SOFTMAX 16/256 with zero point 127.
- ``skip`` layers stay float, between a DEQUANTIZE and a QUANTIZE.
- The model's inputs and outputs are int8 unless ``float_io``, which keeps them float32 with a
  QUANTIZE/DEQUANTIZE at each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_sdk.errors import ModelError
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model
from edge_sdk.ir import Graph, Operator, Tensor
from edge_sdk.quantization.calibration import asymmetric_params

WEIGHTED = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}  # op -> channel axis
# The output(s) share the (first) input's parameters: data movement, max pooling, resizing.
SAME_PARAMS = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PAD",
               "PADV2",
               "STRIDED_SLICE", "TRANSPOSE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
               "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "UNPACK"}
# Every activation input and the output share one set of parameters.
ALL_SAME = {"CONCATENATION", "PACK", "MAXIMUM", "MINIMUM"}
FIXED_OUTPUT = {"SOFTMAX": (1.0 / 256, -128), "LOGISTIC": (1.0 / 256, -128),
                "TANH": (1.0 / 128, 0), "LOG_SOFTMAX": (16.0 / 256, 127)}
# No int8 kernel in TFLite: always kept float (between a DEQUANTIZE and a QUANTIZE).
FLOAT_ONLY = {"LOCAL_RESPONSE_NORMALIZATION"}
OWN_PARAMS = {"ADD", "SUB", "MUL", "MEAN", "RELU", "RELU6", "HARD_SWISH", "PRELU", "LEAKY_RELU",
              "ABS"}
# TRANSPOSE_CONV: (output shape, OHWI weights, input, bias), per-channel on axis 0.
SUPPORTED = (set(WEIGHTED) | SAME_PARAMS | ALL_SAME | set(FIXED_OUTPUT) | OWN_PARAMS
             | {"TRANSPOSE_CONV"})
ACTIVATION_OPS = {"RELU": "RELU", "RELU6": "RELU6"}


@dataclass(frozen=True)
class Params:
    scale: float
    zero_point: int
    rmin: float
    rmax: float


def float_data(t: Tensor) -> np.ndarray:
    """A constant as float32; hybrid models store some weights as int8 with scales."""
    assert t.data is not None
    if t.dtype == "float32":
        return t.data.astype(np.float32)
    if t.quant is None:
        raise ModelError(f"constant '{t.name}' is {t.dtype} without quantization parameters")
    scale = np.asarray(t.quant.scale, np.float64)
    zp = np.asarray(t.quant.zero_point, np.float64)
    shape = [1] * t.data.ndim
    if scale.size > 1:
        shape[t.quant.axis] = scale.size
    return ((t.data.astype(np.float64) - zp.reshape(shape)) * scale.reshape(shape)).astype(
        np.float32)


def fuse(graph: Graph) -> list[Operator]:
    """Graph passes before quantization, on a copy of the operator list.

    - fold batch normalization left as MUL/ADD by a per-channel constant after a convolution;
    - fuse a standalone RELU/RELU6 into the convolution, FC or ADD that produces its input.
    Each rewrite needs the intermediate tensor to have exactly one consumer.
    """
    ops = [Operator(o.index, o.opcode, o.inputs, o.outputs, dict(o.options))
           for o in graph.operators]
    changed = True
    while changed:
        changed = False
        consumers: dict[int, list[Operator]] = {}
        for o in ops:
            for t in o.inputs:
                consumers.setdefault(t, []).append(o)
        for o in ops:
            out = o.outputs[0] if o.outputs else -1
            nxt = consumers.get(out, [])
            if len(nxt) != 1 or out in graph.outputs:
                continue
            follower = nxt[0]
            if (follower.opcode in ACTIVATION_OPS and o.options.get("activation") == "NONE"
                    and o.opcode in (*WEIGHTED, "ADD")):
                o.options["activation"] = ACTIVATION_OPS[follower.opcode]
                o.outputs = follower.outputs
                ops.remove(follower)
                changed = True
                break
            if (o.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") and follower.opcode in ("MUL", "ADD")
                    and o.options.get("activation") == "NONE"
                    and _fold_affine(graph, o, follower)):
                o.outputs = follower.outputs
                ops.remove(follower)
                changed = True
                break
    return ops


def _fold_affine(graph: Graph, conv: Operator, op: Operator) -> bool:
    """Fold ``y = conv(x) * c`` or ``conv(x) + c`` (per-channel constant c) into the conv."""
    other = [t for t in op.inputs if t != conv.outputs[0]]
    if len(other) != 1 or not graph.tensor(other[0]).is_constant:
        return False
    axis = WEIGHTED[conv.opcode]
    w = graph.tensor(conv.inputs[1])
    channels = w.shape[axis]
    c = float_data(graph.tensor(other[0])).reshape(-1)
    if c.size not in (1, channels):
        return False
    c = np.broadcast_to(c, (channels,)).astype(np.float32)
    weights = float_data(w)
    bias = (float_data(graph.tensor(conv.inputs[2])) if len(conv.inputs) > 2
            and conv.inputs[2] >= 0 else np.zeros(channels, np.float32))
    shape = [1] * weights.ndim
    shape[axis] = channels
    if op.opcode == "MUL":
        weights, bias = weights * c.reshape(shape), bias * c
    else:
        bias = bias + c
    # Store the folded constants in fresh tensors appended to the graph.
    wt = Tensor(len(graph.tensors), f"{w.name}/folded", w.shape, "float32", None, weights)
    graph.tensors.append(wt)
    bt = Tensor(len(graph.tensors), f"{w.name}/folded_bias", (channels,), "float32", None,
                bias.astype(np.float32))
    graph.tensors.append(bt)
    conv.inputs = (conv.inputs[0], wt.index, bt.index)
    return True


class _Groups:
    """Union-find over tensors that must share quantization parameters."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, t: int) -> int:
        while self.parent.get(t, t) != t:
            t = self.parent[t]
        return t

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def activation_params(graph: Graph, ops: list[Operator], ranges: dict[int, tuple[float, float]],
                      skip: set[int]) -> dict[int, Params]:
    groups = _Groups()
    fixed: dict[int, tuple[float, int]] = {}
    for o in ops:
        if o.index in skip:
            continue
        acts = [t for t in o.inputs if t >= 0 and not graph.tensor(t).is_constant]
        if o.opcode in SAME_PARAMS and acts:
            for t in o.outputs:
                groups.union(acts[0], t)
        elif o.opcode in ALL_SAME:
            for t in acts:
                groups.union(o.outputs[0], t)
        elif o.opcode in FIXED_OUTPUT:
            fixed[o.outputs[0]] = FIXED_OUTPUT[o.opcode]
    merged: dict[int, tuple[float, float]] = {}
    for t, (lo, hi) in ranges.items():
        r = groups.find(t)
        plo, phi = merged.get(r, (lo, hi))
        merged[r] = (min(plo, lo), max(phi, hi))
    # A fixed output (softmax's 1/256...) fixes its whole group: a RESHAPE after a SOFTMAX
    # must keep the softmax's parameters.
    fixed_groups = {groups.find(t): p for t, p in fixed.items()}
    params = {}
    for t in ranges:
        lo, hi = merged[groups.find(t)]
        if groups.find(t) in fixed_groups:
            scale, zp = fixed_groups[groups.find(t)]
        else:
            scale, zp = asymmetric_params(lo, hi)
        params[t] = Params(scale, zp, lo, hi)
    return params


def _quantize_weights(w: np.ndarray, axis: int, per_channel: bool) -> tuple[np.ndarray, list]:
    if per_channel:
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        scales = np.abs(moved).max(axis=1) / 127.0
    else:
        scales = np.array([np.abs(w).max() / 127.0])
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = scales.size
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, [float(s) for s in scales]


def build_int8(graph: Graph, ops: list[Operator], params: dict[int, Params], skip: set[int],
               per_channel: bool = True, float_io: bool = False) -> tuple[bytes, dict[int, int]]:
    """Write the int8 model; returns its bytes and a map float tensor -> int8 tensor index."""
    unsupported = sorted({o.opcode for o in ops if o.opcode not in SUPPORTED
                          and o.index not in skip})
    if unsupported:
        names = ", ".join(f"{o.opcode} (operator {o.index})" for o in ops
                          if o.opcode in unsupported)
        raise ModelError(f"cannot quantize {names}: keep those layers in float with "
                         "--skip-layers, or remove them from the model")
    specs: list[TensorSpec] = []
    index: dict[int, int] = {}  # float tensor -> spec index of its int8 (or kept) version
    float_of: dict[int, int] = {}  # float tensor -> spec index of its float32 version

    def add(spec: TensorSpec) -> int:
        specs.append(spec)
        return len(specs) - 1

    def act(t: int) -> int:
        if t not in index:
            src, p = graph.tensor(t), params[t]
            index[t] = add(TensorSpec(src.name, src.shape, "int8", (p.scale,), (p.zero_point,)))
        return index[t]

    def as_float(t: int, new_ops: list[OpSpec]) -> int:
        if t not in float_of:
            src = graph.tensor(t)
            float_of[t] = add(TensorSpec(f"{src.name}/float", src.shape, "float32"))
            new_ops.append(OpSpec("DEQUANTIZE", [act(t)], [float_of[t]]))
        return float_of[t]

    def const(t: int) -> int:
        src = graph.tensor(t)
        data = float_data(src) if src.dtype in ("float32", "int8") and src.quant else src.data
        assert data is not None  # called for constants only
        return add(TensorSpec(src.name, src.shape, str(data.dtype), data=data))

    out_ops: list[OpSpec] = []
    if float_io:
        for graph_in in graph.inputs:
            fin = add(TensorSpec(graph.tensor(graph_in).name + "/float",
                                 graph.tensor(graph_in).shape, "float32"))
            float_of[graph_in] = fin
            out_ops.append(OpSpec("QUANTIZE", [fin], [act(graph_in)]))
    for o in ops:
        if o.index in skip:
            ins = [-1 if t < 0 else (const(t) if graph.tensor(t).is_constant
                                     else as_float(t, out_ops)) for t in o.inputs]
            outs = []
            for t in o.outputs:
                f = add(TensorSpec(graph.tensor(t).name + "/float", graph.tensor(t).shape,
                                   "float32"))
                float_of[t] = f
                outs.append(f)
            out_ops.append(OpSpec(o.opcode, ins, outs, o.options))
            for t in o.outputs:
                out_ops.append(OpSpec("QUANTIZE", [float_of[t]], [act(t)]))
            continue
        if o.opcode in WEIGHTED or o.opcode == "TRANSPOSE_CONV":
            transpose = o.opcode == "TRANSPOSE_CONV"
            x_at, b_at = (2, 3) if transpose else (0, 2)
            x = params[o.inputs[x_at]]
            axis = 0 if transpose else WEIGHTED[o.opcode]
            w_src = graph.tensor(o.inputs[1])
            q, scales = _quantize_weights(float_data(w_src), axis, per_channel)
            w = add(TensorSpec(w_src.name, w_src.shape, "int8", tuple(scales),
                               (0,) * len(scales), axis, q))
            ins = [const(o.inputs[0]), w, act(o.inputs[2])] if transpose else [
                act(o.inputs[0]), w]
            if len(o.inputs) > b_at and o.inputs[b_at] >= 0:
                b_src = graph.tensor(o.inputs[b_at])
                b_scales = np.asarray(scales, np.float64) * x.scale  # one, or one per channel
                b = float_data(b_src).reshape(-1).astype(np.float64)
                qb = np.clip(np.round(b / b_scales), -(2**31), 2**31 - 1).astype(np.int32)
                ins.append(add(TensorSpec(b_src.name, b_src.shape, "int32",
                                          tuple(float(s) for s in b_scales),
                                          (0,) * b_scales.size, 0, qb)))
            out_ops.append(OpSpec(o.opcode, ins, [act(o.outputs[0])], o.options))
            continue
        ins = []
        for k, t in enumerate(o.inputs):
            src = graph.tensor(t) if t >= 0 else None
            if src is None:
                ins.append(-1)
            elif o.opcode == "PADV2" and k == 2:
                # The fill value takes the input's parameters (its range holds it: the output,
                # which contains the fill, shares the input's group).
                p = params[o.inputs[0]]
                q = np.clip(np.round(float_data(src) / p.scale) + p.zero_point, -128, 127)
                ins.append(add(TensorSpec(src.name, src.shape, "int8", (p.scale,),
                                          (p.zero_point,), 0, q.astype(np.int8))))
            elif src.is_constant and src.dtype == "float32":
                # A float constant operand (e.g. of ADD/MUL) gets its own int8 parameters.
                data = float_data(src)
                scale, zp = asymmetric_params(float(data.min()), float(data.max()))
                q = np.clip(np.round(data / scale) + zp, -128, 127).astype(np.int8)
                ins.append(add(TensorSpec(src.name, src.shape, "int8", (scale,), (zp,), 0, q)))
            elif src.is_constant:
                ins.append(const(t))
            else:
                ins.append(act(t))
        options = dict(o.options)
        if o.opcode == "RESHAPE":
            options.setdefault("new_shape", graph.tensor(o.outputs[0]).shape)
        out_ops.append(OpSpec(o.opcode, ins, [act(t) for t in o.outputs], options))
    inputs = [float_of[t] if float_io else act(t) for t in graph.inputs]
    outputs = [act(t) for t in graph.outputs]
    if float_io:
        outputs = []
        for graph_out in graph.outputs:
            fout = add(TensorSpec(graph.tensor(graph_out).name + "/float",
                                  graph.tensor(graph_out).shape, "float32"))
            out_ops.append(OpSpec("DEQUANTIZE", [act(graph_out)], [fout]))
            outputs.append(fout)
    return build_model(specs, out_ops, inputs, outputs, description="edge-sdk quantize"), index
