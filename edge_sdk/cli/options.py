"""The command line's shared pieces: argparse types that refuse bad values in one line, the
options several commands take, and the parser class with the house style of errors."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

from edge_sdk.errors import UsageError, did_you_mean

MODEL_HELP = "the model: .tflite (int8, int16 or float), or .onnx"


def thread_count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError("--threads takes 0 (one per CPU) to 64")
    return value


def count(most: int, least: int = 1):
    """An argparse type: a whole number from ``least`` to ``most`` (``--runs 10**12`` tried
    to allocate 446 TiB of inputs)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"takes {least} to {most:,}, not {text}")
        return value
    return parse


def seconds(text: str) -> float:
    """A time limit: finite and above zero (``nan`` and ``inf`` never give up, 0 and below
    gave a misleading "cannot open serial port")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0 or value > 86400:
        raise argparse.ArgumentTypeError(f"takes seconds above 0 and at most a day, not {text}")
    return value


BOARD_HELP = "a board of `edge-sdk boards`, or a board .yaml file"


def verbosity_options(sp: argparse.ArgumentParser, default: object) -> None:
    group = sp.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="show each step and its time, even when the output is not a terminal")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="print nothing but errors, warnings and --json output")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text and default not in (None, False)
                and default is not argparse.SUPPRESS and not isinstance(default, bool)):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the house style: one line, what to do, exit code 6 (usage;
    argparse's own 2 is the model-error code here), "did you mean" for a mistyped command."""

    def error(self, message: str) -> NoReturn:
        import re

        m = re.match(r"argument (\w+): invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            known = [c.strip(" '") for c in m.group(3).split(",")]
            message = (f"unknown {'command' if m.group(1) == 'COMMAND' else m.group(1)} "
                       f"'{m.group(2)}': {did_you_mean(m.group(2), known)}choose from "
                       f"{', '.join(known)}")
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(UsageError.exit_code)


def json_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--json", action="store_true",
                    help="print the result as JSON (the report) instead of the summary")


def shape_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--input-shape", action="append", metavar="NAME:D1,D2,...",
                    help="the shape of an input that leaves a dimension open (-1), e.g. "
                         "audio:1,16000; repeat for several inputs (default: the shape the "
                         "file stores)")


def tuning_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--tuning", help="Linux boards: schedules from `edge-sdk tune` "
                                     "(default: the built-in ones)")


def threads_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--threads", type=thread_count, default=0,
                    help="Linux boards: threads sharing each layer's rows (default 0: one "
                         "per CPU of the machine that runs it)")


def prefer_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--prefer", choices=("memory", "speed"), default="memory",
                    help="memory (default): the arena holds only what the tensors need; "
                         "speed: kernels may add im2col scratch to it where that is faster")
