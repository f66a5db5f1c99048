"""`edge-sdk build`: build a generated project."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    bl = sub.add_parser("build", help="build a generated project")
    bl.add_argument("project", help="a project folder made by `edge-sdk generate`")
    bl.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from edge_sdk import api

    result = api.build(args.project)
    if result is not None:
        model_flash = result.model_text_bytes + result.model_data_bytes
        print(f"built {result.executable}: model {model_flash} B flash; firmware text "
              f"{result.firmware_text_bytes} B, data "
              f"{result.firmware_data_bytes} B, bss {result.firmware_bss_bytes} B")
    else:
        print(f"built {args.project}")
    return 0
