#!/usr/bin/env python3
"""edge-sdk vs TensorFlow Lite Micro on the MLPerf Tiny int8 models: memory, and speed on QEMU.

    python3 benchmarks/mlperf_tiny.py            # arena: ours vs TFLM, measured now
    python3 benchmarks/mlperf_tiny.py --qemu     # + instructions/inference on mps2-an386

Ours: the compiled arena (intermediates only) and the RAM the caller adds (input + output).
TFLM: `tflite-micro` from PyPI (pip install tflite-micro), `print_allocations()` after one
invoke(), run in a subprocess because TFLM prints from C. Its total is what TFLM needs at run time
(it also holds input and output). Speed: our firmware on QEMU mps2-an386 with -icount shift=0, on
the input `input[i] = (int8)(i*7 + 3)`; TFLM's instruction counts are the peer figures of
../shared/BASELINES.md (same board, same input, same counting method), cited, not re-measured.
Prints a table and writes benchmarks/results/mlperf_tiny.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edge_sdk  # noqa: E402

MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"
NAMES = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]
# ../shared/BASELINES.md, "TFLM on an emulated Cortex-M4F": instructions per Invoke().
TFLM_INSTRUCTIONS = {
    "kws_ref_model": {"reference": 43_041_520, "cmsis_nn": 7_698_440},
    "vww_96_int8": {"reference": 100_238_800, "cmsis_nn": 24_101_960},
    "pretrainedResnet_quant": {"reference": 107_401_320, "cmsis_nn": 29_860_960},
    "ad01_int8": {"reference": 1_952_360, "cmsis_nn": 582_960},
}

TFLM_SNIPPET = """
import numpy as np, sys
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1])
d = it.get_input_details(0)
it.set_input(np.zeros(d['shape'], d['dtype']), 0)
it.invoke()
it.print_allocations()
"""


def tflm_arena(path: Path) -> dict | None:
    proc = subprocess.run([sys.executable, "-c", TFLM_SNIPPET, str(path)],
                          capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    found = {k: re.search(rf"Arena allocation {k} (\d+) bytes", text) for k in
             ("total", "head", "tail")}
    if proc.returncode or not all(found.values()):
        return None
    return {k: int(m.group(1)) for k, m in found.items() if m}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qemu", action="store_true", help="also run on QEMU mps2-an386")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mlperf_tiny.json"))
    args = ap.parse_args()
    if not MODELS.exists():
        print(f"{MODELS} is absent: the benchmark needs ../shared", file=sys.stderr)
        return 1
    rows = []
    for name in NAMES:
        path = MODELS / f"{name}.tflite"
        compiled = edge_sdk.compile(path)
        row = {"model": name, "arena_bytes": compiled.memory.arena_bytes,
               "io_bytes": compiled.io_bytes,
               "ram_bytes": compiled.memory.arena_bytes + compiled.io_bytes,
               "weights_bytes": compiled.weights_bytes, "tflm": tflm_arena(path)}
        if row["tflm"]:
            row["ram_vs_tflm"] = round(row["ram_bytes"] / row["tflm"]["total"], 3)
        if args.qemu:
            result = edge_sdk.run(path, board="mps2-an386")
            row["qemu_mps2_an386"] = {
                "instructions": result.report["timer"]["instructions"][0],
                "model_flash_bytes": result.report["flash_bytes"],
                "tflm_instructions": TFLM_INSTRUCTIONS[name],
            }
        rows.append(row)

    print(f"{'model':<24}{'arena':>9}{'+io':>8}{'= RAM':>9}{'TFLM arena':>12}{'ratio':>7}")
    for r in rows:
        t = r["tflm"]["total"] if r["tflm"] else "n/a (pip install tflite-micro)"
        print(f"{r['model']:<24}{r['arena_bytes']:>9}{r['io_bytes']:>8}{r['ram_bytes']:>9}"
              f"{t:>12}{r.get('ram_vs_tflm', ''):>7}")
    if args.qemu:
        print(f"\n{'model':<24}{'ours (instr)':>14}{'TFLM ref':>13}{'TFLM CMSIS-NN':>15}"
              f"{'flash':>9}")
        for r in rows:
            q = r["qemu_mps2_an386"]
            print(f"{r['model']:<24}{q['instructions']:>14,}"
                  f"{q['tflm_instructions']['reference']:>13,}"
                  f"{q['tflm_instructions']['cmsis_nn']:>15,}{q['model_flash_bytes']:>9}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"method": __doc__, "results": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
