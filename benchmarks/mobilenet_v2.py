#!/usr/bin/env python3
"""A MobileNetV2-1.0 at 224x224, int8, with random weights: the 224x224 model of the Linux
benchmarks (nothing is downloaded; the issue's PyTorch export is not shipped).

    python3 benchmarks/mobilenet_v2.py -o mobilenet_v2_224_int8.tflite

The layer structure is MobileNetV2's (Sandler et al. 2018, table 2): a 3x3/2 convolution to 32
channels, 17 inverted-residual blocks (1x1 expansion with RELU6, 3x3 depthwise with RELU6, 1x1
projection, a residual ADD where shapes allow), a 1x1 convolution to 1280, 7x7 average pooling
and a 1000-way fully-connected layer: 300 M multiply-accumulates. Weights are per-channel int8,
biases int32, activation scales picked so values neither vanish nor all saturate. Random
weights change nothing in the time or memory of an int8 network; the outputs are still checked
bit for bit against LiteRT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model  # noqa: E402

# (expansion t, output channels c, repeats n, first stride s)
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1)]


class _Net:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.tensors: list[TensorSpec] = []
        self.ops: list[OpSpec] = []

    def tensor(self, spec: TensorSpec) -> int:
        self.tensors.append(spec)
        return len(self.tensors) - 1

    def activation(self, shape, scale: float, zp: int) -> int:
        return self.tensor(TensorSpec(f"t{len(self.tensors)}", shape, "int8", (scale,), (zp,)))

    def conv(self, x: int, out_c: int, k: int, stride: int, relu6: bool,
             depthwise: bool = False) -> int:
        t = self.tensors[x]
        n, h, w, c = t.shape
        oh, ow = -(-h // stride), -(-w // stride)
        channels = c if depthwise else out_c
        fan_in = k * k * (1 if depthwise else c)
        # He-style: int8 weights uniform in +-127 have std 127/sqrt(3); this keeps the
        # activations' spread layer after layer.
        wscales = self.rng.uniform(0.8, 1.2, size=channels) * np.sqrt(6 / fan_in) / 127
        wshape = (1, k, k, channels) if depthwise else (channels, k, k, c)
        weights = self.rng.integers(-127, 128, size=wshape, dtype=np.int8)
        in_scale = t.scale[0]
        bias_scales = in_scale * wscales
        bias = self.rng.integers(-500, 500, size=channels).astype(np.int32)
        wi = self.tensor(TensorSpec(f"w{len(self.tensors)}", wshape, "int8", tuple(wscales),
                                    (0,) * channels, 3 if depthwise else 0, weights))
        bi = self.tensor(TensorSpec(f"b{len(self.tensors)}", (channels,), "int32",
                                    tuple(bias_scales), (0,) * channels, 0, bias))
        y = (self.activation((n, oh, ow, channels), 6 / 255, -128) if relu6
             else self.activation((n, oh, ow, channels), 8 / 128, 0))
        options = {"padding": "SAME", "stride": (stride, stride), "dilation": (1, 1),
                   "activation": "RELU6" if relu6 else "NONE"}
        if depthwise:
            options["depth_multiplier"] = 1
        self.ops.append(OpSpec("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, wi, bi],
                               [y], options))
        return y

    def add(self, a: int, b: int) -> int:
        ta, tb = self.tensors[a], self.tensors[b]
        y = self.activation(ta.shape, max(ta.scale[0], tb.scale[0]) * 1.4, 0)
        self.ops.append(OpSpec("ADD", [a, b], [y], {"activation": "NONE"}))
        return y


def build(seed: int = 0) -> bytes:
    net = _Net(seed)
    x = net.activation((1, 224, 224, 3), 1 / 128, 0)
    inp = x
    x = net.conv(x, 32, 3, 2, relu6=True)
    for t, c, n, s in BLOCKS:
        for i in range(n):
            stride = s if i == 0 else 1
            start = x
            cin = net.tensors[x].shape[3]
            if t != 1:
                x = net.conv(x, cin * t, 1, 1, relu6=True)
            x = net.conv(x, 0, 3, stride, relu6=True, depthwise=True)
            x = net.conv(x, c, 1, 1, relu6=False)
            if stride == 1 and cin == c:
                x = net.add(start, x)
    x = net.conv(x, 1280, 1, 1, relu6=True)
    pooled = net.activation((1, 1, 1, 1280), 6 / 255, -128)
    net.ops.append(OpSpec("AVERAGE_POOL_2D", [x], [pooled], {"filter": (7, 7),
                                                            "stride": (1, 1)}))
    wscales = net.rng.uniform(0.8, 1.2, size=1000) * np.sqrt(6 / 1280) / 127
    w = net.tensor(TensorSpec("fc_w", (1000, 1280), "int8", tuple(wscales), (0,) * 1000, 0,
                              net.rng.integers(-127, 128, size=(1000, 1280), dtype=np.int8)))
    b = net.tensor(TensorSpec("fc_b", (1000,), "int32", tuple(6 / 255 * wscales),
                              (0,) * 1000, 0, np.zeros(1000, np.int32)))
    logits = net.activation((1, 1000), 16 / 128, 0)
    net.ops.append(OpSpec("FULLY_CONNECTED", [pooled, w, b], [logits], {}))
    return build_model(net.tensors, net.ops, [inp], [logits],
                       description="edge-sdk benchmark: MobileNetV2-1.0-224 int8, random weights")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="mobilenet_v2_224_int8.tflite")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    Path(args.out).write_bytes(build(args.seed))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
