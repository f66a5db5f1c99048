"""`edge-sdk monitor`: print what a board sends on its serial port."""

from __future__ import annotations

import argparse

from edge_sdk.cli.options import (
    seconds,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("monitor", help="print what a board sends on its serial port")
    m.add_argument("--port", required=True, help="/dev/ttyACM0, COM3, socket://HOST:PORT")
    m.add_argument("--baud", type=int, default=115200,
                   help="serial baud rate (ignored for socket://)")
    m.add_argument("--seconds", type=seconds, help="stop after this long (default: Ctrl-C)")
    m.set_defaults(func=cmd_monitor)


def cmd_monitor(args: argparse.Namespace) -> int:
    from edge_sdk.device.monitor import monitor

    monitor(args.port, seconds=args.seconds, baudrate=args.baud)
    return 0
