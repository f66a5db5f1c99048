"""`edge-sdk run`: compile, build, start the board, run inference."""

from __future__ import annotations

import argparse

from edge_sdk import progress
from edge_sdk.cli.arrays import (
    check_output_path,
    load_inputs,
    save_results,
)
from edge_sdk.cli.options import (
    BOARD_HELP,
    MODEL_HELP,
    json_option,
    prefer_option,
    shape_option,
    threads_option,
    tuning_option,
)
from edge_sdk.cli.output import json_result, print_check, print_profile
from edge_sdk.device.timing import describe
from edge_sdk.errors import EdgeSDKError
from edge_sdk.files import json_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="compile, build, start the board, run inference")
    r.add_argument("model", help=MODEL_HELP)
    shape_option(r)
    r.add_argument("--board", default="host", help=BOARD_HELP)
    r.add_argument("--input", help=".npy (one input) or .npz (keys input_0, input_1, ...), "
                                   "int8 or float to quantize; default: the deterministic "
                                   "pattern of BASELINES.md")
    r.add_argument("--check", action="store_true",
                   help="compare the outputs with the reference interpreter on the same inputs "
                        "(LiteRT's reference kernels; onnxruntime for ONNX): integer outputs "
                        "bit-exact, float outputs where |ours - ref| <= atol + rtol*|ref| with "
                        "atol = rtol * the sample's largest |ref| (rtol 1e-5 TFLite, 1e-4 ONNX; "
                        "NaN equals NaN); exit code 7 if they differ")
    r.add_argument("--profile", action="store_true",
                   help="time every layer on the board (firmware built with EDGE_PROFILE); "
                        "prints a table and adds it to --report")
    r.add_argument("--output", help=".npy (one output) or .npz (keys output_0, output_1, ...)")
    r.add_argument("--report", help="write report.json")
    r.add_argument("--workdir", help="keep the generated firmware project here")
    threads_option(r)
    tuning_option(r)
    prefer_option(r)
    json_option(r)
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk.model_io import default_inputs, quantize_inputs

    graph = api.load(args.model)
    check_output_path(args, graph)
    x = load_inputs(args.input) if args.input else None
    result = api.run(graph, board=args.board, inputs=x, workdir=args.workdir,
                     profile=args.profile, prefer=args.prefer, threads=args.threads,
                     tuning=args.tuning)
    unchecked = None
    if args.check:  # into the report first, so --report keeps the verdict
        from edge_sdk.validate import check_run

        arrays = default_inputs(graph) if x is None else quantize_inputs(graph, x)
        try:
            with progress.stage("checking the outputs against the reference interpreter"):
                result.report["check"] = check_run(graph, arrays, result.output_list)
        except EdgeSDKError as err:  # the oracle failed, not the run: keep what the run made
            result.report["check"] = {"match": None, "error": str(err)}
            unchecked = err
    out = save_results(args, result)
    if unchecked is not None:
        raise unchecked
    if args.json:
        print(json_text(json_result(result)))
        return 0
    timer = result.report.get("timer", {})
    print(f"{graph.name} on {args.board}: output {out.reshape(-1)[:16].tolist()}"
          f"{' ...' if out.size > 16 else ''}")
    rep = result.report
    size = (f"model flash {rep['flash_bytes']} B" if "flash_bytes" in rep
            else f"weights {rep['weights_bytes']} B")
    speed = describe(timer) if timer.get("per_inference") else (
        "not timed (an emulated run: its time says nothing about the board)")
    print(f"arena {rep['arena_bytes']} B, {size}, {speed}")
    if args.profile:
        print_profile(result.report)
    if args.check:
        print_check(result.report["check"])
    return 0
