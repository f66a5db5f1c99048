#!/usr/bin/env python3
"""The Jetson CUDA bundle on a real NVIDIA GPU: outputs vs LiteRT, latency vs PyTorch.

    python3 benchmarks/gpu_cuda.py                 # prepare (needs edge-sdk) and, with a GPU, run
    python3 benchmarks/gpu_cuda.py --prepare-only  # bundles + LiteRT outputs in build/gpu_bundles
    python3 benchmarks/gpu_cuda.py --run-only      # on the GPU machine: needs gcc, numpy, torch

Each model is compiled for --board jetson-orin-nano (PTX for sm_87; the driver compiles it for
the GPU at hand) and its linux-gpu project is built natively (`make CROSS= CPUFLAGS=`): the same
kernels and runner as on the Jetson, an x86-64 host build. The GPU machine has no TVM (it cannot
install packages), so preparation happens where edge-sdk is installed and the bundles travel;
the reference outputs come from LiteRT's reference kernels (BUILTIN_REF) on the same inputs.

Ours: the runner's p50 over N runs of `<model>_run`, which uploads the input, launches every
kernel and downloads the output (synchronous). PyTorch: the float model of the same network,
rebuilt from the .tflite in torch.nn.functional (NHWC weights transposed once), eager mode,
timed the same way (input copied in, output copied out, synchronised), and also with the input
already on the GPU. PyTorch has no int8 path on CUDA for these layers, so INT8 rows are compared
with the float network of the same architecture. Writes benchmarks/results/gpu_cuda.json.
"""

from __future__ import annotations

import argparse
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
    "kws_ref_model": None,  # its float file is a hybrid (int8 weights): no plain float twin
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
        if t.data is not None:
            arrays[f"t{t.index}"] = t.data
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


def prepare(names: list[str], samples: int) -> None:
    sys.path.insert(0, str(ROOT))
    from edge_sdk.api import compile_for
    from edge_sdk.project.boards import get_board
    from edge_sdk.project.generate import generate_project
    from tests.conftest import reference

    board = get_board("jetson-orin-nano")
    BUNDLES.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = MODELS / f"{name}.tflite"
        dest = BUNDLES / name
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
        reference(path, x).tofile(dest / "reference.bin")
        twin = PAIRS.get(name)
        if twin:
            (dest / "torch").mkdir()
            _graph_json(MODELS / f"{twin}.tflite", dest / "torch")
        (dest / "bench.json").write_text(json.dumps({
            "model": name, "dtype": tin.dtype, "samples": samples,
            "output_dtype": g.tensor(g.outputs[0]).dtype, "torch_twin": twin,
            "input_shape": list(tin.shape), "schedules": compiled.gpu.schedules,
            "launches": len(compiled.gpu.device.launches), "compile_s": time.time() - t0}))
        print(f"prepared {name} in {time.time() - t0:.1f} s")


# --- the run (on the GPU machine) --------------------------------------------------------------

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


def run(names: list[str], runs: int) -> list[dict]:
    rows = []
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
    for name in names:
        folder = BUNDLES / name
        meta = json.loads((folder / "bench.json").read_text())
        subprocess.run(["make", "-s", "-C", str(folder), "CROSS=", "CPUFLAGS="], check=True)
        runner = folder / "build" / "runner"
        proc = subprocess.run([str(runner), str(folder / "inputs.bin"), str(folder / "out.bin"),
                               str(runs)], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{name}: runner failed: {proc.stderr.strip()}")
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        odt = np.dtype(meta["output_dtype"])
        got = np.fromfile(folder / "out.bin", dtype=odt)
        ref = np.fromfile(folder / "reference.bin", dtype=odt)
        if odt == np.int8:
            match = f"bit-exact ({got.size} values)" if np.array_equal(got, ref) else (
                f"{int((got != ref).sum())} of {got.size} differ")
        else:
            match = f"max |diff| {float(np.abs(got - ref).max()):.2e}"
        row = {"model": name, "gpu": gpu, "launches": meta["launches"], "check": match,
               "ours_p50_ms": stats["p50_ns"] / 1e6, "torch_twin": meta["torch_twin"]}
        if meta["torch_twin"]:
            import torch

            fwd = _torch_model(folder / "torch")
            shape = [1, *meta["input_shape"][1:]]
            host = torch.rand(*shape)
            dev = host.cuda()

            def with_copies(h=host, fwd=fwd):
                return fwd(h.cuda()).cpu()

            def resident(d=dev, fwd=fwd):
                y = fwd(d)
                torch.cuda.synchronize()
                return y

            with torch.inference_mode():
                row["torch_p50_ms"] = _p50_ms(with_copies, runs)
                row["torch_resident_p50_ms"] = _p50_ms(resident, runs)
        rows.append(row)
        print(json.dumps(row))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(PAIRS))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--run-only", action="store_true")
    args = ap.parse_args()
    if not args.run_only:
        prepare(args.models, args.samples)
    if args.prepare_only:
        return 0
    if shutil.which("nvidia-smi") is None:
        print("no NVIDIA GPU here: bundles are in build/gpu_bundles; run with --run-only there")
        return 0
    rows = run(args.models, args.runs)
    print(f"\n{'model':24} {'check':28} {'ours p50':>10} {'torch p50':>10} {'torch (on GPU)':>15}")
    for r in rows:
        t = f"{r['torch_p50_ms']:.3f}" if "torch_p50_ms" in r else "-"
        tr = f"{r['torch_resident_p50_ms']:.3f}" if "torch_resident_p50_ms" in r else "-"
        print(f"{r['model']:24} {r['check']:28} {r['ours_p50_ms']:>10.3f} {t:>10} {tr:>15}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_cuda.json").write_text(json.dumps(
        {"method": "p50 over --runs; ours: runner (copy in, kernels, copy out); torch: eager, "
                   "float twin, with and without host copies", "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGE_OPENCL_DEVICE", "gpu")
    sys.exit(main())
