"""Post-training INT8 quantization: float ``.tflite`` (or ONNX) in, full-integer ``.tflite`` out.

    result = edge_sdk.quantize("model_float.tflite", calibration=samples, method="kl")
    Path("model_int8.tflite").write_bytes(result.model)
    result.report   # per-layer ranges, scales and SQNR; agreement with the float model

The output follows TFLite's int8 quantization spec, so LiteRT, TFLite Micro and edge-sdk's own
compiler all run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_sdk.compiler.quantization import quantize_array
from edge_sdk.errors import ModelError, UsageError
from edge_sdk.frontend.tflite import Graph, parse
from edge_sdk.quantize.calibration import _interpreter, check_samples, choose_range, collect
from edge_sdk.quantize.rewrite import activation_params, build_int8, fuse

__all__ = ["QuantizeResult", "load_calibration", "quantize"]


@dataclass
class QuantizeResult:
    model: bytes = field(repr=False)
    report: dict = field(repr=False)


def load_calibration(source: str | Path) -> list[np.ndarray]:
    """A ``.npy`` file holding a batch (first axis = samples), or a directory of ``.npy`` files."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise UsageError(f"{path} holds no .npy files")
        return [np.load(f, allow_pickle=False) for f in files]
    if not path.is_file():
        raise UsageError(f"calibration data {path} does not exist")
    try:
        batch = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} as .npy: {err}") from None
    return list(batch)


def _read_model(model: str | Path | bytes) -> tuple[bytes, str, tuple[int, ...] | None]:
    """Float TFLite bytes, a name, and the ONNX input shape when the model came from ONNX."""
    if isinstance(model, bytes):
        return model, "model", None
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: check the path")
    if path.suffix.lower() == ".onnx":
        import onnx

        from edge_sdk.frontend.onnx import onnx_to_tflite

        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type
        shape = tuple(d.dim_value or 1 for d in dims.shape.dim)
        return onnx_to_tflite(path), path.stem, shape
    return path.read_bytes(), path.stem, None


def _sqnr(reference: np.ndarray, approx: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - approx) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0.0:
        return float("inf")
    return float(10.0 * np.log10(max(signal, 1e-30) / noise))


def _dequantize(it, index: int) -> np.ndarray:
    detail = next(d for d in it.get_tensor_details() if d["index"] == index)
    value = it.get_tensor(index)
    if value.dtype == np.float32:
        return value
    scale, zp = detail["quantization"]
    return (value.astype(np.float64) - zp) * scale


def evaluate(float_model: bytes, int8_model: bytes, samples: list[np.ndarray],
             tensor_map: dict[int, int], layers: list[dict]) -> dict:
    """Run both models on ``samples``: per-layer SQNR, top-1 agreement, max output error."""
    f_it, q_it = _interpreter(float_model), _interpreter(int8_model)
    f_in = f_it.get_input_details()[0]
    f_out = f_it.get_output_details()[0]["index"]
    q_in = q_it.get_input_details()[0]
    q_out = q_it.get_output_details()[0]["index"]
    ref_layers: dict[int, list] = {layer["tensor"]: [] for layer in layers}
    got_layers: dict[int, list] = {layer["tensor"]: [] for layer in layers}
    agree, max_err = 0, 0.0
    for x in samples:
        f_it.set_tensor(f_in["index"], x.astype(np.float32))
        f_it.invoke()
        if q_in["dtype"] == np.float32:
            q_it.set_tensor(q_in["index"], x.astype(np.float32))
        else:
            scale, zp = q_in["quantization"]
            q_it.set_tensor(q_in["index"], quantize_array(x, scale, zp))
        q_it.invoke()
        ref, got = f_it.get_tensor(f_out), _dequantize(q_it, q_out)
        agree += int(np.argmax(ref.reshape(-1)) == np.argmax(got.reshape(-1)))
        max_err = max(max_err, float(np.max(np.abs(ref - got))))
        for t in ref_layers:
            ref_layers[t].append(f_it.get_tensor(t))
            got_layers[t].append(_dequantize(q_it, tensor_map[t]))
    for layer in layers:
        t = layer["tensor"]
        sqnr = _sqnr(np.stack(ref_layers[t]), np.stack(got_layers[t]))
        layer["sqnr_db"] = round(sqnr, 2) if np.isfinite(sqnr) else None
    return {"samples": len(samples), "top1_agreement": agree / len(samples),
            "max_abs_error": max_err}


