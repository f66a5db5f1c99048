"""`edge-sdk compile`: INT8 model -> C sources, model.h and report.json."""

from __future__ import annotations

import argparse

from edge_sdk.cli.options import (
    BOARD_HELP,
    MODEL_HELP,
    json_option,
    prefer_option,
    shape_option,
    tuning_option,
)
from edge_sdk.files import json_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compile", help="INT8 model -> C sources, model.h and report.json")
    c.add_argument("model", help=MODEL_HELP)
    shape_option(c)
    c.add_argument("--board", default="host", help=BOARD_HELP)
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--force", action="store_true", help="replace an existing output directory")
    json_option(c)
    prefer_option(c)
    tuning_option(c)
    c.set_defaults(func=cmd_compile)


def cmd_compile(args: argparse.Namespace) -> int:
    from edge_sdk import api

    board = api.get_board(args.board)
    compiled = api.compile_for(args.model, board, prefer=args.prefer, tuning=args.tuning)
    out = api.write_compiled(compiled, args.output, board=args.board, force=args.force)
    if args.json:
        print(json_text({"output": str(out), **api.report(compiled, board)}))
        return 0
    if compiled.gpu is not None:
        rules = sorted(set(compiled.gpu.schedules.values()))
        print(f"{compiled.name}: {len(compiled.program.steps)} layers, "
              f"{len(compiled.gpu.device.launches)} GPU kernel launches "
              f"({compiled.gpu.target.summary}; schedules: {', '.join(rules)}), "
              f"weights {compiled.weights_bytes} B -> {out}")
        return 0
    print(f"{compiled.name}: {len(compiled.program.steps)} layers, arena "
          f"{compiled.memory.arena_bytes} B, weights {compiled.weights_bytes} B -> {out}")
    return 0
