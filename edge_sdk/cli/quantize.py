"""`edge-sdk quantize`: float .tflite/.onnx -> full-integer INT8 .tflite."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_sdk.cli.options import (
    MODEL_HELP,
)
from edge_sdk.errors import UsageError
from edge_sdk.files import write_atomic, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("quantize", help="float .tflite/.onnx -> full-integer INT8 .tflite")
    q.add_argument("model", help=MODEL_HELP)
    q.add_argument("--calibration", required=True,
                   help=".npy batch (samples on the first axis), a directory of .npy files, or "
                        "for several inputs an .npz of batches keyed input_0, input_1, ...")
    q.add_argument("--method", default="minmax", choices=["minmax", "percentile", "kl"],
                   help="how activation ranges are calibrated")
    q.add_argument("--percentile", type=float, default=99.99,
                   help="--method percentile: the percentile of |x| kept in range")
    q.add_argument("--per-channel", dest="per_channel", action="store_true", default=True,
                   help="per-channel weights (default)")
    q.add_argument("--per-tensor", dest="per_channel", action="store_false",
                   help="one scale per weight tensor (default: one per output channel)")
    q.add_argument("--skip-layers", help="operator indices to keep in float, e.g. 0,5")
    q.add_argument("--float-io", action="store_true", help="keep float32 input and output")
    q.add_argument("--nhwc", action="store_true",
                   help="ONNX models: 4-D inputs and outputs NHWC in the int8 model (default: "
                        "the model's own NCHW); calibration data stays NCHW")
    q.add_argument("--evaluation", help="data held out for the report, in --calibration's "
                                        "forms (default: the calibration samples)")
    q.add_argument("-o", "--output", required=True, help="the int8 .tflite to write")
    q.add_argument("--report", help="write the quantization report as JSON")
    q.set_defaults(func=cmd_quantize)


def cmd_quantize(args: argparse.Namespace) -> int:
    from edge_sdk.quantization import quantize

    try:
        parts = (args.skip_layers or "").split(",")
        skip = [int(s) for s in parts if s.strip()]
    except ValueError:
        raise UsageError(f"--skip-layers takes operator indices like 0,5, not "
                         f"'{args.skip_layers}'") from None
    result = quantize(args.model, args.calibration, method=args.method,
                      percentile=args.percentile, per_channel=args.per_channel,
                      skip_layers=skip, float_io=args.float_io,
                      evaluation=args.evaluation, nhwc=args.nhwc)
    out = Path(args.output)
    write_atomic(out, result.model)
    if args.report:
        write_json(args.report, result.report)
    e = result.report["end_to_end"]
    worst = min((layer for layer in result.report["layers"] if layer["sqnr_db"] is not None),
                key=lambda layer: layer["sqnr_db"], default=None)
    if "top1_agreement" in e:
        summary = f"top-1 agreement with float {e['top1_agreement']:.1%}, "
    else:  # not a classifier: the error, as a fraction of the output and as SQNR
        summary = "output " + ", ".join(
            f"{o['output']}: SQNR {o['sqnr_db']} dB, RMS error "
            f"{o['relative_rms_error']:.2%} of the output's RMS" for o in e["outputs"]) + "; "
    print(f"wrote {out} ({len(result.model)} B): {summary}max output error "
          f"{e['max_abs_error']:.4g} on {e['samples']} samples"
          + (f"; lowest layer SQNR {worst['sqnr_db']} dB ([{worst['index']}] {worst['op']})"
             if worst else "")
          + (f"; kept float (no int8 kernel in TFLite): layers {floats}"
             if (floats := result.report.get("float_only_layers")) else ""))
    if result.report["input_layout"].startswith("NHWC"):
        print("its 4-D inputs and outputs are NHWC (the ONNX model's NCHW, transposed): give it "
              "NHWC data; calibration and evaluation data stayed NCHW")
    for warning in result.report["warnings"]:
        print(f"edge-sdk: warning: {warning}", file=sys.stderr)
    return 0
