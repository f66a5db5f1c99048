#!/usr/bin/env python3
"""The Linux (Cortex-A) path vs LiteRT on this machine, as the stand-in for a Raspberry Pi.

    python3 benchmarks/cortex_a_host.py [--runs 200] [--before] [--tune] [--threads N]
                                        [--kernel-sets cpu-avx2,cpu-vnni]

Ours: each model compiled exactly as for a Pi (kernels through TVM's LLVM backend, the linux
template's runner), for this machine's own CPU (board linux-x86_64: -mcpu native, and the kernel set
its LLVM target selects: cpu-vnni on an AVX-512 VNNI or AVX-VNNI machine, cpu-avx2 on an AVX2 one;
``--kernel-sets`` times each set named, this CPU permitting); latency is the runner's own p50 over N
runs, one thread (``--threads``), the lowest of 3 such p50s taken a few seconds apart (ROUNDS;
LiteRT's figures alike). ``--before`` adds the portable loop nests (isa generic) the Linux path used
before the CPU kernel sets; ``--tune`` tunes each model here first (`edge-sdk tune`, records in
benchmarks/results/tuning/, reused on the next run) and adds the tuned time. LiteRT: ai-edge-litert,
same threads, its default resolver (XNNPACK), `invoke()` timed over N runs; BUILTIN_REF beside it
(the reference kernels we match bit for bit). The int8 outputs of ours are checked against
BUILTIN_REF on the benchmark input (a column says so); float ones within 1e-5. Models: the MLPerf
Tiny ones from ../shared, and a MobileNetV2-1.0-224 int8 that benchmarks/mobilenet_v2.py builds
(random weights). kws_ref_model_float32 is a hybrid model (int8 weights in float layers), which
edge-sdk refuses.
Prints a table; writes benchmarks/results/cortex_a_host.json.
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
from edge_sdk.compiler.kernels.schedule import Tuning  # noqa: E402
from edge_sdk.pipeline import compile_graph  # noqa: E402
from edge_sdk.project.boards import get_board  # noqa: E402
from edge_sdk.project.generate import generate_project  # noqa: E402

MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"
# Each figure is the lowest of this many p50s taken a few seconds apart: this 2-core VM's speed
# drifts by up to ~40% between minutes (measured), and a slow spell should not decide a ratio.
ROUNDS = 3
INT8 = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]
FLOAT = ["kws_ref_model_float32", "vww_96_float", "pretrainedResnet", "ad01_fp32"]


def litert_p50_ms(path: Path, runs: int, reference: bool, threads: int = 1) -> float:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_path=str(path), num_threads=threads, **kw)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    p50s = []
    for _ in range(ROUNDS):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            it.invoke()
            times.append(time.perf_counter_ns() - t0)
        p50s.append(float(np.median(times)) / 1e6)
    return min(p50s)


def ours_p50_ms(path: Path, runs: int, isa: str | None = None, threads: int = 1,
                tuning: Path | None = None) -> tuple[float, bool]:
    """The runner's p50 (ms) and whether its outputs match LiteRT's reference kernels."""
    board = get_board("linux-x86_64")
    graph = edge_sdk.load(path)
    compiled = compile_graph(graph, external_kernels=True,
                             isa=isa or edge_sdk.api.cpu_isa(board.llvm_target),
                             tuning=Tuning.load(tuning) if tuning else None)
    x = edge_sdk.api.packed_batch(graph, None)
    with tempfile.TemporaryDirectory() as tmp:
        project = generate_project(compiled, board, Path(tmp) / "p", demo=False)
        subprocess.run(["make", "-C", str(project)], check=True, capture_output=True)
        (Path(tmp) / "in.bin").write_bytes(x.tobytes())
        p50s = []
        for _ in range(ROUNDS):
            out = subprocess.run([str(project / "build" / "runner"), str(Path(tmp) / "in.bin"),
                                  str(Path(tmp) / "out.bin"), str(runs), str(threads)],
                                 check=True, capture_output=True, text=True).stdout
            p50s.append(json.loads(out.strip().splitlines()[-1])["p50_ns"] / 1e6)
        raw = (Path(tmp) / "out.bin").read_bytes()
    want = litert_reference_output(path, graph)
    got = np.frombuffer(raw, want.dtype).reshape(want.shape)
    ok = (np.array_equal(got, want) if want.dtype != np.float32
          else bool(np.allclose(got, want, rtol=1e-5, atol=1e-5)))
    return min(p50s), ok


def litert_reference_output(path: Path, graph) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = edge_sdk.api.default_input(graph)
    it.set_tensor(d["index"], np.asarray(x).reshape(d["shape"]).astype(d["dtype"]))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--before", action="store_true",
                    help="also time the portable loop nests (isa generic)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for ours and for LiteRT (default 1)")
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--tune", action="store_true",
                    help="also tune each model here (edge-sdk tune, kept in "
                         "benchmarks/results/tuning/) and time it with its schedules")
    ap.add_argument("--kernel-sets",
                    help="comma-separated Linux kernel sets to time side by side (default: the "
                         "one this CPU selects), e.g. cpu-avx2,cpu-vnni")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cortex_a_host.json"))
    args = ap.parse_args()
    isa = edge_sdk.api.cpu_isa(get_board("linux-x86_64").llvm_target)
    sets = args.kernel_sets.split(",") if args.kernel_sets else [isa]
    print(machine.banner(), flush=True)
    from benchmarks.mobilenet_v2 import build as mobilenet_v2

    rows = []
    out_dir = Path(args.out).parent
    with tempfile.TemporaryDirectory() as tmp:
        mbv2 = Path(tmp) / "mobilenet_v2_224_int8.tflite"
        mbv2.write_bytes(mobilenet_v2())
        paths = [MODELS / f"{name}.tflite" for name in INT8 + FLOAT] + [mbv2]
        if args.models:
            paths = [p for p in paths if p.stem in args.models.split(",")]
        for path in paths:
            name = path.stem
            runs = args.runs if "mobilenet" not in name else max(10, args.runs // 10)
            row = {"model": name, "runs": runs,
                   "litert_xnnpack_ms": litert_p50_ms(path, runs, False, args.threads),
                   "litert_reference_ms": litert_p50_ms(path, min(runs, 20), True)}
            if name != "kws_ref_model_float32":
                row["by_kernel_set"] = {}
                row["matches_reference"] = True
                for kernel_set in sets:
                    ms, ok = ours_p50_ms(path, runs, kernel_set, threads=args.threads)
                    row["by_kernel_set"][kernel_set] = ms
                    row["matches_reference"] &= ok
                row["ours_ms"] = min(row["by_kernel_set"].values())
                row["ours_vs_xnnpack"] = round(row["ours_ms"] / row["litert_xnnpack_ms"], 2)
                if args.before:
                    row["before_ms"], _ = ours_p50_ms(path, runs, "generic")
                if args.tune:
                    record = out_dir / "tuning" / f"{name}.json"
                    record.parent.mkdir(parents=True, exist_ok=True)
                    start = time.perf_counter()
                    edge_sdk.api.tune(path, "linux-x86_64", record)
                    row["tune_s"] = round(time.perf_counter() - start, 1)
                    row["tuned_ms"], tuned_ok = ours_p50_ms(path, runs, threads=args.threads,
                                                            tuning=record)
                    row["matches_reference"] &= tuned_ok
            rows.append(row)
            print(f"  {name}: done", file=sys.stderr, flush=True)
    title = f"model (p50, {args.threads} thr)"
    columns = "".join(f"{k + ' ms':>16}" for k in sets)
    print(f"{title:<30}{'before ms':>10}{columns}{'tuned ms':>10}{'XNNPACK ms':>12}"
          f"{'ratio':>7}{'exact':>7}{'LiteRT ref ms':>15}")
    for r in rows:
        ours = "".join(f"{r['by_kernel_set'][k]:>16.3f}" for k in sets) if "ours_ms" in r \
            else f"{'hybrid':>16}" * len(sets)
        before = f"{r['before_ms']:.3f}" if "before_ms" in r else "-"
        tuned = f"{r['tuned_ms']:.3f}" if "tuned_ms" in r else "-"
        best = min(r.get("ours_ms") or 0, r.get("tuned_ms") or r.get("ours_ms") or 0)
        ratio = f"{best / r['litert_xnnpack_ms']:.2f}" if best else ""
        exact = {True: "yes", False: "NO"}.get(r.get("matches_reference"), "-")
        print(f"{r['model']:<30}{before:>10}{ours}{tuned:>10}{r['litert_xnnpack_ms']:>12.3f}"
              f"{ratio:>7}{exact:>7}{r['litert_reference_ms']:>15.3f}")
    print("ratio: the best of ours (each kernel set) and tuned, over XNNPACK")
    print(f"ours: board linux-x86_64, whose CPU selects kernel set {isa}; exact: int8 bit-exact "
          "to LiteRT's reference kernels, float within 1e-5, for every set timed")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine.describe(), "runs": args.runs,
                               "threads": args.threads, "kernel_set": isa,
                               "kernel_sets_timed": sets, "results": rows},
                              indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
