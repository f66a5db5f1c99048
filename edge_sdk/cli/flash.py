"""`edge-sdk flash`: flash a built project (openocd, pyocd, west, serial, qemu)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("flash", help="flash a built project (openocd, pyocd, west, serial, qemu)")
    f.add_argument("project", help="a built project folder (`edge-sdk build`)")
    f.add_argument("--runner", help="openocd, pyocd, west, serial, qemu or arduino; default: "
                                    "the board's (edge-sdk boards), arduino for Arduino projects")
    f.add_argument("--port", help="serial runner: bootloader drive; qemu: TCP port; arduino: "
                                  "the board's serial port")
    f.add_argument("--file", help="the firmware file, if not where the project builds it")
    f.add_argument("--target", help="pyOCD target name, overriding the board's")
    f.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    f.set_defaults(func=cmd_flash)


def cmd_flash(args: argparse.Namespace) -> int:
    from edge_sdk.device.runners import execute, plan_flash, project_meta
    from edge_sdk.project.boards import get_board

    project = Path(args.project)
    plan = plan_flash(project, args.runner, port=args.port,
                      file=Path(args.file) if args.file else None, target=args.target)
    for command in plan.commands:
        print(shlex.join(command))
    if plan.uf2:
        print(f"copy {plan.uf2[0]} as UF2 -> {plan.uf2[1] / 'EDGE_SDK.UF2'}")
    if args.dry_run:
        return 0
    if plan.runner == "qemu":  # runs until stopped: say where its UART is before it starts
        print(f"QEMU starts; {plan.verify.split('; ')[-1]} (Ctrl-C stops it)", flush=True)
    execute(plan, get_board(project_meta(project)["board"]), plan.firmware)
    print("QEMU stopped" if plan.runner == "qemu" else
          f"flashed with {plan.runner}; verified: {plan.verify}")
    return 0
