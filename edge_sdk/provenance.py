"""Which edge-sdk made a report, when, and from what command line.

The command line is the CLI's own arguments when ``edge-sdk`` (or :func:`edge_sdk.cli.main`)
runs; from Python it is the script's ``sys.argv``. Reports carry it so that a page or a JSON
file found later says how to make it again.
"""

from __future__ import annotations

import datetime
import shlex
import sys

from edge_sdk.version import __version__

# Set by the CLI for the command it is running; None outside it.
command_line: list[str] | None = None


def made() -> dict:
    argv = command_line if command_line is not None else sys.argv
    return {"edge_sdk": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(argv)}
