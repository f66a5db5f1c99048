#!/usr/bin/env python3
"""edge-sdk vs TensorFlow Lite Micro on the MLPerf Tiny int8 models: memory, and speed on QEMU.

    python3 benchmarks/mlperf_tiny.py            # arena: ours vs TFLM, measured now
    python3 benchmarks/mlperf_tiny.py --qemu     # + instructions/inference on M3, M4, M7, M33, M55
    python3 benchmarks/mlperf_tiny.py --qemu --boards mps2-an386 --profile   # + per-layer

Ours: the compiled arena (intermediates only) and the RAM the caller adds (input + output).
TFLM: `tflite-micro` from PyPI (pip install tflite-micro), `print_allocations()` after one
invoke(), run in a subprocess because TFLM prints from C. Its total is what TFLM needs at run time
(it also holds input and output). Speed: our firmware, built by `edge-sdk run` for each board
(its core's kernel set: portable C on the M3, DSP on M4/M7/M33, MVE on M55; default --prefer
memory), on QEMU with -icount shift=0 and the input `input[i] = (int8)(i*7 + 3)`. Figures are
instructions executed, not cycles (QEMU does not model cycles), read from SysTick (resolution
40 instructions at 25 MHz). TFLM's instruction counts (reference kernels and CMSIS-NN) are the
peer figures of ../shared/BASELINES.md (same boards, same input, same counting method), cited,
not re-measured; there are none for the M3 or the M7. Flash: text + data of the model's object
file (weights, tables and kernel code). Prints a table and writes
benchmarks/results/mlperf_tiny.json.
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
# ../shared/BASELINES.md: TFLM instructions per Invoke() on each QEMU board (reference kernels,
# CMSIS-NN: DSP paths on the M4/M33, MVE paths on the M55). None measured on the M3 (our portable
# kernels, no DSP) or the M7.
TFLM_INSTRUCTIONS = {
    "mps2-an386": {  # Cortex-M4F
        "kws_ref_model": {"reference": 43_041_520, "cmsis_nn": 7_698_440},
        "vww_96_int8": {"reference": 100_238_800, "cmsis_nn": 24_101_960},
        "pretrainedResnet_quant": {"reference": 107_401_320, "cmsis_nn": 29_860_960},
        "ad01_int8": {"reference": 1_952_360, "cmsis_nn": 582_960},
    },
    "mps2-an505": {  # Cortex-M33
        "kws_ref_model": {"reference": 42_848_700, "cmsis_nn": 7_680_700},
        "vww_96_int8": {"reference": 99_716_950, "cmsis_nn": 24_046_750},
        "pretrainedResnet_quant": {"reference": 107_428_100, "cmsis_nn": 29_960_300},
        "ad01_int8": {"reference": 1_952_350, "cmsis_nn": 583_400},
    },
    "mps3-an547": {  # Cortex-M55
        "kws_ref_model": {"reference": 41_920_750, "cmsis_nn": 1_814_250},
        "vww_96_int8": {"reference": 95_664_562, "cmsis_nn": 6_558_312},
        "pretrainedResnet_quant": {"reference": 97_427_312, "cmsis_nn": 4_909_594},
        "ad01_int8": {"reference": 1_692_781, "cmsis_nn": 149_969},
    },
}
BOARDS = ["mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"]

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


def _num(value: int | None) -> str:
    return f"{value:,}" if value else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qemu", action="store_true", help="also run on the QEMU boards")
    ap.add_argument("--boards", default=",".join(BOARDS),
                    help=f"comma-separated QEMU boards (default: {','.join(BOARDS)})")
    ap.add_argument("--profile", action="store_true",
                    help="also time every layer (firmware built with EDGE_PROFILE)")
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
            row["qemu"] = {}
            for board in args.boards.split(","):
                result = edge_sdk.run(path, board=board, profile=args.profile)
                rep = result.report
                ours = rep["timer"]["instructions"][0]
                peer = TFLM_INSTRUCTIONS.get(board, {}).get(name)
                row["qemu"][board] = {
                    "cpu": rep["cpu"], "instructions": ours, "macs": rep["macs"],
                    "mac_per_instruction": round(rep["macs"] / ours, 3),
                    "arena_bytes": rep["arena_bytes"], "model_flash_bytes": rep["flash_bytes"],
                    "tflm_instructions": peer,
                    "vs_cmsis_nn": round(ours / peer["cmsis_nn"], 3) if peer else None,
                    "layers": rep["layers"] if args.profile else None,
                }
        rows.append(row)

    print(f"{'model':<24}{'arena':>9}{'+io':>8}{'= RAM':>9}{'TFLM arena':>12}{'ratio':>7}")
    for r in rows:
        t = r["tflm"]["total"] if r["tflm"] else "n/a (pip install tflite-micro)"
        print(f"{r['model']:<24}{r['arena_bytes']:>9}{r['io_bytes']:>8}{r['ram_bytes']:>9}"
              f"{t:>12}{r.get('ram_vs_tflm', ''):>7}")
    if args.qemu:
        print("\ninstructions per inference (QEMU -icount; ratio = ours / TFLM+CMSIS-NN)")
        print(f"{'model':<24}{'board':<12}{'cpu':<12}{'ours':>12}{'TFLM ref':>13}"
              f"{'CMSIS-NN':>12}{'ratio':>7}{'MAC/ins':>8}{'arena':>8}{'flash':>9}")
        for r in rows:
            for board, q in r["qemu"].items():
                peer = q["tflm_instructions"] or {}
                print(f"{r['model']:<24}{board:<12}{q['cpu']:<12}{q['instructions']:>12,}"
                      f"{_num(peer.get('reference')):>13}{_num(peer.get('cmsis_nn')):>12}"
                      f"{q['vs_cmsis_nn'] if q['vs_cmsis_nn'] else '-':>7}"
                      f"{q['mac_per_instruction']:>8}{q['arena_bytes']:>8}"
                      f"{q['model_flash_bytes']:>9}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"method": __doc__, "results": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
