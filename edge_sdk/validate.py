"""Our outputs against the reference interpreter: LiteRT with its reference kernels.

``edge-sdk run --check`` uses this to say, after the board has run, whether every output equals
what TFLite's reference kernels compute for the same inputs (integer outputs: bit for bit; float
outputs: numpy's ``isclose`` rule, see :func:`compare`). The reference is the oracle of every test
in this project.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import EdgeSDKError, UsageError
from edge_sdk.ir import Graph

FLOAT_RTOL = 1e-5


class CheckFailed(EdgeSDKError):
    """The board's outputs differ from the reference interpreter's."""

    exit_code = 7


class OracleCrashed(EdgeSDKError):
    """The reference interpreter killed its process: the outputs stand, unchecked."""

    exit_code = 8


def contained(oracle: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a forked child process, its result sent back.

    The reference interpreters are C++ that aborts on models it dislikes (LiteRT's reference
    SOFTMAX asserts on a 1000-class int8 input that is flat); run in edge-sdk's own process,
    that ended the command with exit 134, no message, and the board's outputs lost. In a child,
    a crash is a return code. Fork, not spawn, so the child has the models and arrays already
    loaded (and whatever a test replaced). The child's stderr goes to a file whose last line
    joins the message."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    with tempfile.TemporaryFile() as log:
        child = ctx.Process(target=_oracle_child, args=(send, log.fileno(), fn, args, kwargs))
        child.start()
        send.close()
        try:
            status, value = receive.recv()
        except EOFError:
            status, value = "crashed", None
        finally:
            receive.close()
            child.join()
        if status == "crashed":
            log.seek(0)
            said = [line.strip() for line in log.read().decode(errors="replace").splitlines()
                    if line.strip()]
            code = child.exitcode or 0
            how = (f"killed by {signal.Signals(-code).name}" if code < 0
                   else f"exit status {code}")
            raise OracleCrashed(
                f"the reference interpreter crashed on this model: outputs written, not checked "
                f"({oracle}, {how}" + (f": {said[-1][:160]}" if said else "") + ")")
    if status == "error":
        raise value
    return value


def _oracle_child(send: Any, stderr: int, fn: Callable[..., Any], args: tuple,
                  kwargs: dict) -> None:
    os.dup2(stderr, 2)
    faulthandler.disable()  # a crash's Python traceback (pytest, PYTHONFAULTHANDLER) is noise here
    try:
        reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
    except EdgeSDKError as err:
        reply = ("error", err)
    except Exception as err:  # whatever the interpreter's Python layer raises
        reply = ("error", UsageError(f"the reference interpreter failed on this model "
                                     f"({type(err).__name__}: {str(err)[:160]}); outputs "
                                     "written, not checked"))
    send.send(reply)
    send.close()


def reference_outputs(model: Path, inputs: list[np.ndarray],
                      shapes: list[tuple[int, ...]] | None = None) -> list[np.ndarray]:
    """LiteRT's outputs (BUILTIN_REF: the reference kernels), one ``(batch, *shape)`` array per
    model output, for ``inputs`` (one ``(batch, size)`` array per model input, already in the
    inputs' types). ``shapes``: the inputs' shapes when the model was compiled at others than
    the file stores (``--input-shape``): LiteRT resizes to them first."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_path=str(model),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        for detail, shape in zip(it.get_input_details(), shapes or [], strict=False):
            if tuple(detail["shape"]) != tuple(shape):
                it.resize_tensor_input(detail["index"], list(shape), strict=True)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"--check: LiteRT cannot run {model.name} ({first}); "
                         "compare the outputs with your own reference instead") from None
    ins, outs = it.get_input_details(), it.get_output_details()
    results: list[list[np.ndarray]] = [[] for _ in outs]
    for sample in range(len(inputs[0])):
        for detail, x in zip(ins, inputs, strict=True):
            it.set_tensor(detail["index"], x[sample].reshape(detail["shape"]).astype(
                detail["dtype"]))
        it.invoke()
        for k, detail in enumerate(outs):
            results[k].append(it.get_tensor(detail["index"]).copy())
    return [np.stack(r) for r in results]


def compare(ours: np.ndarray, expected: np.ndarray, reference: str = "LiteRT BUILTIN_REF",
            rtol: float = FLOAT_RTOL) -> dict:
    """How ``ours`` differs from ``expected``: counts, largest error, and the verdict.

    Float outputs pass where ``|ours - ref| <= atol + rtol * |ref|`` (numpy's ``isclose``), with
    ``atol = rtol * max|ref|`` over that sample's output: a purely relative rule fails correct
    results near zero (a sum in another order is off by ~1e-7 of the output's magnitude, which
    is all of a value near 0), and one oracle's own approximations (onnxruntime's Sigmoid for
    very negative inputs) are off by more than 1e-4 of a tiny value. NaN equals NaN, and an
    infinity equals the same infinity."""
    ours = ours.reshape(expected.shape)
    floating = np.issubdtype(expected.dtype, np.floating)
    if floating:
        ref = expected.astype(np.float64)
        finite = np.where(np.isfinite(ref), np.abs(ref), 0.0)
        per_sample = finite.reshape(len(ref), -1).max(axis=1, initial=0.0) if ref.ndim else finite
        atol = rtol * np.reshape(per_sample, (-1,) + (1,) * (ref.ndim - 1))
        close = np.isclose(ours.astype(np.float64), ref, rtol=rtol, atol=atol, equal_nan=True)
        differing = int(np.count_nonzero(~close))
    else:
        differing = int(np.count_nonzero(ours != expected))
    with np.errstate(invalid="ignore"):
        error = np.abs(ours.astype(np.float64) - expected.astype(np.float64))
    error = np.where(np.isnan(error), 0.0, error)  # NaN against NaN; a lone NaN is counted above
    result = {"reference": reference, "elements": int(expected.size),
              "differing": differing, "max_abs_error": float(error.max(initial=0.0)),
              "match": differing == 0,
              "rule": (f"|ours - ref| <= {rtol:g} * max|ref| + {rtol:g} * |ref|, per sample"
                       if floating else "bit-exact")}
    if floating:
        tiny = np.finfo(np.float64).tiny
        with np.errstate(invalid="ignore", divide="ignore"):
            result["max_error_vs_range"] = float(np.nan_to_num(
                error / np.maximum(atol / rtol, tiny)).max(initial=0.0))
            result["max_rel_error"] = float(np.nan_to_num(
                error / np.maximum(np.abs(expected.astype(np.float64)), tiny)).max(initial=0.0))
    return result


