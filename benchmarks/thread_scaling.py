#!/usr/bin/env python3
"""Thread scaling of the Linux runner: the same bundle at 1, 2, 4, 8 ... threads.

    python3 benchmarks/thread_scaling.py                 # prepare and run here
    python3 benchmarks/thread_scaling.py --prepare-only  # runners + expected outputs in
                                                         # build/thread_bundles
    python3 benchmarks/thread_scaling.py --run-only      # on a many-core machine (no TVM
                                                         # needed: plain static executables)

Each model is compiled for the linux-x86_64 board's kernel set (cpu-avx2) but for a generic
AVX2 CPU (LLVM ``x86-64-v3`` instead of this machine's own), so the static runner also runs on a
machine with another x86-64 CPU. Outputs are checked byte for byte against LiteRT's reference
kernels at every thread count. Latency: the runner's p50 over N runs. Prints a table; writes
benchmarks/results/thread_scaling.json (or $OUT/thread_scaling.json where $OUT is set).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ROOT / "build" / "thread_bundles"
MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"


def prepare() -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import edge_sdk
    from benchmarks.mobilenet_v2 import build as mobilenet_v2
    from edge_sdk.pipeline import compile_graph
    from edge_sdk.project.boards import get_board
    from edge_sdk.project.generate import generate_project
    from tests.conftest import reference

    board = get_board("linux-x86_64")
    board = dataclasses.replace(board, linux={**board.linux, "mcpu": "x86-64-v3"})
    shutil.rmtree(BUNDLES, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        mbv2 = Path(tmp) / "mobilenet_v2_224_int8.tflite"
        mbv2.write_bytes(mobilenet_v2())
        for path in [mbv2, MODELS / "vww_96_int8.tflite",
                     MODELS / "pretrainedResnet_quant.tflite"]:
            graph = edge_sdk.load(path)
            compiled = compile_graph(graph, external_kernels=True, isa="cpu-avx2")
            project = generate_project(compiled, board, Path(tmp) / path.stem, demo=False)
            subprocess.run(["make", "-C", str(project)], check=True, capture_output=True)
            out = BUNDLES / path.stem
            out.mkdir(parents=True)
            shutil.copy2(project / "build" / "runner", out / "runner")
            x = edge_sdk.api.packed_batch(graph, None)
            (out / "in.bin").write_bytes(x.tobytes())
            want = reference(path, np.frombuffer(x.tobytes(), np.int8).reshape(
                1, *graph.tensor(graph.inputs[0]).shape))
            (out / "want.bin").write_bytes(want.tobytes())
            print(f"prepared {path.stem}", flush=True)


def run(runs: int, counts: list[int]) -> int:
    rows = []
    cpus = os.cpu_count() or 1
    counts = [t for t in counts if t <= cpus]
    for bundle in sorted(p for p in BUNDLES.iterdir() if p.is_dir()):
        row = {"model": bundle.name, "p50_ms": {}, "exact": True}
        n = runs if "mobilenet" in bundle.name else runs * 10
        for t in counts:
            out = bundle / "out.bin"
            stdout = subprocess.run([str(bundle / "runner"), str(bundle / "in.bin"), str(out),
                                     str(n), str(t)], check=True, capture_output=True,
                                    text=True).stdout
            stats = json.loads(stdout.strip().splitlines()[-1])
            row["p50_ms"][t] = stats["p50_ns"] / 1e6
            row["exact"] &= out.read_bytes() == (bundle / "want.bin").read_bytes()
        rows.append(row)
    print(f"{'model (p50 ms)':<26}" + "".join(f"{f'{t} thr':>10}" for t in counts)
          + f"{'speed-up':>10}{'exact':>7}")
    for r in rows:
        times = [r["p50_ms"][t] for t in counts]
        print(f"{r['model']:<26}" + "".join(f"{v:>10.3f}" for v in times)
              + f"{times[0] / min(times):>9.2f}x{('yes' if r['exact'] else 'NO'):>7}")
    target = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "results"
    target.mkdir(parents=True, exist_ok=True)
    (target / "thread_scaling.json").write_text(json.dumps(
        {"cpus": cpus, "runs": runs, "results": rows}, indent=2) + "\n")
    print(f"\n{cpus} CPUs; wrote {target / 'thread_scaling.json'}")
    return 0 if all(r["exact"] for r in rows) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--run-only", action="store_true")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", default="1,2,4,8,16")
    args = ap.parse_args()
    if not args.run_only:
        prepare()
    if args.prepare_only:
        return 0
    return run(args.runs, [int(t) for t in args.threads.split(",")])


if __name__ == "__main__":
    sys.exit(main())
