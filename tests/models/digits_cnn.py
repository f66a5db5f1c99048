#!/usr/bin/env python3
"""A tiny CNN for scikit-learn's bundled 8x8 digits: trained in NumPy, exported to float
TFLite (edge-sdk's writer) and ONNX (onnx.helper). Nothing is downloaded.

    python3 tests/models/digits_cnn.py        # retrain, rewrite tests/models/digits_cnn.npz

The tests load the shipped weights (deterministic: seed 0) and only export and quantize.
Network (NHWC): conv 3x3 1->8 + ReLU, max-pool 2x2, conv 3x3 8->16 + ReLU, global average,
dense 16->10, softmax.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS = Path(__file__).with_name("digits_cnn.npz")


def dataset():
    """(train_x, train_y, test_x, test_y): images (N, 8, 8, 1) in [0, 1], a fixed 80/20 split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _im2col(x, k=3):
    n, h, w, c = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.stack([p[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)], axis=3)
    return cols.reshape(n, h, w, k * k * c)  # taps ordered (ky, kx, c)


def forward(params, x, keep=False):
    c1 = _im2col(x) @ params["w1"].reshape(-1, 8) + params["b1"]
    r1 = np.maximum(c1, 0)
    n = x.shape[0]
    p1 = r1.reshape(n, 4, 2, 4, 2, 8).max(axis=(2, 4))
    c2 = _im2col(p1) @ params["w2"].reshape(-1, 16) + params["b2"]
    r2 = np.maximum(c2, 0)
    g = r2.mean(axis=(1, 2))
    logits = g @ params["w3"] + params["b3"]
    if keep:
        return logits, (x, c1, r1, p1, c2, r2, g)
    return logits


def train(epochs=60, batch=32, lr=0.01, seed=0):
    tx, ty, vx, vy = dataset()
    rng = np.random.default_rng(seed)
    params = {"w1": rng.normal(0, 0.4, (3, 3, 1, 8)), "b1": np.zeros(8),
              "w2": rng.normal(0, 0.15, (3, 3, 8, 16)), "b2": np.zeros(16),
              "w3": rng.normal(0, 0.3, (16, 10)), "b3": np.zeros(10)}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(tx))
        for s in range(0, len(tx), batch):
            idx = order[s:s + batch]
            xb, yb = tx[idx], ty[idx]
            logits, (x, c1, r1, p1, c2, _r2, g) = forward(params, xb, keep=True)
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            d = prob
            d[np.arange(len(yb)), yb] -= 1
            d /= len(yb)
            grads = {"w3": g.T @ d, "b3": d.sum(0)}
            dg = d @ params["w3"].T
            dr2 = np.repeat(np.repeat(dg[:, None, None, :], 4, 1), 4, 2) / 16.0
            dc2 = dr2 * (c2 > 0)
            cols2 = _im2col(p1)
            grads["w2"] = (cols2.reshape(-1, 72).T @ dc2.reshape(-1, 16)).reshape(3, 3, 8, 16)
            grads["b2"] = dc2.sum((0, 1, 2))
            dcols2 = (dc2.reshape(-1, 16) @ params["w2"].reshape(72, 16).T).reshape(-1, 4, 4, 9, 8)
            dp1 = np.zeros((len(xb), 6, 6, 8))
            for t in range(9):
                i, j = divmod(t, 3)
                dp1[:, i:i + 4, j:j + 4, :] += dcols2[:, :, :, t, :]
            dp1 = dp1[:, 1:5, 1:5, :]
            mask = r1.reshape(-1, 4, 2, 4, 2, 8) == p1[:, :, None, :, None, :]
            dr1 = (mask * dp1[:, :, None, :, None, :]).reshape(-1, 8, 8, 8)
            dc1 = dr1 * (c1 > 0)
            grads["w1"] = (_im2col(x).reshape(-1, 9).T @ dc1.reshape(-1, 8)).reshape(3, 3, 1, 8)
            grads["b1"] = dc1.sum((0, 1, 2))
            step += 1
            for k in params:  # Adam
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                mh, vh = m[k] / (1 - 0.9 ** step), v[k] / (1 - 0.999 ** step)
                params[k] = params[k] - lr * mh / (np.sqrt(vh) + 1e-8)
    acc = float(np.mean(np.argmax(forward(params, vx), 1) == vy))
    return {k: p.astype(np.float32) for k, p in params.items()}, acc


