"""``edge-sdk`` command line: the parser built from each command's module, and the one place
where every error becomes one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import errno
import functools
import io
import os
import signal
import sys
import threading
from pathlib import Path
from typing import cast

from edge_sdk import __version__, progress
from edge_sdk.cli import (
    benchmark,
    boards,
    build,
    compile,
    deploy,
    flash,
    generate,
    inspect,
    monitor,
    ops,
    quantize,
    report,
    run,
    run_remote,
    tune,
    validate,
)
from edge_sdk.cli.arrays import check_writable
from edge_sdk.cli.options import HelpFormatter, Parser, verbosity_options
from edge_sdk.errors import EdgeSDKError, UsageError

DESCRIPTION = ("``edge-sdk`` command line. Every error becomes one line on stderr and a "
               "non-zero exit.")

# In the order `edge-sdk --help` lists them.
COMMANDS = (compile, tune, ops, validate, run, generate, build, flash, monitor, run_remote,
            quantize, deploy, benchmark, report, inspect, boards)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="edge-sdk", description=DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    verbosity_options(p, False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=cast(type[Parser], functools.partial(
                               Parser, formatter_class=HelpFormatter)))
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in sub.choices.values():  # -v/-q after the command too: `run -v ...`
        verbosity_options(command_parser, argparse.SUPPRESS)
    return p


# Commands whose -o/--output names a file (the others name a folder).
FILE_OUTPUTS = {"run", "validate", "deploy", "quantize", "boards"}


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: emulators and scp children are
    ended, scratch directories and partial uploads removed, by the code's own cleanup."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from edge_sdk import provenance

    provenance.command_line = ["edge-sdk", *(sys.argv[1:] if argv is None else argv)]
    try:
        if threading.current_thread() is not threading.main_thread():
            return _main(argv)
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return _main(argv)
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        provenance.command_line = None


def _plain_text(err: UnicodeError) -> tuple[str, int]:
    """Spell what an ASCII terminal cannot show ("µs" -> "us") instead of crashing on it."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    text = err.object[err.start:err.end]
    return "".join({"µ": "u", "—": "-", "≈": "~"}.get(c, "?") for c in text), err.end


codecs.register_error("edge_sdk_plain", _plain_text)


def _plain_streams() -> None:
    """A C/POSIX locale without UTF-8 (some CI images, cron, ssh without LANG) gets an ASCII
    stdout; the summary lines must still print."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "µ".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            with contextlib.suppress(AttributeError, ValueError):
                cast(io.TextIOWrapper, stream).reconfigure(errors="edge_sdk_plain")


def _main(argv: list[str] | None) -> int:
    _plain_streams()

    args = parser().parse_args(argv)
    progress.level = (progress.QUIET if args.quiet else progress.VERBOSE if args.verbose
                      else progress.NORMAL)
    quiet = args.quiet and not getattr(args, "json", False)
    try:
        if quiet:  # the summary lines go; errors and warnings (stderr) stay
            with contextlib.redirect_stdout(io.StringIO()):
                return _dispatch(args, argv)
        return _dispatch(args, argv)
    finally:
        progress.level = progress.NORMAL


def input_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``--input-shape NAME:1,16000`` (repeatable) -> {NAME: (1, 16000)}."""
    shapes = {}
    for item in items:
        name, _, dims = item.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not name or not shape or any(d < 1 for d in shape):
            raise UsageError(f"--input-shape takes NAME:D1,D2,... with every dimension 1 or "
                             f"more (e.g. audio:1,16000), not '{item}'")
        shapes[name] = shape
    return shapes


def _dispatch(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        if getattr(args, "input_shape", None):  # a Graph at those shapes, for every command
            from edge_sdk import api

            args.model = api.load(args.model, input_shapes=input_shapes(args.input_shape))
        command = getattr(args, "command", None) or args.func.__name__.removeprefix("cmd_")
        check_writable(getattr(args, "output", None),
                        "--output file" if command in FILE_OUTPUTS else "--output")
        check_writable(getattr(args, "report", None), "--report")
        return int(args.func(args))
    except EdgeSDKError as err:
        print(f"edge-sdk: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        # `edge-sdk inspect M | head`: the reader has gone. Stop quietly, as Unix tools do, and
        # point stdout at /dev/null so that Python's own flush at exit does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal
    except KeyboardInterrupt:
        print("edge-sdk: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the file system said no (a name too long, /proc, a full disk)
        if err.errno not in USER_ERRNOS:
            raise
        where = f" ({str(err.filename)[:120]})" if err.filename else ""
        print(f"edge-sdk: error: cannot write or read a file{where}: {err.strerror}; choose "
              "another path", file=sys.stderr)
        return UsageError.exit_code
    except MemoryError:
        print("edge-sdk: error: out of memory: the model or the inputs are larger than this "
              "machine can hold; use a smaller model, batch or --runs", file=sys.stderr)
        return UsageError.exit_code
    except Exception as err:  # the last guard: a bug of ours, never a traceback on screen
        crash = save_crash_report(err, argv)
        print(f"edge-sdk: internal error ({type(err).__name__}: "
              f"{' '.join(str(err).split())[:200]}): this is a bug, please report it with "
              f"{crash}", file=sys.stderr)
        return INTERNAL_ERROR


# Exit status of an unexpected exception (BSD's EX_SOFTWARE): distinct from every user error.
INTERNAL_ERROR = 70
# OSErrors that are about the paths a user gave, never a bug of ours.
USER_ERRNOS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EROFS,
               errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
               errno.ELOOP, errno.EXDEV, errno.EFBIG}


def save_crash_report(err: BaseException, argv: list[str] | None) -> Path:
    """The traceback, the command and the versions, in a file the user can attach to a report
    (``$EDGE_SDK_CRASH_DIR``, else the temp directory)."""
    import platform
    import tempfile
    import time
    import traceback

    folder = Path(os.environ.get("EDGE_SDK_CRASH_DIR") or tempfile.gettempdir())
    text = "".join([
        f"edge-sdk {__version__} crash, {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n",
        f"command: edge-sdk {' '.join(sys.argv[1:] if argv is None else argv)}\n",
        f"python {platform.python_version()} on {platform.platform()}\n\n",
        *traceback.format_exception(err),
    ])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", prefix="edge-sdk-crash-", suffix=".txt",
                                         dir=folder, delete=False) as f:
            f.write(text)
        return Path(f.name)
    except OSError:  # nowhere to write: the traceback goes to stderr after all
        sys.stderr.write(text)
        return Path("(stderr above)")


if __name__ == "__main__":
    sys.exit(main())
