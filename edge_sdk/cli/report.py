"""`edge-sdk report`: per-layer table of a report (or a model), and an HTML page / PNG of its
memory plan.
"""

from __future__ import annotations

import argparse

from edge_sdk.cli.arrays import (
    check_writable,
)
from edge_sdk.cli.options import (
    BOARD_HELP,
)
from edge_sdk.files import json_text, write_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    rp = sub.add_parser("report", help="per-layer table of a report (or a model), and an HTML "
                                       "page / PNG of its memory plan")
    rp.add_argument("source", help="report.json, a folder holding one (compile -o DIR), or a "
                                   "model to compile for --board")
    rp.add_argument("--board", default="host", help="with a model: " + BOARD_HELP)
    rp.add_argument("--html", help="write one self-contained HTML page here")
    rp.add_argument("--png", help="write the memory plan as a PNG here")
    rp.add_argument("--json", action="store_true", help="print the report's JSON instead")
    rp.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk import render as rp

    if args.source.endswith((".tflite", ".onnx")):  # a model: compile it for the board first
        board = api.get_board(args.board)
        rep = api.report(api.compile_for(args.source, board), board)
    else:
        rep = rp.load_report(args.source)
    for path, what in ((args.html, "--html"), (args.png, "--png")):
        check_writable(path, what)
    if args.json:
        print(json_text(rep))
    else:
        print(rp.layer_table(rep))
    if args.html:
        write_atomic(args.html, rp.render_html(rep).encode())
        print(f"wrote {args.html}")
    if args.png:
        write_atomic(args.png, rp.render_png(rep))
        print(f"wrote {args.png}")
    return 0
