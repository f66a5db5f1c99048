#!/usr/bin/env python3
"""ONNX models on the Jetson's CUDA path, run on a real NVIDIA GPU: outputs and latency.

    python3 benchmarks/onnx_cuda.py --prepare-only   # here: bundles in build/onnx_cuda
    python3 benchmarks/onnx_cuda.py --run-only       # on the GPU machine: needs gcc, numpy

Each model is compiled for --board jetson-orin-nano (TVM's Relax importer, its legalized
kernels scheduled by dlight, PTX through NVRTC) and its linux-gpu project is built natively
there (`make CROSS= CPUFLAGS=`): the Jetson's kernels and runner, an x86-64 host build. The GPU
machine has no TVM, so the bundles travel with the expected outputs: each conformance case's
own (pytorch-converted, one input and one output) and each `light/` model's. Float, checked
within 1e-4 relative (1e-5 absolute). Latency: the runner's p50 over N runs of `<model>_run`
(input upload, every launch, output download, synchronous). Writes
benchmarks/results/onnx_cuda.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = ROOT / "build" / "onnx_cuda"
LIGHT = ["squeezenet", "shufflenet", "resnet50", "inception_v1", "bvlc_alexnet"]


def _cases() -> list[tuple[str, Path, np.ndarray, np.ndarray]]:
    import onnx
    from onnx import numpy_helper

    from benchmarks.onnx_light import light_dir

    data = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"
    cases = []
    for folder in sorted(glob.glob(str(data / "pytorch-converted" / "test_*"))):
        sets = Path(folder) / "test_data_set_0"
        ins, outs = sorted(sets.glob("input_*.pb")), sorted(sets.glob("output_*.pb"))
        if len(ins) == 1 and len(outs) == 1:
            x, y = (numpy_helper.to_array(onnx.load_tensor(str(p))) for p in (ins[0], outs[0]))
            cases.append((Path(folder).name, Path(folder) / "model.onnx", x, y))
    for name in LIGHT:
        path = light_dir() / f"light_{name}.onnx"
        y = numpy_helper.to_array(onnx.load_tensor(str(path.with_name(
            f"light_{name}_output_0.pb"))))
        cases.append((f"light_{name}", path, None, y))
    return cases


def prepare() -> None:
    # Here only (the GPU machine has no TVM): onnx_light imports edge-sdk.
    sys.path.insert(0, str(ROOT))
    import edge_sdk
    from benchmarks.onnx_light import model_input
    from edge_sdk.api import compile_for
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.project.boards import get_board
    from edge_sdk.project.generate import generate_project

    board = get_board("jetson-orin-nano")
    shutil.rmtree(BUNDLES, ignore_errors=True)
    BUNDLES.mkdir(parents=True)
    for name, path, x, y in _cases():
        t0 = time.time()
        try:
            graph = edge_sdk.load(path)
            compiled = compile_for(graph, board)
        except EdgeSDKError as err:
            print(f"{name}: refused: {err}")
            continue
        if x is None:  # a light/ model: the ONNX runner's input, arange(n) / n
            x = model_input(graph)
        dest = BUNDLES / name
        generate_project(compiled, board, dest, demo=False)
        np.ascontiguousarray(x).tofile(dest / "inputs.bin")  # its own type (int64 indices)
        np.ascontiguousarray(y, np.float32).tofile(dest / "expected.bin")
        (dest / "bench.json").write_text(json.dumps({
            "model": name, "launches": len(compiled.gpu.device.launches),
            "layers": len(compiled.program.steps), "compile_s": round(time.time() - t0, 1)}))
        print(f"prepared {name} in {time.time() - t0:.1f} s")


def run(runs: int) -> list[dict]:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    rows = []
    for folder in sorted(p for p in BUNDLES.iterdir() if (p / "bench.json").exists()):
        meta = json.loads((folder / "bench.json").read_text())
        subprocess.run(["make", "-s", "-C", str(folder), "CROSS=", "CPUFLAGS="], check=True)
        proc = subprocess.run([str(folder / "build" / "runner"), str(folder / "inputs.bin"),
                               str(folder / "out.bin"), str(runs)],
                              capture_output=True, text=True)
        row = {**meta, "gpu": gpu}
        if proc.returncode:
            row["check"] = f"runner failed: {proc.stderr.strip()[-200:]}"
        else:
            got = np.fromfile(folder / "out.bin", np.float32)
            want = np.fromfile(folder / "expected.bin", np.float32)
            ok = got.shape == want.shape and bool(
                np.allclose(got, want, rtol=1e-4, atol=1e-5, equal_nan=True))
            row["check"] = "match" if ok else "MISMATCH"
            row["ours_p50_ms"] = json.loads(proc.stdout.strip().splitlines()[-1])["p50_ns"] / 1e6
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--run-only", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_cuda.json"))
    args = ap.parse_args()
    if not args.run_only:
        prepare()
    if args.prepare_only:
        return 0
    rows = run(args.runs)
    print(f"\n{'model':<40} {'layers':>6} {'launches':>8} {'check':>9} {'p50 ms':>8}")
    for r in rows:
        p50 = f"{r['ours_p50_ms']:.3f}" if "ours_p50_ms" in r else "-"
        print(f"{r['model']:<40} {r['layers']:>6} {r['launches']:>8} {r['check'][:9]:>9} "
              f"{p50:>8}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runs": args.runs, "models": rows}, indent=2) + "\n")
    print(f"\nmatch: {sum(r['check'] == 'match' for r in rows)} of {len(rows)}")
    return 0 if all(r["check"] == "match" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
