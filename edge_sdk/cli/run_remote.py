"""`edge-sdk run-remote`: run inputs on a board that runs edge-sdk firmware."""

from __future__ import annotations

import argparse

from edge_sdk.cli.arrays import (
    check_output_path,
    load_inputs,
    save_results,
)
from edge_sdk.cli.options import (
    json_option,
    seconds,
)
from edge_sdk.cli.output import json_result
from edge_sdk.device.timing import describe
from edge_sdk.errors import UsageError
from edge_sdk.files import json_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    rr = sub.add_parser("run-remote", help="run inputs on a board that runs edge-sdk firmware")
    rr.add_argument("--port", required=True, help="/dev/ttyACM0, COM3, socket://HOST:PORT")
    rr.add_argument("--model", help="the .tflite it runs: checks the name, shapes the data")
    rr.add_argument("--input", required=True, help=".npy or .npz (keys input_0, ...) inputs")
    rr.add_argument("--output", help=".npy (one output) or .npz (keys output_0, output_1, ...)")
    rr.add_argument("--report", help="write timings as JSON")
    rr.add_argument("--baud", type=int, default=115200,
                    help="serial baud rate (ignored for socket://)")
    rr.add_argument("--timeout", type=seconds, default=10.0,
                    help="seconds a reply may take; a command gives up after twice this "
                         "(default 10)")
    rr.add_argument("--run-timeout", type=seconds,
                    help="seconds one inference may take (default: from the model's MACs and "
                         "the --board's clock, at least 10 s; 120 s without both)")
    rr.add_argument("--board", help="the board on the port: tells what its timer counts (an "
                                    "emulated board's SysTick counts instructions)")
    json_option(rr)
    rr.set_defaults(func=cmd_run_remote)


def cmd_run_remote(args: argparse.Namespace) -> int:
    from edge_sdk import api

    graph = api.load(args.model) if args.model else None
    check_output_path(args, graph)
    x = load_inputs(args.input)
    if isinstance(x, dict) and graph is None:
        raise UsageError("an .npz input needs --model, to know the order of the inputs")
    board = api.get_board(args.board) if args.board else None
    emulated = bool(board and board.emulator)
    run_timeout = args.run_timeout
    if run_timeout is None:
        run_timeout = 120.0
        if graph is not None and board is not None:  # as run and benchmark bound RUN
            from edge_sdk.device.launch import run_budget

            program = api.compile_for(graph, board).program
            run_timeout = run_budget(sum(s.macs for s in program.steps), board,
                                     program.graph.origin == "relax")
    result = api.run_remote(args.port, x, model=graph, baudrate=args.baud, timeout=args.timeout,
                            run_timeout=run_timeout, emulated=emulated)
    save_results(args, result)
    if args.json:
        print(json_text(json_result(result)))
        return 0
    timer = result.report["timer"]
    print(f"{result.report['model']} on {args.port}: {len(result.output_list[0])} inference(s), "
          f"{describe(timer)}")
    return 0
