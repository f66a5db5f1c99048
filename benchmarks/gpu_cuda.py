#!/usr/bin/env python3
"""The Jetson CUDA bundle on a real NVIDIA GPU: outputs vs LiteRT, latency vs compiled PyTorch.

    python3 benchmarks/gpu_cuda.py --prepare-only  # here: bundles, LiteRT outputs (build/)
    python3 benchmarks/gpu_cuda.py --run-only      # on the GPU machine: needs gcc, numpy, torch
    python3 benchmarks/gpu_cuda.py --run-only --torch-modes max-autotune   # the slow compile, later

Each model is compiled for --board jetson-orin-nano (PTX for sm_87; the driver compiles it for
the GPU at hand) and its linux-gpu project is built natively (`make CROSS= CPUFLAGS=`): the same
kernels and runner as on the Jetson, an x86-64 host build. The GPU machine has no TVM (it cannot
install packages), so preparation happens where edge-sdk is installed and the bundles travel;
the reference outputs come from LiteRT's reference kernels (BUILTIN_REF) on the same inputs.

Every figure is a p50 over --runs batch-1 inferences, each timed from a host array to a host
array: the input copied in, all the work, the output copied out, synchronised. Ours and the
floor are each the median of --repeats processes' p50s, alternated: from one process to the next
a p50 moves by up to a third (two modes about 6 us apart on an H200).
- ours: the runner replaying its launch table as one CUDA graph (the default); "stream": the same
  launches enqueued one by one (EDGE_GPU_GRAPH=0); "floor": the same launch sequence of empty
  kernels, the same grids and the same copies (EDGE_GPU_EMPTY=1), what launches and copies alone
  cost. Each launch's own time on the GPU, and its gap after the one before, come from CUPTI
  (torch.profiler around the runner built as a library), for ours and for the floor, in the
  JSON; without PyTorch, from an event-timed run (EDGE_GPU_PROFILE=1, ~3.5 us per launch more).
- PyTorch: a float network of the same architecture (the float .tflite where there is one, else
  the int8 file's weights dequantized), built in torch.nn.functional, NCHW inside: eager, and
  torch.compile with mode reduce-overhead (CUDA graphs) and max-autotune; `x.cuda()` in and
  `.cpu()` out inside the timed call, as ours copies. PyTorch has no int8 path on CUDA for these
  layers, so INT8 rows are compared with float.
The bar (issue 16): ours <= 0.5x the best compiled PyTorch, and <= 1.5x the floor. PyTorch's
figures are kept per network (build/gpu_bundles/torch_*.json), so --torch-modes can be run apart.
Writes benchmarks/results/gpu_cuda.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"
BUNDLES = ROOT / "build" / "gpu_bundles"
PAIRS = {  # model -> the float model of the same network (for PyTorch)
    "kws_ref_model": "kws_ref_model",  # its float file is a hybrid: the int8 file, dequantized
    "vww_96_int8": "vww_96_float", "pretrainedResnet_quant": "pretrainedResnet",
    "ad01_int8": "ad01_fp32", "vww_96_float": "vww_96_float",
    "pretrainedResnet": "pretrainedResnet", "ad01_fp32": "ad01_fp32",
}


# --- preparation (where edge-sdk is installed) --------------------------------------------------

def _graph_json(path: Path, out: Path) -> None:
    """The float graph as JSON + weights (.npz), for the PyTorch twin on the GPU machine."""
    sys.path.insert(0, str(ROOT))
    import edge_sdk

    g = edge_sdk.load(path)
    ops, arrays = [], {}
    for t in g.tensors:
        if t.data is not None:  # an int8 file's weights dequantized (per tensor is enough: the
            data = t.data       # twin is for timing the same architecture)
            if t.quant is not None and data.dtype != np.float32:
                data = (data.astype(np.float32) - t.quant.zero_point[0]) * t.quant.scale[0]
            arrays[f"t{t.index}"] = data.astype(np.float32)
    for op in g.operators:
        ops.append({"opcode": op.opcode, "inputs": list(op.inputs), "outputs": list(op.outputs),
                    "options": {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in op.options.items()
                                if isinstance(v, (int, float, str, tuple, list))},
                    "shapes": {str(i): list(g.tensor(i).shape) for i in (*op.inputs, *op.outputs)
                               if i >= 0}})
    (out / "graph.json").write_text(json.dumps({"ops": ops, "input": g.inputs[0],
                                                "output": g.outputs[0]}))
    np.savez(out / "weights.npz", **arrays)


def prepare(names: list[str], samples: int, bundles: Path, matmul: bool = True,
            knobs: dict[str, str] | None = None) -> None:
    """``matmul=False``: the schedules of before dlight's Matmul rule took the convolutions and
    depthwise layers got their own (GeneralReduction for both), to compare on the GPU.
    ``knobs``: module settings of :mod:`edge_sdk.compiler.gpu.schedule` or ``.kernels`` to
    prepare with (their names in capitals: SPLIT_MIN_TAPS, DOT4, ...), each value a Python
    literal."""
    import ast

    sys.path.insert(0, str(ROOT))
    from edge_sdk.api import compile_for
    from edge_sdk.compiler.gpu import kernels as gpu_kernels
    from edge_sdk.compiler.gpu import schedule
    from edge_sdk.model_io import output_ios, outputs_bytes
    from edge_sdk.project.boards import get_board
    from edge_sdk.project.generate import generate_project
    from edge_sdk.validate import reference_outputs

    if not matmul:
        schedule.MATMUL, schedule.ONE_THREAD_PER_OUTPUT = False, ()
        schedule.SPLIT_REDUCTION_OPS = ()
    for key, value in (knobs or {}).items():
        module = next((m for m in (schedule, gpu_kernels) if hasattr(m, key)), None)
        if not key.isupper() or module is None:
            raise SystemExit(f"--schedule {key}: not a setting of edge_sdk.compiler.gpu.schedule "
                             "or .kernels")
        setattr(module, key, ast.literal_eval(value))
    board = get_board("jetson-orin-nano")
    bundles.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = Path(name) if name.endswith(".tflite") else MODELS / f"{name}.tflite"
        name = path.stem
        dest = bundles / name
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.time()
        compiled = compile_for(path, board)
        generate_project(compiled, board, dest, demo=False)
        g = compiled.program.graph
        tin = g.tensor(g.inputs[0])
        rng = np.random.default_rng(7)
        if tin.dtype == "int8":
            x = rng.integers(-128, 128, (samples, *tin.shape), dtype=np.int8)
        else:
            x = rng.uniform(0, 1, (samples, *tin.shape)).astype(np.float32)
        x.tofile(dest / "inputs.bin")
        # LiteRT's outputs, packed as the runner writes them (each output at its offset)
        ios = output_ios(g)
        ref = np.zeros((samples, outputs_bytes(g)), np.uint8)
        for io, y in zip(ios, reference_outputs(path, [x.reshape(samples, -1)]), strict=True):
            ref[:, io.offset:io.offset + io.nbytes] = y.reshape(samples, -1).view(np.uint8)
        ref.tofile(dest / "reference.bin")
        twin = PAIRS.get(name)
        if twin:
            (dest / "torch").mkdir()
            _graph_json(MODELS / f"{twin}.tflite", dest / "torch")
        (dest / "bench.json").write_text(json.dumps({
            "model": name, "dtype": tin.dtype, "samples": samples,
            "output_dtype": g.tensor(g.outputs[0]).dtype, "torch_twin": twin,
            "outputs": [{"offset": io.offset, "bytes": io.nbytes,
                         "dtype": g.tensor(io.tensor).dtype} for io in ios],
            "input_shape": list(tin.shape), "schedules": compiled.gpu.schedules,
            "launches": len(compiled.gpu.device.launches), "compile_s": time.time() - t0}))
        print(f"prepared {name} in {time.time() - t0:.1f} s")


# --- the run (on the GPU machine) --------------------------------------------------------------

REPEATS = 3  # processes for "ours" and for the floor, alternated (--repeats); median p50 reported
PROFILE = True  # each launch's time too (--no-profile: the latencies only, for quick A/B runs)

def _torch_model(folder: Path):
    import torch
    import torch.nn.functional as F

    spec = json.loads((folder / "graph.json").read_text())
    w = {k: torch.from_numpy(v).cuda() for k, v in np.load(folder / "weights.npz").items()}
    act = {"NONE": lambda t: t, "RELU": F.relu, "RELU6": lambda t: F.hardtanh(t, 0.0, 6.0)}

    def pad_same(x, k, s):
        h, wd = x.shape[2:]
        ph = max((-(-h // s[0]) - 1) * s[0] + k[0] - h, 0)
        pw = max((-(-wd // s[1]) - 1) * s[1] + k[1] - wd, 0)
        return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    prepared = {}
    for i, op in enumerate(spec["ops"]):  # weights to NCHW once
        if op["opcode"] == "CONV_2D":
            prepared[i] = w[f"t{op['inputs'][1]}"].permute(0, 3, 1, 2).contiguous()
        elif op["opcode"] == "DEPTHWISE_CONV_2D":
            prepared[i] = w[f"t{op['inputs'][1]}"].permute(3, 0, 1, 2).contiguous()

    def forward(x):  # x: NHWC
        vals = {spec["input"]: x.permute(0, 3, 1, 2) if x.dim() == 4 else x}  # NCHW inside
        for i, op in enumerate(spec["ops"]):
            o, ins = op["options"], op["inputs"]
            a = vals.get(ins[0])
            name = op["opcode"]
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                k = prepared[i].shape[2:]
                s = tuple(o["stride"])
                groups = a.shape[1] if name == "DEPTHWISE_CONV_2D" else 1
                a = pad_same(a, k, s) if o["padding"] == "SAME" else a
                bias = w.get(f"t{ins[2]}") if len(ins) > 2 and ins[2] >= 0 else None
                y = act[o["activation"]](F.conv2d(a, prepared[i], bias, s, groups=groups))
            elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                f = tuple(o["filter"])
                pool = F.avg_pool2d if name == "AVERAGE_POOL_2D" else F.max_pool2d
                y = act[o["activation"]](pool(a, f, tuple(o["stride"])))
            elif name == "ADD":
                y = act[o["activation"]](a + vals[ins[1]])
            elif name == "RESHAPE":
                y = (a.permute(0, 2, 3, 1) if a.dim() == 4 else a).reshape(
                    op["shapes"][str(op["outputs"][0])])
            elif name == "FULLY_CONNECTED":
                wt = w[f"t{ins[1]}"]
                a2 = (a.permute(0, 2, 3, 1) if a.dim() == 4 else a).reshape(-1, wt.shape[1])
                bias = w.get(f"t{ins[2]}") if len(ins) > 2 and ins[2] >= 0 else None
                y = act[o["activation"]](F.linear(a2, wt, bias))
            elif name == "SOFTMAX":
                y = torch.softmax(a, dim=-1)
            else:
                raise SystemExit(f"PyTorch twin: {name} not mapped")
            vals[op["outputs"][0]] = y
        return vals[spec["output"]]

    return forward


def _p50_ms(fn, runs: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _runner(folder: Path, runs: int, **env: str) -> tuple[dict, str]:
    """One run of the bundle's runner under ``env``: its stats line and its stderr."""
    runner = folder / "build" / "runner"
    proc = subprocess.run([str(runner), str(folder / "inputs.bin"), str(folder / "out.bin"),
                           str(runs)], capture_output=True, text=True,
                          env={**os.environ, "EDGE_GPU_INFO": "1", **env})
    if proc.returncode:
        raise SystemExit(f"{folder.name}: runner failed ({env}): {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _kernel_times(folder: Path, runs: int, empty: bool) -> dict:
    """GPU-side time of every launch, from CUPTI's kernel records (through torch.profiler).

    The event-timed profile (EDGE_GPU_PROFILE) adds ~3.5 us to every launch, more than the
    differences that matter here; CUPTI reads each kernel's start and end on the GPU. The
    runner is built as a shared library and run inside a Python process that holds the
    profiler: CUPTI records the kernels of every context in the process, ours included. Per
    launch position: the median of its duration and of its gap after the previous launch's end
    (a CUDA graph replay, as in the timed runs)."""
    lib = folder / "build" / "librunner.so"
    if not lib.exists():
        sources = sorted(str(p) for p in (folder / "src").glob("*.c") if "opencl" not in p.name)
        sources += sorted(str(p) for p in (folder / "model").glob("*.c"))
        subprocess.run(["gcc", "-O2", "-std=c99", "-shared", "-fPIC", "-Dmain=edge_runner_main",
                        f"-I{folder}", f"-I{folder / 'model'}", f"-I{folder / 'src'}", *sources,
                        "-ldl", "-pthread", "-o", str(lib)], check=True)
    trace = folder / "build" / ("cupti_empty.json" if empty else "cupti.json")
    proc = subprocess.run([sys.executable, __file__, "--cupti-child", str(lib),
                           str(folder / "inputs.bin"), str(trace), str(runs)],
                          capture_output=True, text=True,
                          env={**os.environ, **({"EDGE_GPU_EMPTY": "1"} if empty else {})})
    if proc.returncode:
        raise SystemExit(f"{folder.name}: CUPTI profile failed: {proc.stderr.strip()[-400:]}")
    kernels = sorted((e for e in json.loads(trace.read_text())["traceEvents"]
                      if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    launches = json.loads((folder / "bench.json").read_text())["launches"]
    kernels = kernels[len(kernels) - runs * launches:]  # the timed runs (the last ones)
    per = {"us": [[] for _ in range(launches)], "gap_us": [[] for _ in range(launches)]}
    spans = []
    for r in range(runs):
        one = kernels[r * launches:(r + 1) * launches]
        spans.append(one[-1]["ts"] + one[-1]["dur"] - one[0]["ts"])
        for i, e in enumerate(one):
            per["us"][i].append(e["dur"])
            if i:
                per["gap_us"][i].append(e["ts"] - one[i - 1]["ts"] - one[i - 1]["dur"])
    names = [e["name"] for e in kernels[:launches]]
    return {"span_us": float(np.median(spans)),
            "launches": [{"kernel": names[i], "us": float(np.median(per["us"][i])),
                          "gap_us": float(np.median(per["gap_us"][i])) if i else 0.0}
                         for i in range(launches)]}


def _cupti_child(lib: str, inputs: str, trace: str, runs: str) -> int:
    """In a process of its own: run the runner library under torch.profiler (CUDA activity)."""
    import ctypes

    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.zeros(1, device="cuda")  # CUDA and CUPTI up before the runner's context
    runner = ctypes.CDLL(lib)
    argv = (ctypes.c_char_p * 4)(b"runner", inputs.encode(), os.devnull.encode(), runs.encode())
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        rc = runner.edge_runner_main(4, argv)
    prof.export_chrome_trace(trace)
    return rc


def _profile(folder: Path, runs: int) -> dict:
    """Each launch's time: from CUPTI where PyTorch is there (ours, and the floor's under
    "floor"), else event-timed (~3.5 us of events in every launch's figure)."""
    if importlib.util.find_spec("torch"):
        try:
            profile = _kernel_times(folder, min(runs, 100), empty=False)
            profile["floor"] = _kernel_times(folder, min(runs, 100), empty=True)
            return profile
        except (SystemExit, KeyError, IndexError, ValueError) as e:
            print(f"{folder.name}: no CUPTI profile ({e}); event-timed instead", file=sys.stderr)
    _, prof = _runner(folder, min(runs, 50), EDGE_GPU_PROFILE="1")
    return json.loads(next(line for line in prof.splitlines()
                           if line.startswith('{"profile_runs"')))


def _check(folder: Path, meta: dict) -> str:
    """Each output against LiteRT's: integers bit for bit, floats as the largest difference,
    also relative to the output's largest value (ad01's reach 42). Outputs joined by "; "."""
    got = np.fromfile(folder / "out.bin", np.uint8).reshape(meta["samples"], -1)
    ref = np.fromfile(folder / "reference.bin", np.uint8).reshape(meta["samples"], -1)
    verdicts = []
    for out in meta["outputs"]:
        cut = slice(out["offset"], out["offset"] + out["bytes"])
        a, b = (np.ascontiguousarray(v[:, cut]).view(out["dtype"]) for v in (got, ref))
        if np.issubdtype(a.dtype, np.integer):
            verdicts.append(f"bit-exact ({a.size} values)" if np.array_equal(a, b)
                            else f"{int((a != b).sum())} of {a.size} differ")
        else:
            diff = float(np.abs(a.astype(np.float64) - b).max())
            rel = diff / max(float(np.abs(b).max()), 1e-30)
            verdicts.append(f"max |diff| {diff:.2e} ({rel:.0e} rel)")
    return "; ".join(verdicts)


def _torch_times(folder: Path, meta: dict, modes: list[str], runs: int) -> dict:
    """p50 ms of the float twin per mode, cached per network (vww_96_int8 and vww_96_float
    share one; max-autotune compiles for minutes: it can run in a call of its own)."""
    import torch

    cache = folder.parent / f"torch_{meta['torch_twin']}.json"
    times = json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
    fwd = _torch_model(folder / "torch")
    host = torch.rand(1, *meta["input_shape"][1:])
    for mode in modes:
        if mode in times:
            continue
        # A fresh compiler per network and static shapes: every twin's forward shares one code
        # object, so without the reset dynamo saw several input sizes, recompiled with dynamic
        # shapes and recorded a CUDA graph per size (5 ms for VWW instead of ~0.3 ms). fp32
        # throughout (no TF32), the precision ours computes in.
        torch._dynamo.reset()
        fn = fwd if mode == "eager" else torch.compile(fwd, mode=mode, dynamic=False)
        t0 = time.time()
        with torch.inference_mode():
            fn(host.cuda()).cpu()  # compiles (and captures) outside the timing
            times[mode] = _p50_ms(lambda fn=fn: fn(host.cuda()).cpu(), runs)
        times[f"{mode}_prepare_s"] = round(time.time() - t0, 1)
        cache.write_text(json.dumps(times), encoding="utf-8")
    return times


def run(names: list[str], runs: int, torch_modes: list[str], bundles: Path) -> list[dict]:
    rows = []
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    for name in names:
        folder = bundles / name
        meta = json.loads((folder / "bench.json").read_text(encoding="utf-8"))
        subprocess.run(["make", "-s", "-C", str(folder), "CROSS=", "CPUFLAGS="], check=True)
        graph, info = _runner(folder, runs)
        check = _check(folder, meta)  # the graph's outputs, for every sample
        stream, _ = _runner(folder, runs, EDGE_GPU_GRAPH="0")
        check_stream = _check(folder, meta)
        # Ours and the floor, alternated REPEATS times: one process's p50 moves by up to a
        # third from one start to the next (the same 12 empty launches: 0.018-0.027 ms), so
        # each figure is the median of the processes' p50s.
        ours_ns, floor_ns = [graph["p50_ns"]], []
        for k in range(REPEATS):
            floor_ns.append(_runner(folder, runs, EDGE_GPU_EMPTY="1")[0]["p50_ns"])
            if k:
                ours_ns.append(_runner(folder, runs)[0]["p50_ns"])
        profile = _profile(folder, runs) if PROFILE else {"launches": []}
        row = {"model": name, "gpu": gpu, "launches": meta["launches"],
               "mode": info.strip().splitlines()[0] if info.strip() else "",
               "check": check if check == check_stream else f"{check}; stream: {check_stream}",
               "ours_p50_ms": float(np.median(ours_ns)) / 1e6,
               "stream_p50_ms": stream["p50_ns"] / 1e6,
               "floor_p50_ms": float(np.median(floor_ns)) / 1e6,
               "ours_p50s_ms": [v / 1e6 for v in ours_ns],
               "floor_p50s_ms": [v / 1e6 for v in floor_ns],
               "kernels_sum_ms": sum(k["us"] for k in profile["launches"]) / 1e3,
               "profile": profile, "torch_twin": meta["torch_twin"],
               "schedules": meta["schedules"]}
        if meta["torch_twin"]:
            row["torch_ms"] = _torch_times(folder, meta, torch_modes, runs)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("profile", "schedules")}))
        ours = profile["launches"]  # one line per launch: ours | the empty kernel's
        empty = profile.get("floor", {}).get("launches") or [{}] * len(ours)
        for k, e in zip(ours, empty, strict=True):
            print(f"  {k['kernel'][-40:]:40} {k['us']:7.2f} us (gap {k.get('gap_us', 0):5.2f})"
                  f" | empty {e.get('us', float('nan')):5.2f} (gap "
                  f"{e.get('gap_us', float('nan')):5.2f})")
    return rows


