"""The code's own checks, in CI: ruff (lint and import order, ``[tool.ruff]``) and mypy (the
type checker, ``[tool.mypy]``; its list of modules still excused is in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: pip install -e '.[dev]'")
    return path


def test_ruff_is_clean():
    proc = subprocess.run([tool("ruff"), "check", "edge_sdk", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_mypy_is_clean():
    proc = subprocess.run([tool("mypy"), "--no-incremental"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
