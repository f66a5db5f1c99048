"""`edge-sdk tune`: time each layer's kernel schedules on a Linux board and keep the fastest (for
--tuning).
"""

from __future__ import annotations

import argparse
import shlex

from edge_sdk.cli.options import (
    MODEL_HELP,
    count,
    shape_option,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tune", help="time each layer's kernel schedules on a Linux board "
                                    "and keep the fastest (for --tuning)")
    t.add_argument("model", help=MODEL_HELP)
    shape_option(t)
    t.add_argument("--board", required=True, help="a Linux board: rpi4, rpi5, linux-x86_64...")
    t.add_argument("--host", help="user@address: measure on the board over SSH (default: "
                                  "this machine, natively or under the board's emulator)")
    t.add_argument("--identity", help="SSH private key")
    t.add_argument("--port", type=int, help="SSH port")
    t.add_argument("--known-hosts", help="known_hosts file (default: ssh's)")
    t.add_argument("--accept-new-host-key", action="store_true",
                   help="trust a host not yet in known_hosts (first contact)")
    t.add_argument("--run-prefix", help="command before the benchmark, e.g. "
                                        "'qemu-aarch64-static'")
    t.add_argument("--trials", type=count(1000),
                   help="candidate schedules per layer (default: all)")
    t.add_argument("--runs", type=count(100_000), default=20, help="timed runs per candidate")
    t.add_argument("-o", "--output", required=True,
                   help="tuning file (JSON); an existing one is resumed")
    t.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from edge_sdk import api

    tuning = api.tune(args.model, args.board, args.output, host=args.host, trials=args.trials,
                      runs=args.runs, identity=args.identity, port=args.port,
                      known_hosts=args.known_hosts,
                      accept_new_host_key=args.accept_new_host_key,
                      run_prefix=shlex.split(args.run_prefix) if args.run_prefix else None)
    gains = [r["default_ns"] / max(r["best_ns"], 1) for r in tuning.records.values()]
    print(f"{len(tuning.records)} layer(s) tuned for {tuning.board} ({tuning.isa}) -> "
          f"{args.output}; fastest vs default schedule: up to "
          f"{max(gains, default=1.0):.2f}x on a layer")
    return 0
