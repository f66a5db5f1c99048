"""Progress on the terminal: one line per step that takes a while (compile, build, boot,
calibration), with its elapsed time, on stderr.

Shown when stderr is a terminal, or always with ``-v``; never with ``-q``. Nothing is printed
when the output is captured (a pipe, a CI log) unless asked, so logs and error output stay one
line per error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

QUIET, NORMAL, VERBOSE = 0, 1, 2
level = NORMAL


def enabled() -> bool:
    return level == VERBOSE or (level == NORMAL and sys.stderr.isatty())


@contextmanager
def stage(what: str) -> Iterator[None]:
    """``with stage("building the firmware"):`` prints what is being done, then how long it
    took (or that it failed)."""
    if not enabled():
        yield
        return
    tty = sys.stderr.isatty()
    print(f"edge-sdk: {what}...", end="" if tty else "\n", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        print(" failed" if tty else f"edge-sdk: {what}: failed", file=sys.stderr, flush=True)
        raise
    took = time.monotonic() - start
    done = f"done in {took:.1f} s"
    print(f" {done}" if tty else f"edge-sdk: {what}: {done}", file=sys.stderr, flush=True)


def warn(what: str) -> None:
    """A warning, on stderr unless ``-q``: something the user should know, not an error."""
    if level != QUIET:
        print(f"edge-sdk: warning: {what}", file=sys.stderr, flush=True)


def note(what: str) -> None:
    """One line of progress inside a long step (``tune``'s layers), when progress is shown."""
    if enabled():
        print(f"edge-sdk: {what}", file=sys.stderr, flush=True)
