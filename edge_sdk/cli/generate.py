"""`edge-sdk generate`: a firmware project for a board (zephyr, arduino, cmsis, baremetal)."""

from __future__ import annotations

import argparse
import json

from edge_sdk.cli.arrays import (
    load_inputs,
)
from edge_sdk.cli.options import (
    BOARD_HELP,
    MODEL_HELP,
    prefer_option,
    shape_option,
    tuning_option,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="a firmware project for a board (zephyr, arduino, "
                                         "cmsis, baremetal)")
    g.add_argument("model", help=MODEL_HELP)
    shape_option(g)
    g.add_argument("--board", required=True, help=BOARD_HELP)
    g.add_argument("--template", help="default: the board's first template (edge-sdk boards)")
    g.add_argument("-o", "--output", required=True, help="project directory")
    g.add_argument("--force", action="store_true", help="replace an existing edge-sdk project")
    g.add_argument("--sample", help=".npy/.npz input the firmware runs at boot (default: a "
                                    "pattern)")
    prefer_option(g)
    tuning_option(g)
    g.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from edge_sdk import api

    sample = load_inputs(args.sample) if args.sample else None
    out = api.generate(args.model, args.board, args.output, template=args.template,
                       force=args.force, sample=sample, prefer=args.prefer,
                       tuning=args.tuning)
    meta = json.loads((out / "edge_project.json").read_text(encoding="utf-8"))
    print(f"{meta['model']} -> {out} ({meta['template']} project for {meta['board']}); "
          f"see {out}/README* for build and flash steps")
    return 0