def load():
    with np.load(WEIGHTS) as f:
        return {k: f[k] for k in f.files}


def to_tflite(params) -> bytes:
    """The float network as .tflite: convolutions without fused activation and separate RELU
    operators, as some exporters write them (the quantizer fuses them back)."""
    from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

    def w_ohwi(w):
        return np.ascontiguousarray(w.transpose(3, 0, 1, 2))

    t = [TensorSpec("image", (1, 8, 8, 1), "float32"),
         TensorSpec("w1", (8, 3, 3, 1), "float32", data=w_ohwi(params["w1"])),
         TensorSpec("b1", (8,), "float32", data=params["b1"]),
         TensorSpec("conv1", (1, 8, 8, 8), "float32"), TensorSpec("relu1", (1, 8, 8, 8), "float32"),
         TensorSpec("pool1", (1, 4, 4, 8), "float32"),
         TensorSpec("w2", (16, 3, 3, 8), "float32", data=w_ohwi(params["w2"])),
         TensorSpec("b2", (16,), "float32", data=params["b2"]),
         TensorSpec("conv2", (1, 4, 4, 16), "float32"),
         TensorSpec("relu2", (1, 4, 4, 16), "float32"),
         TensorSpec("axes", (2,), "int32", data=np.array([1, 2], np.int32)),
         TensorSpec("gap", (1, 1, 1, 16), "float32"),
         TensorSpec("shape", (2,), "int32", data=np.array([1, 16], np.int32)),
         TensorSpec("flat", (1, 16), "float32"),
         TensorSpec("w3", (10, 16), "float32", data=np.ascontiguousarray(params["w3"].T)),
         TensorSpec("b3", (10,), "float32", data=params["b3"]),
         TensorSpec("logits", (1, 10), "float32"), TensorSpec("probs", (1, 10), "float32")]
    ops = [OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": "SAME"}), OpSpec("RELU", [3], [4]),
           OpSpec("MAX_POOL_2D", [4], [5], {"filter": (2, 2), "stride": (2, 2)}),
           OpSpec("CONV_2D", [5, 6, 7], [8], {"padding": "SAME"}), OpSpec("RELU", [8], [9]),
           OpSpec("MEAN", [9, 10], [11], {"keep_dims": True}),
           OpSpec("RESHAPE", [11, 12], [13], {"new_shape": (1, 16)}),
           OpSpec("FULLY_CONNECTED", [13, 14, 15], [16]), OpSpec("SOFTMAX", [16], [17])]
    return build_model(t, ops, [0], [17])


def to_onnx(params, path: Path) -> None:
    """The float network as ONNX (NCHW). conv1 is written as Conv + BatchNormalization with
    values that reproduce it exactly, so the importer's folding is exercised on real data."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    gamma = np.linspace(0.5, 2.0, 8).astype(np.float32)
    beta = np.linspace(-0.2, 0.2, 8).astype(np.float32)
    mean = np.linspace(-0.1, 0.3, 8).astype(np.float32)
    var = np.linspace(0.5, 1.5, 8).astype(np.float32)
    eps = 1e-5
    k = gamma / np.sqrt(var + eps)
    w1 = params["w1"].transpose(3, 2, 0, 1) / k.reshape(-1, 1, 1, 1)  # OIHW
    b1 = (params["b1"] - beta) / k + mean
    inits = {"w1": w1, "b1": b1, "gamma": gamma, "beta": beta, "mean": mean, "var": var,
             "w2": params["w2"].transpose(3, 2, 0, 1), "b2": params["b2"],
             "w3": params["w3"].T, "b3": params["b3"]}
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn1"],
                         epsilon=eps),
        helper.make_node("Relu", ["bn1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(np.ascontiguousarray(v, np.float32), name=n)
         for n, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


if __name__ == "__main__":
    params, accuracy = train()
    np.savez(WEIGHTS, **params)
    print(f"test accuracy {accuracy:.4f}; wrote {WEIGHTS}")