def _table(rows: list[dict]) -> None:
    head = (f"{'model':24} {'check':22} {'ours':>7} {'stream':>7} {'floor':>7} {'eager':>7} "
            f"{'r-o':>7} {'m-a':>7} {'ours/best':>9} {'ours/floor':>10}  bar")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        t = r.get("torch_ms", {})
        compiled = [t[m] for m in ("reduce-overhead", "max-autotune") if m in t]
        best = min(compiled) if compiled else None
        vs_best = r["ours_p50_ms"] / best if best else None
        vs_floor = r["ours_p50_ms"] / r["floor_p50_ms"]
        bar = ("-" if vs_best is None else
               "met" if vs_best <= 0.5 and vs_floor <= 1.5 else "not met")

        def ms(v):
            return f"{v:7.3f}" if v is not None else f"{'-':>7}"

        print(f"{r['model']:24} {r['check'][:22]:22} {ms(r['ours_p50_ms'])} "
              f"{ms(r['stream_p50_ms'])} {ms(r['floor_p50_ms'])} {ms(t.get('eager'))} "
              f"{ms(t.get('reduce-overhead'))} {ms(t.get('max-autotune'))} "
              f"{(f'{vs_best:.2f}' if vs_best else '-'):>9} {vs_floor:>10.2f}  {bar}")
        r["vs_best_compiled"], r["vs_floor"], r["bar"] = vs_best, vs_floor, bar


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--models", nargs="*", default=list(PAIRS))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--torch-modes", default="eager,reduce-overhead,max-autotune",
                    help="comma-separated: eager, reduce-overhead, max-autotune")
    ap.add_argument("--bundles", default=str(BUNDLES), help="where the bundles are (default: "
                    "%(default)s)")
    ap.add_argument("--no-matmul", action="store_true",
                    help="prepare with the schedules of before Matmul and the depthwise schedule")
    ap.add_argument("--schedule", action="append", default=[], metavar="NAME=VALUE",
                    help="prepare with a setting of edge_sdk.compiler.gpu.schedule or .kernels "
                    "changed, e.g. SPLIT_MIN_TAPS=0 or DOT4=True (repeatable)")
    ap.add_argument("--repeats", type=int, default=REPEATS,
                    help="processes for ours and for the floor, alternated (default %(default)s)")
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the per-launch profiles (quicker A/B runs of schedule settings)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "gpu_cuda.json"))
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--run-only", action="store_true")
    args = ap.parse_args()
    bundles = Path(args.bundles)
    if not args.run_only:
        knobs = dict(kv.split("=", 1) for kv in args.schedule)
        prepare(args.models, args.samples, bundles, matmul=not args.no_matmul, knobs=knobs)
    if args.prepare_only:
        return 0
    if shutil.which("nvidia-smi") is None:
        print(f"no NVIDIA GPU here: bundles are in {bundles}; run with --run-only there")
        return 0
    globals()["REPEATS"], globals()["PROFILE"] = args.repeats, not args.no_profile
    names = [Path(n).stem for n in args.models]  # a .tflite path's bundle is named by its stem
    rows = run(names, args.runs, [m for m in args.torch_modes.split(",") if m], bundles)
    _table(rows)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"method": __doc__, "runs": args.runs, "bundles": str(bundles),
                               "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cupti-child"]:
        sys.exit(_cupti_child(*sys.argv[2:6]))
    os.environ.setdefault("EDGE_OPENCL_DEVICE", "gpu")
    sys.exit(main())
