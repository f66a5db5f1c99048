#!/usr/bin/env python3
"""PyTorch-exported ONNX models on a Linux board's CPU: ours beside onnxruntime, 1 and N threads.

    python3 benchmarks/onnx_cpu.py [--dir benchmarks/results/onnx_models] [--models a,b]
                                   [--threads 2] [--runs 20] [--relax]

Models: what `benchmarks/onnx_models.py` exported (torchvision architectures, random weights).
Ours: `edge-sdk`'s linux-x86_64 board, the model loaded as a user loads it (`edge_sdk.load`:
translated onto the operator library's operators where it can be, else TVM's Relax importer),
compiled by TVM's LLVM backend for this CPU, timed by the linux template's runner (its own p50
over --runs, at 1 and at --threads threads). ``--relax`` also times the model through TVM's
Relax importer and legalized kernels (the route every ONNX model took before). onnxruntime
(PyPI): an InferenceSession with the same thread counts (intra-op; inter-op 1), default graph
optimizations. Each figure is the lowest of 3 p50s taken a few seconds apart. Our output is
checked against onnxruntime's (1e-4 of the output's range). Prints the machine, a table;
writes benchmarks/results/onnx_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edge_sdk  # noqa: E402
from benchmarks import machine  # noqa: E402
from benchmarks.onnx_light import onnxruntime_timed  # noqa: E402
from edge_sdk.project.boards import get_board  # noqa: E402
from edge_sdk.project.generate import generate_project  # noqa: E402

ROUNDS = 3


def model_inputs(graph) -> list[np.ndarray]:
    """One input per model input, seeded: floats from a normal distribution; integers (token
    ids, masks) as a language model takes them: a mask all ones, ids below 1000."""
    rng = np.random.default_rng(0)
    arrays = []
    for i in graph.inputs:
        t = graph.tensor(i)
        if t.dtype.startswith("float"):
            arrays.append(rng.standard_normal(t.shape).astype(t.dtype))
        elif "mask" in t.name:
            arrays.append(np.ones(t.shape, t.dtype))
        else:
            arrays.append(rng.integers(0, 1000, t.shape).astype(t.dtype))
    return arrays


def ours(graph, x: np.ndarray, runs: int, threads: list[int]) -> tuple[list[float], np.ndarray,
                                                                         float]:
    """Our runner's p50 (ms) per thread count, its output, and the compile + build time (s)."""
    board = get_board("linux-x86_64")
    start = time.perf_counter()
    compiled = edge_sdk.api.compile_for(graph, board)
    with tempfile.TemporaryDirectory() as tmp:
        project = generate_project(compiled, board, Path(tmp) / "p", demo=False)
        subprocess.run(["make", "-C", str(project), "-j2"], check=True, capture_output=True)
        build_s = time.perf_counter() - start
        (Path(tmp) / "in.bin").write_bytes(x.tobytes())
        best = []
        for n in threads:
            p50s = []
            for _ in range(ROUNDS):
                out = subprocess.run([str(project / "build" / "runner"),
                                      str(Path(tmp) / "in.bin"), str(Path(tmp) / "out.bin"),
                                      str(runs), str(n)],
                                     check=True, capture_output=True, text=True).stdout
                p50s.append(json.loads(out.strip().splitlines()[-1])["p50_ns"] / 1e6)
                time.sleep(1)
            best.append(min(p50s))
        got = np.frombuffer((Path(tmp) / "out.bin").read_bytes(), np.float32)
    return best, got, build_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT / "benchmarks" / "results" / "onnx_models"))
    ap.add_argument("--models", help="comma-separated names (default: every .onnx in --dir)")
    ap.add_argument("--threads", type=int, default=2, help="the second thread count (default 2)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--relax", action="store_true",
                    help="also time TVM's Relax importer route (the route before)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_cpu.json"))
    args = ap.parse_args()
    paths = sorted(Path(args.dir).glob("*.onnx"))
    if args.models:
        paths = [p for p in paths if p.stem in args.models.split(",")]
    if not paths:
        print(f"onnx_cpu: no .onnx models in {args.dir}: run benchmarks/onnx_models.py first",
              file=sys.stderr)
        return 1
    from edge_sdk.frontend.relax_onnx import load_onnx

    print(machine.banner(), flush=True)
    threads = [1, args.threads]
    rows = []
    failed: dict[str, str] = {}
    for path in paths:
        try:
            graph = edge_sdk.load(path)
        except edge_sdk.EdgeSDKError as err:  # a model neither route takes: say so, go on
            failed[path.stem] = str(err).splitlines()[0][:160]
            print(f"{path.stem}: not compiled: {failed[path.stem]}", flush=True)
            continue
        arrays = model_inputs(graph)
        x = np.concatenate([a.view(np.uint8).ravel() for a in arrays])  # back to back
        ort = [onnxruntime_timed(path, arrays, args.runs, n, every_output=True)
               for n in threads]
        ms, got, build_s = ours(graph, x, args.runs, threads)
        err, offset = 0.0, 0
        for want in ort[0][1]:  # each output's error against its own range
            mine = got[offset:offset + want.size]
            offset += want.size
            err = max(err, float(np.abs(mine - want.ravel()).max() / (np.ptp(want) or 1.0)))
        row = {"model": path.stem, "route": graph.origin, "ours_ms": ms,
               "onnxruntime_ms": [o[0] for o in ort],
               "ratio": [round(a / b, 2) for a, b in zip(ms, (o[0] for o in ort), strict=True)],
               "max_error_of_range": err, "matches": err <= 1e-4,
               "compile_and_build_s": round(build_s, 1)}
        if args.relax and graph.origin != "relax":
            row["relax_ms"], _, _ = ours(load_onnx(path), x, args.runs, threads)
        rows.append(row)
        print(json.dumps(row), flush=True)
    n = args.threads
    print()
    print(f"{'model':<20} {'route':<6} {'ours 1/' + str(n) + ' ms':>16} "
          f"{'ort 1/' + str(n) + ' ms':>16} {'ratio 1/' + str(n):>12} {'relax 1/' + str(n):>16} "
          f"{'ok':>4}")
    for r in rows:
        relax = "/".join(f"{v:.2f}" for v in r["relax_ms"]) if "relax_ms" in r else "-"
        print(f"{r['model']:<20} {r['route']:<6} "
              f"{'/'.join(f'{v:.2f}' for v in r['ours_ms']):>16} "
              f"{'/'.join(f'{v:.2f}' for v in r['onnxruntime_ms']):>16} "
              f"{'/'.join(f'{v:.2f}' for v in r['ratio']):>12} {relax:>16} "
              f"{'yes' if r['matches'] else 'NO':>4}")
    for name, why in failed.items():
        print(f"{name:<20} not compiled: {why}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine.describe(), "threads": threads,
                                          "runs": args.runs, "rows": rows, "failed": failed},
                                         indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
