"""`edge-sdk ops`: the operators and data types each target runs (Markdown)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    o = sub.add_parser("ops", help="the operators and data types each target runs (Markdown)")
    o.set_defaults(func=cmd_ops)


def cmd_ops(args: argparse.Namespace) -> int:
    from edge_sdk.support import operator_table

    del args
    print(operator_table())
    return 0