# Float ONNX models: TVM's kernels sum in their own order (and LLVM fuses multiply-adds), so
# the bar is the 1e-4 relative, not LiteRT's 1e-5.
ONNX_RTOL = 1e-4


def onnx_reference_outputs(graph: Graph, inputs: list[np.ndarray]
                           ) -> tuple[list[np.ndarray], str]:
    """The oracle's outputs for each sample of an ONNX model, and the oracle's name:
    onnxruntime (one thread, no graph rewrites) when it is installed (``pip install
    .[dev]``), else the ``onnx`` package's own ReferenceEvaluator (the operators'
    specification in code, no extra dependency, but slow on large models), which also
    takes the old opsets onnxruntime no longer implements."""
    import onnx

    proto = onnx.load(str(graph.source))
    initializers = {i.name for i in proto.graph.initializer}
    names = [i.name for i in proto.graph.input if i.name not in initializers]
    shapes = [graph.tensor(i).shape for i in graph.inputs]
    run, oracle = None, "ONNX ReferenceEvaluator"
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        run = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"]).run
        oracle = "onnxruntime"
    except ImportError:  # not installed
        pass
    except Exception:  # onnxruntime lacks some old opsets (Gemm-6): the evaluator takes them
        pass
    results: list[list[np.ndarray]] = []
    try:
        if run is None:
            from onnx.reference import ReferenceEvaluator

            run = ReferenceEvaluator(proto).run
        for sample in range(len(inputs[0])):
            feeds = {n: x[sample].reshape(shape)
                     for n, x, shape in zip(names, inputs, shapes, strict=True)}
            results.append([np.asarray(v) for v in run(None, feeds)])
    except Exception as err:  # either oracle raises whatever its operator code raises
        raise UsageError(f"--check: {oracle} cannot run {Path(str(graph.source)).name} "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:100]})") from None
    return [np.stack([r[k] for r in results]) for k in range(len(results[0]))], oracle


def check_run(graph: Graph, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> dict:
    """Compare a run's outputs with the reference for the same (already quantized) inputs: the
    first output's figures at the top, each output's under ``outputs`` (the verdict covers all).
    """
    if graph.source is None:
        raise UsageError("--check needs the model file: load the model from a .tflite path")
    if graph.from_onnx:
        expected, oracle = contained("onnxruntime", onnx_reference_outputs, graph, inputs)
        each = [compare(ours, ref, reference=oracle, rtol=ONNX_RTOL)
                for ours, ref in zip(outputs, expected, strict=True)]
    else:
        expected = contained("LiteRT", reference_outputs, graph.source, inputs,
                             [graph.tensor(i).shape for i in graph.inputs])
        each = [compare(ours, ref) for ours, ref in zip(outputs, expected, strict=True)]
    result = dict(each[0])
    result["match"] = all(e["match"] for e in each)
    if len(each) > 1:
        result["outputs"] = each
        result["differing"] = sum(e["differing"] for e in each)
        result["elements"] = sum(e["elements"] for e in each)
    return result


def reference_tensors(model: Path, inputs: list[np.ndarray], tensors: list[int],
                      fresh_state: bool = False) -> list[np.ndarray]:
    """LiteRT's value of each of ``tensors`` (``(batch, *shape)``), every intermediate kept
    (``experimental_preserve_all_tensors``), for ``inputs`` as in :func:`reference_outputs`.
    ``fresh_state``: each sample starts from zeroed variable tensors (an LSTM's state)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_path=str(model), experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"validate: LiteRT cannot run {model.name} ({first}); compare with "
                         "your own reference instead (`edge-sdk run --output`)") from None
    values: list[list[np.ndarray]] = [[] for _ in tensors]
    for sample in range(len(inputs[0])):
        if fresh_state:
            it.reset_all_variables()
        for detail, x in zip(it.get_input_details(), inputs, strict=True):
            it.set_tensor(detail["index"], x[sample].reshape(detail["shape"]).astype(
                detail["dtype"]))
        it.invoke()
        for k, t in enumerate(tensors):
            values[k].append(it.get_tensor(t).copy())
    return [np.stack(v) for v in values]


def layer_report(layers: list[dict], ours: list[np.ndarray], theirs: list[np.ndarray]) -> dict:
    """Each layer's comparison (``layers`` gives index, op, name) and the first that differs."""
    rows = []
    for layer, got, want in zip(layers, ours, theirs, strict=True):
        rows.append({**layer, **compare(got, want)})
    first = next((r for r in rows if not r["match"]), None)
    return {"reference": "LiteRT BUILTIN_REF (all tensors preserved)", "layers": rows,
            "match": first is None,
            "first_divergence": None if first is None else {
                k: first[k] for k in ("step", "index", "op", "name")}}
