"""Post-training INT8 quantization: float ``.tflite`` (or ONNX) in, full-integer ``.tflite`` out.

    result = edge_sdk.quantize("model_float.tflite", calibration=samples, method="kl")
    Path("model_int8.tflite").write_bytes(result.model)
    result.report   # per-layer ranges, scales and SQNR; agreement with the float model

The output follows TFLite's int8 quantization spec, so LiteRT, TFLite Micro and edge-sdk's own
compiler all run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_sdk.compiler.fold import fold_constants
from edge_sdk.compiler.quantization import quantize_array
from edge_sdk.errors import ModelError, UsageError
from edge_sdk.frontend.tflite import parse
from edge_sdk.ir import Graph
from edge_sdk.model_io import input_key, input_list, output_key
from edge_sdk.quantization.calibration import _interpreter, check_samples, choose_range, collect
from edge_sdk.quantization.rewrite import FLOAT_ONLY, activation_params, build_int8, fuse

__all__ = ["QuantizeResult", "load_calibration", "quantize"]


@dataclass
class QuantizeResult:
    model: bytes = field(repr=False)
    report: dict = field(repr=False)


Calibration = Iterable[np.ndarray] | Mapping[str, np.ndarray] | str | Path


def load_calibration(source: str | Path) -> list[np.ndarray] | dict[str, np.ndarray]:
    """A ``.npy`` file holding a batch (first axis = samples), a directory of ``.npy`` files (one
    sample each), or an ``.npz`` with one batch per model input (keys ``input_0``, ``input_1``,
    ... or the inputs' tensor names; the same sample count in each)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise UsageError(f"{path} holds no .npy files")
        return [np.load(f, allow_pickle=False) for f in files]
    if not path.is_file():
        raise UsageError(f"calibration data {path} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} as .npy or .npz: {err}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            return {k: data[k] for k in data.files}
    return list(data)


def _samples(graph: Graph, calibration: Calibration) -> list[list[np.ndarray]]:
    """Calibration data as samples, each one array per model input (in the model's order).

    One input: an iterable of samples (or a batch array). Several: a mapping of batches keyed
    ``input_k`` or by tensor name, as an ``.npz`` holds them."""
    if isinstance(calibration, (str, Path)):
        calibration = load_calibration(calibration)
    if isinstance(calibration, Mapping):
        batches = input_list(graph, calibration)
        counts = {len(b) for b in batches}
        if len(counts) != 1:
            raise UsageError("the calibration batches hold different numbers of samples "
                             f"({', '.join(str(len(b)) for b in batches)}): give each input "
                             "the same count")
        return [[b[n] for b in batches] for n in range(counts.pop())]
    if len(graph.inputs) != 1:
        raise UsageError(f"the model has {len(graph.inputs)} inputs: give calibration data as "
                         f"an .npz (or a mapping) with keys "
                         f"{', '.join(input_key(i) for i in range(len(graph.inputs)))}")
    return [[x] for x in calibration]


def _read_model(model: str | Path | bytes, nhwc: bool) -> tuple[bytes, str, bool]:
    """Float TFLite bytes, a name, and whether it came from ONNX."""
    if isinstance(model, bytes):
        return model, "model", False
    path = Path(model)
    if path.is_dir():
        raise ModelError(f"{path} is a directory: give the model file")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: check the path")
    if path.suffix.lower() == ".onnx":
        from edge_sdk.frontend.onnx import onnx_to_tflite

        return onnx_to_tflite(path, nhwc=nhwc), path.stem, True
    return path.read_bytes(), path.stem, False


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


def evaluate(float_model: bytes, int8_model: bytes, samples: list[list[np.ndarray]],
             tensor_map: dict[int, int], layers: list[dict], classifier: bool = False) -> dict:
    """Run both models on ``samples``: per-layer SQNR; per output its SQNR, largest error and
    RMS error relative to the float output's RMS; and, for a classifier (one output, a class
    score vector), how often the top-1 class agrees."""
    f_it, q_it = _interpreter(float_model), _interpreter(int8_model)
    f_ins, q_ins = f_it.get_input_details(), q_it.get_input_details()
    f_outs = [d["index"] for d in f_it.get_output_details()]
    q_outs = [d["index"] for d in q_it.get_output_details()]
    ref_layers: dict[int, list] = {layer["tensor"]: [] for layer in layers}
    got_layers: dict[int, list] = {layer["tensor"]: [] for layer in layers}
    ref_outs: list[list[np.ndarray]] = [[] for _ in f_outs]
    got_outs: list[list[np.ndarray]] = [[] for _ in f_outs]
    for sample in samples:
        for f_in, q_in, x in zip(f_ins, q_ins, sample, strict=True):
            f_it.set_tensor(f_in["index"], x.astype(np.float32))
            if q_in["dtype"] == np.float32:
                q_it.set_tensor(q_in["index"], x.astype(np.float32))
            else:
                scale, zp = q_in["quantization"]
                q_it.set_tensor(q_in["index"], quantize_array(x, scale, zp))
        f_it.invoke()
        q_it.invoke()
        for k, (f_out, q_out) in enumerate(zip(f_outs, q_outs, strict=True)):
            ref_outs[k].append(f_it.get_tensor(f_out).astype(np.float64))
            got_outs[k].append(_dequantize(q_it, q_out))
        for t in ref_layers:
            ref_layers[t].append(f_it.get_tensor(t))
            got_layers[t].append(_dequantize(q_it, tensor_map[t]))
    for layer in layers:
        t = layer["tensor"]
        sqnr = _sqnr(np.stack(ref_layers[t]), np.stack(got_layers[t]))
        layer["sqnr_db"] = round(sqnr, 2) if np.isfinite(sqnr) else None
    outputs = []
    for k in range(len(f_outs)):
        ref, got = np.stack(ref_outs[k]), np.stack(got_outs[k])
        sqnr = _sqnr(ref, got)
        rms = float(np.sqrt(np.mean(ref ** 2))) or 1.0
        outputs.append({"output": output_key(k),
                        "sqnr_db": round(sqnr, 2) if np.isfinite(sqnr) else None,
                        "max_abs_error": float(np.max(np.abs(ref - got))),
                        "relative_rms_error": float(np.sqrt(np.mean((ref - got) ** 2))) / rms})
    report = {"samples": len(samples), "outputs": outputs,
              "max_abs_error": max(o["max_abs_error"] for o in outputs)}
    if len(f_outs) == 1 and classifier:
        ref, got = np.stack(ref_outs[0]), np.stack(got_outs[0])
        agree = np.argmax(ref.reshape(len(samples), -1), axis=1) == np.argmax(
            got.reshape(len(samples), -1), axis=1)
        report["top1_agreement"] = float(np.mean(agree))
    return report


def quantize(model: str | Path | bytes, calibration: Calibration,
             method: str = "minmax", percentile: float = 99.99, per_channel: bool = True,
             skip_layers: Iterable[int] = (), float_io: bool = False, progress: bool = True,
             evaluation: Calibration | None = None, nhwc: bool = False) -> QuantizeResult:
    """Quantize a float model to full INT8 from calibration data (see module docstring).

    ``calibration`` (and ``evaluation``): for a one-input model, samples (or a batch, or a
    ``.npy``/directory path); for several inputs, batches keyed ``input_0``, ``input_1``, ...
    (a mapping, or an ``.npz`` path), each in the model's own layout (NCHW for a PyTorch
    export). ``nhwc``: an ONNX model's 4-D inputs and outputs become NHWC in the int8 model
    (no transposes at its edges); calibration data stays NCHW.

    Operators TFLite has no int8 kernel for (local response normalization) stay float, as
    ``skip_layers`` would keep them; the report lists them."""
    raw, name, from_onnx = _read_model(model, nhwc)
    original: Graph = parse(raw, name=name)
    # Constant-only work first: float16 weights behind DEQUANTIZE become float32 constants.
    graph = fold_constants(original)
    for t in graph.inputs:
        if graph.tensor(t).dtype != "float32":
            raise ModelError(f"{name} takes {graph.tensor(t).dtype} input: it is already "
                             "quantized")
    calibration = _samples(graph, calibration)
    if evaluation is not None:
        evaluation = _samples(graph, evaluation)
    shapes = [graph.tensor(t).shape for t in graph.inputs]
    if from_onnx and nhwc:  # samples come in the framework's NCHW; the model takes NHWC
        def to_nhwc(sample: list[np.ndarray]) -> list[np.ndarray]:
            return [np.asarray(x).reshape(s[0], s[3], s[1], s[2]).transpose(0, 2, 3, 1)
                    if len(s) == 4 and np.asarray(x).size == np.prod(s) else x
                    for x, s in zip(sample, shapes, strict=True)]

        calibration = [to_nhwc(s) for s in calibration]
        if evaluation is not None:
            evaluation = [to_nhwc(s) for s in evaluation]
    samples = check_samples(calibration, shapes)
    skip = set(int(i) for i in skip_layers)
    unknown = skip - {o.index for o in graph.operators}
    if unknown:
        raise UsageError(f"--skip-layers {sorted(unknown)}: the model has operators "
                         f"0..{len(original.operators) - 1}"
                         + (" (its DEQUANTIZE of constant weights are folded, not layers)"
                            if len(graph.operators) < len(original.operators) else ""))
    ops = fuse(graph)
    float_only = {o.index for o in ops if o.opcode in FLOAT_ONLY} - skip
    skip |= float_only
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
    held_out = samples if evaluation is None else check_samples(evaluation, shapes)
    end_to_end = evaluate(raw, int8_model, held_out[:200], tensor_map, layers,
                          classifier=is_classifier(graph, ops))
    for layer in layers:
        layer.pop("tensor")
    report = {"model": name, "method": method,
              "input_layout": ("NHWC (the ONNX model's NCHW, transposed)" if from_onnx and nhwc
                               else "as the model"),
              "percentile": percentile if method == "percentile" else None,
              "per_channel": per_channel, "float_io": float_io,
              "skip_layers": sorted(skip - float_only), "float_only_layers": sorted(float_only),
              "calibration_samples": len(samples), "end_to_end": end_to_end, "layers": layers}
    report["warnings"] = quality_warnings(report, samples)
    return QuantizeResult(int8_model, report)


# Ops whose output is a class score vector: top-1 agreement means something only there.
CLASSIFIER_HEADS = ("SOFTMAX", "LOG_SOFTMAX")
# Ops that move or convert a vector without changing which entry is largest.
PASS_THROUGH = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE")
# A layer whose int8 output keeps less than this is mostly noise.
LOW_SQNR_DB = 10.0
FEW_SAMPLES = 20


def is_classifier(graph: Graph, ops: list) -> bool:
    """One output, a vector of class scores made by a softmax: a classifier (its top-1 class
    is the answer). Reshapes after the softmax (ONNX models often end [1, 1000, 1, 1]) and
    float/int conversions are looked through. Anything else (an image, boxes, an
    autoencoder's reconstruction, a regression value) is judged by its error, not an argmax."""
    if len(graph.outputs) != 1:
        return False
    tensor = graph.outputs[0]
    if sum(d > 1 for d in graph.tensor(tensor).shape) != 1:
        return False
    while True:
        producer = next((o for o in ops if tensor in o.outputs), None)
        if producer is None or producer.opcode not in PASS_THROUGH:
            break
        tensor = producer.inputs[0]
    return producer is not None and producer.opcode in CLASSIFIER_HEADS


def _neighbour_correlation(samples: list[list[np.ndarray]]) -> float | None:
    """Mean correlation of neighbouring values in the first input's last axis: real signals
    (images, spectrograms, sensor windows) are smooth, random noise is not."""
    x = np.stack([np.asarray(s[0], np.float64).reshape(-1) for s in samples[:64]])
    if x.shape[1] < 16:
        return None
    a, b = x[:, :-1].reshape(-1), x[:, 1:].reshape(-1)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def quality_warnings(report: dict, samples: list[list[np.ndarray]]) -> list[str]:
    """What a user should look at before trusting the int8 model, one line each."""
    out = []
    if len(samples) < FEW_SAMPLES:
        out.append(f"only {len(samples)} calibration samples: ranges from so few rarely cover "
                   f"real inputs; give {FEW_SAMPLES * 5} or more")
    corr = _neighbour_correlation(samples)
    if corr is not None and abs(corr) < 0.1:
        out.append(f"the calibration data looks like random noise (neighbouring values "
                   f"correlate {corr:.2f}): ranges from noise rarely match real inputs; "
                   "calibrate with real samples")
    for layer in report["layers"]:
        if layer["float"] or layer["sqnr_db"] is None or layer["sqnr_db"] >= LOW_SQNR_DB:
            continue
        out.append(f"layer [{layer['index']}] {layer['op']} '{layer['name']}' keeps "
                   f"{layer['sqnr_db']} dB SQNR in int8 (below {LOW_SQNR_DB:g} dB: its output "
                   "is mostly quantization noise): try --method percentile or kl, more "
                   f"calibration data, or --skip-layers {layer['index']}")
    return out
