"""`edge-sdk validate`: run layer by layer on the board and compare every layer's output with
LiteRT's reference kernels.
"""

from __future__ import annotations

import argparse

from edge_sdk.cli.arrays import (
    load_inputs,
)
from edge_sdk.cli.options import (
    BOARD_HELP,
    MODEL_HELP,
    shape_option,
)
from edge_sdk.files import write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("validate", help="run layer by layer on the board and compare every "
                                        "layer's output with LiteRT's reference kernels")
    v.add_argument("model", help=MODEL_HELP)
    shape_option(v)
    v.add_argument("--board", default="host", help=BOARD_HELP)
    v.add_argument("--input", help=".npy or .npz (keys input_0, ...) inputs; default: the "
                                   "deterministic pattern of BASELINES.md")
    v.add_argument("--report", help="write the per-layer comparison as JSON")
    v.add_argument("--workdir", help="keep the generated firmware project here")
    v.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk.validate import CheckFailed

    graph = api.load(args.model)
    x = load_inputs(args.input) if args.input else None
    rep = api.validate(graph, board=args.board, inputs=x, workdir=args.workdir)
    if args.report:
        write_json(args.report, rep)
    floating = any("max_rel_error" in r for r in rep["layers"])
    print(f"{'step':>4}  {'op':<22} {'layer':<34} {'elements':>9} {'differ':>7} {'max err':>9}"
          + (f" {'rel err':>9}" if floating else ""))
    for r in rep["layers"]:
        name = r["name"] if len(r["name"]) <= 34 else r["name"][:31] + "..."
        line = (f"{r['step']:>4}  {r['op']:<22} {name:<34} {r['elements']:>9} "
                f"{r['differing']:>7} {r['max_abs_error']:>9.3g}")
        if floating:
            line += f" {r.get('max_rel_error', 0.0):>9.2g}"
        print(line + ("" if r["match"] else "  <- differs"))
    print(f"{rep['model']} on {rep['board']}, {rep['samples']} sample(s), against "
          f"{rep['reference']}")
    first = rep["first_divergence"]
    if first is None:
        print(f"every layer matches ({len(rep['layers'])} layers; integer: bit-exact, "
              "float: |ours - ref| <= 1e-05 * max|ref| + 1e-05 * |ref|)")
        return 0
    raise CheckFailed(f"validate: layer {first['index']} ({first['op']}, '{first['name']}') is "
                      "the first that differs from the reference; this is a bug: please report "
                      "it with the model" + (" (--report has the details)" if args.report else ""))
