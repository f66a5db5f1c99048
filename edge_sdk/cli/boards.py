"""`edge-sdk boards`: list the boards edge-sdk knows, or import one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_sdk.cli.options import (
    json_option,
)
from edge_sdk.errors import EdgeSDKError, UsageError
from edge_sdk.files import json_text, write_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("boards", help="list the boards edge-sdk knows, or import one")
    b.add_argument("--import-pdsc", nargs=2, metavar=("FILE.pdsc", "DEVICE"),
                   help="write a board file from a CMSIS pack description")
    b.add_argument("--name", help="board name for --import-pdsc (default: the device)")
    b.add_argument("-o", "--output", help="board file to write (default: NAME.yaml)")
    b.add_argument("--force", action="store_true", help="overwrite an existing board file")
    json_option(b)
    b.set_defaults(func=cmd_boards)


def cmd_boards(args: argparse.Namespace) -> int:
    from edge_sdk.project.boards import all_boards

    if args.import_pdsc:
        import yaml

        from edge_sdk.project.pdsc import board_from_pdsc

        pdsc, device = args.import_pdsc
        board = board_from_pdsc(Path(pdsc), device, name=args.name)
        out = Path(args.output or f"{board['name']}.yaml")
        if out.exists() and not args.force:
            raise UsageError(f"{out} already exists: choose another path (-o) or pass --force")
        write_atomic(out, (f"# Imported by edge-sdk from {Path(pdsc).name}, device {device}.\n"
                               + yaml.safe_dump(board, sort_keys=False)).encode("utf-8"))
        print(f"wrote {out}: {board['cpu']}, flash {board['memory']['flash']['size']} B, "
              f"RAM {board['memory']['ram']['size']} B; use it with --board {out}")
        return 0

    from edge_sdk.render import human_bytes

    def how_it_runs(b) -> str:
        if b.port == "host":
            return "here (host build)"
        if b.emulator:
            return "here (QEMU)"
        if b.linux is None:
            return "flash, then serial (run-remote)"
        from edge_sdk.device import linux

        try:
            return "here, or SSH (deploy)" if not linux.local_prefix(b) else \
                "here (qemu-user), or SSH (deploy)"
        except EdgeSDKError:
            return "SSH (deploy)"

    rows: list[dict[str, Any]] = []
    for b in all_boards().values():
        runs = how_it_runs(b)
        rows.append({"board": b.name, "cpu": b.cpu, "flash_capacity_bytes": b.flash.size,
                     "ram_capacity_bytes": b.ram.size, "templates": list(b.templates),
                     "runner": "process" if b.port == "host" else b.default_runner,
                     "run": runs, "description": b.description})
    if args.json:
        print(json_text({"boards": rows}))
        return 0
    table = [["board", "cpu", "flash", "RAM", "templates", "flash with", "edge-sdk run"]] + [
        [r["board"], r["cpu"], human_bytes(r["flash_capacity_bytes"]),
         human_bytes(r["ram_capacity_bytes"]),
         ",".join(r["templates"]) or "-", r["runner"], r["run"]] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    right = {2, 3}
    for row in table:
        print("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    return 0
