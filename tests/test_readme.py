"""The README's tour, pasted: every shell line of "A five-minute tour" runs as written, in a
folder laid out like the checkout (``../shared`` beside it, ``.venv`` in it), except the lines
marked ``# on your board`` or ``# your own model``; each ``$ command`` block's shown output is
what the command prints today.

The README promised this before and two of its commands exited 6 on ``[--identity ...]``
placeholders, and its inspect and profile examples showed figures from older kernels.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SKIP = ("# on your board", "# your own model")


def tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## A five-minute tour")
    return text[start:text.index("\n## ", start + 10)]


def blocks(section: str) -> list[list[str]]:
    return [b.splitlines() for b in re.findall(r"```sh\n(.*?)```", section, re.S)]


def commands(lines: list[str]) -> list[str]:
    """Shell lines, continuations joined, comment-only lines dropped."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1] + " " + line.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            out.append(line)
    return out


def test_tour_blocks_are_found():
    found = blocks(tour())
    assert len(found) >= 10
    assert any(line.startswith("$ edge-sdk inspect") for b in found for line in b)


@pytest.mark.slow
def test_every_tour_command_pastes(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    (checkout / ".venv").symlink_to(Path(sys.prefix))  # the environment running these tests
    script, checks = ["set -e"], []
    for block in blocks(tour()):
        if block[0].startswith("$ "):  # a transcript: the command, then what it prints
            k = len(checks)
            script.append(f"{block[0][2:]} > transcript_{k}.txt")
            checks.append((block[0], [line for line in block[1:]
                                      if line.strip() and line.strip() != "..."]))
            continue
        for command in commands(block):
            if not any(mark in command for mark in SKIP):
                script.append(f"echo {shlex.quote('+ ' + command)}")
                script.append(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=checkout, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    for k, (command, shown) in enumerate(checks):
        printed = [line.rstrip() for line in
                   (checkout / f"transcript_{k}.txt").read_text().splitlines()]
        for line in shown:
            assert line.rstrip() in printed, f"{command}: the README shows\n{line}\nnot printed"
    assert (checkout / "kws.html").is_file() and (checkout / "kws_int8.tflite").is_file()
