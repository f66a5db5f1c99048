#!/usr/bin/env python3
"""The Linux (Cortex-A) path vs LiteRT on this machine, as the stand-in for a Raspberry Pi.

    python3 benchmarks/cortex_a_host.py [--runs 200]

Ours: each MLPerf Tiny int8 model compiled exactly as for a Pi (kernels through TVM's LLVM
backend, the linux template's runner), but for x86-64 (board linux-x86_64); latency is the
runner's own p50 over N runs. LiteRT: ai-edge-litert, one thread, its default resolver (XNNPACK),
`invoke()` timed over N runs; BUILTIN_REF beside it (the reference kernels we match bit for
bit). vww_96_float is the MobileNet-class float model; kws_ref_model_float32 is a hybrid model
(int8 weights in float layers), which edge-sdk refuses. Prints a table; writes
benchmarks/results/cortex_a_host.json.
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
from edge_sdk.compiler import compile_graph  # noqa: E402
from edge_sdk.project.boards import get_board  # noqa: E402
from edge_sdk.project.generate import generate_project  # noqa: E402

MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"
INT8 = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]
FLOAT = ["kws_ref_model_float32", "vww_96_float", "pretrainedResnet", "ad01_fp32"]


def litert_p50_ms(path: Path, runs: int, reference: bool) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_path=str(path), num_threads=1, **kw)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        it.invoke()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1e6


def ours_p50_ms(path: Path, runs: int) -> float:
    graph = edge_sdk.load(path)
    compiled = compile_graph(graph, external_kernels=True)
    with tempfile.TemporaryDirectory() as tmp:
        project = generate_project(compiled, get_board("linux-x86_64"), Path(tmp) / "p",
                                   demo=False)
        subprocess.run(["make", "-C", str(project)], check=True, capture_output=True)
        (Path(tmp) / "in.bin").write_bytes(edge_sdk.api.default_input(graph).tobytes())
        out = subprocess.run([str(project / "build" / "runner"), str(Path(tmp) / "in.bin"),
                              str(Path(tmp) / "out.bin"), str(runs)], check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out)["p50_ns"] / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cortex_a_host.json"))
    args = ap.parse_args()
    rows = []
    for name in INT8 + FLOAT:
        path = MODELS / f"{name}.tflite"
        row = {"model": name, "litert_xnnpack_ms": litert_p50_ms(path, args.runs, False),
               "litert_reference_ms": litert_p50_ms(path, min(args.runs, 20), True),
               "ours_ms": None if name == "kws_ref_model_float32" else ours_p50_ms(path, args.runs)}
        if row["ours_ms"]:
            row["ours_vs_xnnpack"] = round(row["ours_ms"] / row["litert_xnnpack_ms"], 2)
        rows.append(row)
    print(f"{'model (p50, 1 thread)':<26}{'ours ms':>9}{'XNNPACK ms':>12}{'ratio':>7}"
          f"{'LiteRT ref ms':>15}")
    for r in rows:
        ours = f"{r['ours_ms']:.3f}" if r["ours_ms"] else "hybrid"
        print(f"{r['model']:<26}{ours:>9}{r['litert_xnnpack_ms']:>12.3f}"
              f"{r.get('ours_vs_xnnpack', ''):>7}{r['litert_reference_ms']:>15.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "results": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
