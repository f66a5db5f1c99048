#!/usr/bin/env python3
"""Stateful TFLite models made by TensorFlow's own converter, for tests/test_state_models.py:
stacked int8 LSTMs and streaming models with resource variables (microWakeWord's format).

    pip install tensorflow-cpu==2.18.* tf_keras==2.18.*   # in a venv of its own; not in CI
    TF_USE_LEGACY_KERAS=1 python tests/models/state_models.py   # rewrites tests/models/state/

TensorFlow is heavy, so CI does not install it: the tests load the small files this writes
(random weights, seeded; a few KB each), and LiteRT is their oracle.

- ``lstm_stacked_*``: two or three UNIDIRECTIONAL_SEQUENCE_LSTM layers, full int8 (int16 cell
  state, the converter's cell_clip 10.0 far past the int16 range of a 2^-14 cell scale), whose
  hidden states get non-zero zero points from calibration (the bug this guards: an int8 state
  must start at its zero point, as TFLite's ResetVariableTensor does). ``wide`` calibrates on a
  4x larger input range, so the gates and cell saturate.
- ``stream_int8_state``: two streaming convolutions over time whose past frames live in
  resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE, initialised by CALL_ONCE),
  the variables themselves int8 (``_experimental_variable_quantization``, as microWakeWord
  converts), int8 input, uint8 output through QUANTIZE.
- ``stream_float_state``: the same with float32 variables between DEQUANTIZE and QUANTIZE.
- ``gru_unrolled_int8``: a GRU unrolled over 12 steps (no state: each step is its own
  operators, sharing one set of weights), for the flash its repeated constants must not take.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("state")


def lstm_stacked(units: int, layers: int, spread: float, seed: int) -> bytes:
    import tensorflow as tf

    steps, features = 6, 12
    rng = np.random.default_rng(seed)
    inp = tf.keras.Input((steps, features), batch_size=1)
    x = inp
    for _ in range(layers):
        x = tf.keras.layers.LSTM(units, return_sequences=True)(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(10)(x))
    return _keras_int8(model, rng, (1, steps, features), 0.3, spread)


def gru_unrolled(units: int, steps: int, seed: int) -> bytes:
    """A keyword-spotter-shaped GRU unrolled by Keras: every time step is its own operators,
    all sharing one set of weights (their tensors are shared in the file too)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    features = 10
    inp = tf.keras.Input((steps, features), batch_size=1)
    x = tf.keras.layers.GRU(units, unroll=True)(inp)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(12)(x))
    return _keras_int8(model, rng, (1, steps, features), 0.0, 1.0)


def _keras_int8(model, rng: np.random.Generator, shape: tuple[int, ...], mean: float,
                spread: float) -> bytes:
    """A Keras model with seeded random weights (scaled by fan-in), full int8, calibrated on
    normal inputs of ``mean`` and ``spread``."""
    import tensorflow as tf

    for w in model.weights:
        fan = w.shape[0] if len(w.shape) > 1 else 1
        w.assign(rng.normal(0, 0.6 / np.sqrt(fan), w.shape).astype(np.float32))

    def calibration():
        for _ in range(24):
            yield [rng.normal(mean, spread, shape).astype(np.float32)]

    return _int8(tf.lite.TFLiteConverter.from_keras_model(model), calibration, tf.int8)


def stream(quantized_state: bool, seed: int) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    features, frames, kernel = 10, 3, 5

    class Stream(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.past = tf.Variable(tf.zeros((1, kernel - 1, 1, features)), trainable=False,
                                    name="stream_past")
            self.past2 = tf.Variable(tf.zeros((1, 2, 1, 8)), trainable=False,
                                     name="stream_past2")
            self.w = tf.constant(rng.normal(0, 0.3, (kernel, 1, features, 8)), tf.float32)
            self.b = tf.constant(rng.normal(0, 0.1, (8,)), tf.float32)
            self.w2 = tf.constant(rng.normal(0, 0.3, (3, 1, 8, 4)), tf.float32)
            self.d = tf.constant(rng.normal(0, 0.4, (4 * frames, 2)), tf.float32)

        @tf.function(input_signature=[tf.TensorSpec((1, frames, 1, features), tf.float32)])
        def __call__(self, x):
            full = tf.concat([self.past, x], axis=1)
            self.past.assign(full[:, frames:])
            y = tf.nn.relu(tf.nn.conv2d(full, self.w, 1, "VALID") + self.b)
            full2 = tf.concat([self.past2, y], axis=1)
            self.past2.assign(full2[:, frames:])
            z = tf.nn.relu(tf.nn.conv2d(full2, self.w2, 1, "VALID"))
            return tf.sigmoid(tf.matmul(tf.reshape(z, (1, -1)), self.d))

    module = Stream()
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures=module.__call__)
        conv = tf.lite.TFLiteConverter.from_saved_model(saved)
        conv.experimental_enable_resource_variables = True
        conv._experimental_variable_quantization = quantized_state

        def calibration():
            for _ in range(24):
                yield [rng.normal(0.5, 1.0, (1, frames, 1, features)).astype(np.float32)]

        return _int8(conv, calibration, tf.uint8)


def _int8(conv, calibration, output_type) -> bytes:
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = calibration
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = output_type
    return conv.convert()


MODELS = {
    "lstm_stacked_int8": lambda: lstm_stacked(24, 2, 1.0, seed=1),
    "lstm_stacked_wide_int8": lambda: lstm_stacked(16, 3, 4.0, seed=2),
    "gru_unrolled_int8": lambda: gru_unrolled(48, 12, seed=5),
    "stream_int8_state": lambda: stream(True, seed=3),
    "stream_float_state": lambda: stream(False, seed=4),
}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, make in MODELS.items():
        path = OUT / f"{name}.tflite"
        path.write_bytes(make())
        print(f"wrote {path} ({path.stat().st_size} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
