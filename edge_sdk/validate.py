"""Our outputs against the reference interpreter: LiteRT with its reference kernels.

``edge-sdk run --check`` uses this to say, after the board has run, whether every output equals
what TFLite's reference kernels compute for the same inputs (integer outputs: bit for bit; float
outputs: within a relative 1e-5). The reference is the oracle of every test in this project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_sdk.errors import EdgeSDKError, UsageError
from edge_sdk.frontend.tflite import Graph

FLOAT_RTOL = 1e-5


class CheckFailed(EdgeSDKError):
    """The board's outputs differ from the reference interpreter's."""

    exit_code = 7


def reference_outputs(model: Path, batch: np.ndarray) -> np.ndarray:
    """LiteRT's outputs (BUILTIN_REF: the reference kernels) for each input of ``batch``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_path=str(model),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"--check: LiteRT cannot run {model.name} ({first}); "
                         "compare the outputs with your own reference instead") from None
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results = []
    for x in batch:
        it.set_tensor(inp["index"], x.reshape(inp["shape"]).astype(inp["dtype"]))
        it.invoke()
        results.append(it.get_tensor(out["index"]).copy())
    return np.stack(results)


def compare(ours: np.ndarray, expected: np.ndarray) -> dict:
    """How ``ours`` differs from ``expected``: counts, largest error, and the verdict."""
    ours = ours.reshape(expected.shape)
    floating = np.issubdtype(expected.dtype, np.floating)
    if floating:
        close = np.isclose(ours, expected, rtol=FLOAT_RTOL, atol=0.0)
        differing = int(np.count_nonzero(~close))
    else:
        differing = int(np.count_nonzero(ours != expected))
    error = np.abs(ours.astype(np.float64) - expected.astype(np.float64))
    result = {"reference": "LiteRT BUILTIN_REF", "elements": int(expected.size),
              "differing": differing, "max_abs_error": float(error.max(initial=0.0)),
              "match": differing == 0,
              "rule": f"relative error <= {FLOAT_RTOL}" if floating else "bit-exact"}
    if floating:
        scale = np.maximum(np.abs(expected.astype(np.float64)), np.finfo(np.float64).tiny)
        result["max_rel_error"] = float((error / scale).max(initial=0.0))
    return result


def check_run(graph: Graph, batch: np.ndarray, outputs: np.ndarray) -> dict:
    """Compare a run's outputs with the reference for the same (already quantized) inputs."""
    if graph.source is None:
        raise UsageError("--check needs the model file: load the model from a .tflite path")
    return compare(outputs, reference_outputs(graph.source, batch))
