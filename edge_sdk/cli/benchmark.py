"""`edge-sdk benchmark`: time N inferences on a board: min/median/max in the board's own unit, and
as time where known.
"""

from __future__ import annotations

import argparse

from edge_sdk.cli.arrays import (
    check_writable,
)
from edge_sdk.cli.options import (
    BOARD_HELP,
    MODEL_HELP,
    count,
    shape_option,
)
from edge_sdk.files import write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    bm = sub.add_parser("benchmark", help="time N inferences on a board: min/median/max in "
                                          "the board's own unit, and as time where known")
    bm.add_argument("model", help=MODEL_HELP)
    shape_option(bm)
    bm.add_argument("--board", default="host", help=BOARD_HELP)
    bm.add_argument("--runs", type=count(100_000), default=10, help="inferences to time")
    bm.add_argument("--port", help="a flashed microcontroller's serial port (else the host build "
                                   "or QEMU is started here)")
    bm.add_argument("--host", help="a Linux board over SSH: user@address")
    bm.add_argument("--identity", help="--host: SSH private key")
    bm.add_argument("--ssh-port", type=int, help="--host: SSH port")
    bm.add_argument("--known-hosts", help="--host: known_hosts file (default: ssh's)")
    bm.add_argument("--accept-new-host-key", action="store_true",
                    help="--host: trust a host not yet in known_hosts (first contact)")
    bm.add_argument("--json", help="write the figures here as JSON")
    bm.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from edge_sdk import benchmark as bm

    check_writable(args.json, "--json")
    ssh = {k: v for k, v in (("identity", args.identity), ("port", args.ssh_port),
                             ("known_hosts", args.known_hosts)) if v is not None}
    if args.accept_new_host_key:
        ssh["accept_new_host_key"] = True
    result = bm.benchmark(args.model, args.board, runs=args.runs, port=args.port,
                          host=args.host, **ssh)
    print(bm.describe(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
