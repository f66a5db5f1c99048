#!/usr/bin/env python3
"""edge-sdk's post-training quantization vs the official MLPerf Tiny INT8 models.

    python3 benchmarks/quantization.py [--calibration N] [--held-out N] [--method minmax]

For each float model, quantize it with N synthetic calibration inputs spread over the official
int8 model's input range, then run float, ours and official on the same held-out inputs (LiteRT
reference kernels) and compare with the float outputs: top-1 agreement for the classifiers, RMSE
for the autoencoder. Prints a table and writes benchmarks/results/quantization.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_sdk.quantization import quantize  # noqa: E402
from tests.test_quantize import PAIRS, agreement, outputs_float, synthetic  # noqa: E402

MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibration", type=int, default=100)
    ap.add_argument("--held-out", type=int, default=200)
    ap.add_argument("--method", default="minmax", choices=["minmax", "percentile", "kl"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quantization.json"))
    args = ap.parse_args()
    rows = []
    for name, (official_name, classifier) in PAIRS.items():
        float_path, official = MODELS / f"{name}.tflite", MODELS / f"{official_name}.tflite"
        calib = synthetic(official, args.calibration, seed=1)
        held = synthetic(official, args.held_out, seed=2)
        t0 = time.perf_counter()
        result = quantize(float_path, calib, method=args.method, progress=False)
        seconds = time.perf_counter() - t0
        ref = outputs_float(float_path, held)
        ours = agreement(ref, outputs_float(result.model, held), classifier)
        theirs = agreement(ref, outputs_float(official, held), classifier)
        sqnr = [la["sqnr_db"] for la in result.report["layers"] if la["sqnr_db"] is not None]
        rows.append({"model": name, "metric": "top-1 agreement" if classifier else "-RMSE",
                     "ours": ours, "official": theirs, "min_layer_sqnr_db": min(sqnr),
                     "quantize_seconds": round(seconds, 2), "bytes": len(result.model)})
    print(f"{'model':<24}{'metric':<17}{'ours':>9}{'official':>10}{'min SQNR dB':>13}{'s':>7}")
    for r in rows:
        print(f"{r['model']:<24}{r['metric']:<17}{r['ours']:>9.4f}{r['official']:>10.4f}"
              f"{r['min_layer_sqnr_db']:>13.1f}{r['quantize_seconds']:>7.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"method": args.method, "calibration": args.calibration,
                               "held_out": args.held_out, "results": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
