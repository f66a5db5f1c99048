"""One exception family for everything a user can get wrong.

Every error says what to do next: the CLI prints ``str(err)`` on one line and exits non-zero,
never a traceback. Library users catch :class:`EdgeSDKError`.
"""

from __future__ import annotations


def clipped(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut between words with an ellipsis
    where it is longer: a message quoting another tool's error stays readable ("the given
    tensor" rather than "the given tenso")."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0] if " " in line[: limit - 1] else line[: limit - 1]
    return cut.rstrip(" ,;:") + "\u2026"


class EdgeSDKError(Exception):
    """Base class: the message is one line that tells the user what to do."""

    exit_code = 1


class ModelError(EdgeSDKError):
    """The model file is unreadable, corrupt, or uses something we cannot compile."""

    exit_code = 2


class UnsupportedOpError(ModelError):
    """An operator we do not implement: refused at compile time, never a wrong answer."""


class BoardError(EdgeSDKError):
    """Unknown board, or a model that does not fit the board's memory."""

    exit_code = 3


class ToolchainError(EdgeSDKError):
    """A compiler, emulator or other external tool is missing or failed."""

    exit_code = 4


class DeviceError(EdgeSDKError):
    """The board (real or emulated) did not start, stopped answering, or sent corrupt data."""

    exit_code = 5


class UsageError(EdgeSDKError):
    """Bad command-line arguments or input files."""

    exit_code = 6


def did_you_mean(name: str, known: list[str]) -> str:
    """``"did you mean 'x'?  "`` for the closest known name, or nothing: a typo is fixed from
    the message, without reading the whole list."""
    import difflib

    close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
    if not close:
        return ""
    match = next(k for k in known if k.lower() == close[0])
    return f"did you mean '{match}'? "
