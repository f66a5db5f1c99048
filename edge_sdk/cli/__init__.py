"""``edge-sdk`` command line: one module per command, each with its arguments beside its
handler (``add_parser`` and ``cmd_<command>``); :mod:`.app` assembles the parser and turns every
error into one line on stderr and a non-zero exit; :mod:`.options`, :mod:`.arrays` and
:mod:`.output` are what several commands share."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The ``edge-sdk`` entry point (``pyproject.toml``'s script)."""
    from edge_sdk.cli.app import main as run

    return run(argv)


__all__ = ["main"]