def quantize(model: str | Path | bytes, calibration: Iterable[np.ndarray] | str | Path,
             method: str = "minmax", percentile: float = 99.99, per_channel: bool = True,
             skip_layers: Iterable[int] = (), float_io: bool = False, progress: bool = True,
             evaluation: Iterable[np.ndarray] | None = None) -> QuantizeResult:
    """Quantize a float model to full INT8 from calibration data (see module docstring)."""
    raw, name, onnx_shape = _read_model(model)
    graph: Graph = parse(raw, name=name)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelError("edge-sdk quantizes single-input, single-output models")
    tin = graph.tensor(graph.inputs[0])
    if tin.dtype != "float32":
        raise ModelError(f"{name} takes {tin.dtype} input: it is already quantized")
    if isinstance(calibration, (str, Path)):
        calibration = load_calibration(calibration)
    if onnx_shape is not None:  # ONNX samples come NCHW; the converted model takes NHWC
        from edge_sdk.frontend.onnx import to_model_layout

        calibration = [to_model_layout(np.asarray(x).reshape(onnx_shape), onnx_shape)
                       if np.asarray(x).size == np.prod(onnx_shape) else x for x in calibration]
        if evaluation is not None:
            evaluation = [to_model_layout(np.asarray(x).reshape(onnx_shape), onnx_shape)
                          if np.asarray(x).size == np.prod(onnx_shape) else x
                          for x in evaluation]
    samples = check_samples(calibration, tin.shape)
    skip = set(int(i) for i in skip_layers)
    unknown = skip - {o.index for o in graph.operators}
    if unknown:
        raise UsageError(f"--skip-layers {sorted(unknown)}: the model has operators "
                         f"0..{len(graph.operators) - 1}")
    ops = fuse(graph)
    tensors = sorted({t for o in ops for t in (*o.inputs, *o.outputs)
                      if t >= 0 and t < len(graph.tensors) and not graph.tensor(t).is_constant})
    stats = collect(raw, samples, tensors, progress=progress)
    chosen = {t: choose_range(stats[t], method, percentile) for t in tensors}
    ranges = {t: (lo, hi) for t, (lo, hi, _) in chosen.items()}
    params = activation_params(graph, ops, ranges, skip)
    int8_model, tensor_map = build_int8(graph, ops, params, skip, per_channel, float_io)

    layers = []
    for o in ops:
        t = o.outputs[0]
        p = params[t]
        layers.append({"index": o.index, "op": o.opcode, "name": graph.tensor(t).short_name,
                       "tensor": t, "float": o.index in skip, "range_method": chosen[t][2],
                       "range": [round(p.rmin, 6), round(p.rmax, 6)],
                       "scale": p.scale, "zero_point": p.zero_point})
    held_out = samples if evaluation is None else check_samples(evaluation, tin.shape)
    end_to_end = evaluate(raw, int8_model, held_out[:200], tensor_map, layers)
    for layer in layers:
        layer.pop("tensor")
    report = {"model": name, "method": method,
              "input_layout": "NHWC (converted from the ONNX model's NCHW)" if onnx_shape
              else "as the model",
              "percentile": percentile if method == "percentile" else None,
              "per_channel": per_channel, "float_io": float_io, "skip_layers": sorted(skip),
              "calibration_samples": len(samples), "end_to_end": end_to_end, "layers": layers}
    return QuantizeResult(int8_model, report)
