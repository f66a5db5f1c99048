#!/usr/bin/env python3
"""ONNX models on the Linux path vs onnxruntime, one thread, on this machine.

    python3 benchmarks/onnx_light.py [--runs 10] [--models squeezenet,resnet50]

Models: the `light/` models that ship inside the `onnx` wheel (AlexNet, DenseNet-121,
Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512): the real architectures,
with weights made by `ConstantOfShape` nodes (every weight of a layer equal), and one expected
output each. Both sides do every multiply of every layer: we keep such a weight as one value
read through strides of 0 (no flash), onnxruntime folds it into a full tensor; neither skips
work because the values are equal.

Ours: `edge_sdk.api.compile_for` for board linux-x86_64 (TVM's Relax importer and legalized
kernels, compiled by TVM's LLVM backend for this CPU, the linux template's runner), latency the
runner's own p50 over N runs, one thread; onnxruntime (PyPI, `pip install .[bench]`): an
InferenceSession with one intra-op and one inter-op thread and its default graph
optimizations, `run()` timed over N runs. Each figure is the lowest of ROUNDS p50s taken a few
seconds apart (this 2-core VM's speed drifts by up to ~40% between minutes). Our output is
checked against the model's expected output (1e-4 relative). Prints a table; writes
benchmarks/results/onnx_light.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edge_sdk  # noqa: E402
from edge_sdk.project.boards import get_board  # noqa: E402
from edge_sdk.project.generate import generate_project  # noqa: E402

ROUNDS = 3
MODELS = ["squeezenet", "shufflenet", "bvlc_alexnet", "zfnet512", "inception_v1",
          "inception_v2", "resnet50", "densenet121", "vgg19"]


def light_dir() -> Path:
    import onnx

    return Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def model_input(graph) -> np.ndarray:
    """The input the ONNX backend runner makes for these models: ``arange(n) / n``."""
    (shape,) = [graph.tensor(i).shape for i in graph.inputs]
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def ours(path: Path, x: np.ndarray, runs: int) -> tuple[float, np.ndarray, float]:
    """Our runner's p50 (ms), its output, and the compile + build time (s)."""
    board = get_board("linux-x86_64")
    start = time.perf_counter()
    graph = edge_sdk.load(path)
    compiled = edge_sdk.api.compile_for(graph, board)
    with tempfile.TemporaryDirectory() as tmp:
        project = generate_project(compiled, board, Path(tmp) / "p", demo=False)
        subprocess.run(["make", "-C", str(project)], check=True, capture_output=True)
        build_s = time.perf_counter() - start
        (Path(tmp) / "in.bin").write_bytes(x.tobytes())
        p50s = []
        for _ in range(ROUNDS):
            out = subprocess.run([str(project / "build" / "runner"), str(Path(tmp) / "in.bin"),
                                  str(Path(tmp) / "out.bin"), str(runs), "1"],
                                 check=True, capture_output=True, text=True).stdout
            p50s.append(json.loads(out.strip().splitlines()[-1])["p50_ns"] / 1e6)
            time.sleep(2)
        got = np.frombuffer((Path(tmp) / "out.bin").read_bytes(), np.float32)
    return min(p50s), got, build_s


def onnxruntime_p50_ms(path: Path, x: np.ndarray, runs: int) -> float:
    return onnxruntime_timed(path, x, runs)[0]


def onnxruntime_timed(path: Path, x: np.ndarray | list[np.ndarray], runs: int,
                      threads: int = 1, every_output: bool = False) -> tuple[float, Any]:
    """onnxruntime's lowest p50 (ms) of ROUNDS over ``runs`` runs, ``threads`` intra-op
    threads and one inter-op thread, and its first output (``every_output``: the list of
    them). ``x``: the input, or one array per input in the model's order."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    arrays = x if isinstance(x, list) else [x]
    feed = {i.name: a for i, a in zip(session.get_inputs(), arrays, strict=True)}
    outs = [np.asarray(o) for o in session.run(None, feed)]
    out = outs if every_output else outs[0]
    p50s = []
    for _ in range(ROUNDS):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            session.run(None, feed)
            times.append(time.perf_counter_ns() - t0)
        p50s.append(float(np.median(times)) / 1e6)
        time.sleep(2)
    return min(p50s), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--models", help="comma-separated names (default: all nine)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_light.json"))
    args = ap.parse_args()
    try:
        import onnxruntime
    except ImportError:
        print("onnx_light: onnxruntime is not installed; run `pip install -e .[bench]`",
              file=sys.stderr)
        return 1
    from onnx import load_tensor, numpy_helper

    rows = []
    for name in args.models.split(",") if args.models else MODELS:
        path = light_dir() / f"light_{name}.onnx"
        graph = edge_sdk.load(path)
        x = model_input(graph)
        expected = numpy_helper.to_array(load_tensor(str(path.with_name(
            f"light_{name}_output_0.pb"))))
        ms, got, build_s = ours(path, x, args.runs)
        ok = bool(np.allclose(got.reshape(expected.shape), expected, rtol=1e-4, atol=1e-5))
        ort_ms = onnxruntime_p50_ms(path, x, args.runs)
        rows.append({"model": name, "ours_ms": round(ms, 3), "onnxruntime_ms": round(ort_ms, 3),
                     "ratio": round(ms / ort_ms, 2), "matches_expected": ok,
                     "compile_and_build_s": round(build_s, 1)})
        print(f"{name}: ours {ms:.2f} ms, onnxruntime {ort_ms:.2f} ms", flush=True)
    print()
    print(f"{'model':<14} {'ours ms':>10} {'onnxruntime ms':>15} {'ours/ort':>9} "
          f"{'matches':>8} {'build s':>8}")
    for r in rows:
        print(f"{r['model']:<14} {r['ours_ms']:>10.2f} {r['onnxruntime_ms']:>15.2f} "
              f"{r['ratio']:>9.2f} {'yes' if r['matches_expected'] else 'NO':>8} "
              f"{r['compile_and_build_s']:>8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "machine": os.uname().machine, "cpus": os.cpu_count(), "threads": 1,
        "runs": args.runs, "rounds": ROUNDS, "onnxruntime": onnxruntime.__version__,
        "models": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if all(r["matches_expected"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
