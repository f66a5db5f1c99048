"""Where the files that ship inside the package live: board descriptions, project templates and
firmware sources under ``edge_sdk/data/``.

They are package data, found through :mod:`importlib.resources`, so a wheel installed anywhere
finds them; nothing here depends on a checkout. This module imports nothing of ours.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_path(name: str) -> Path:
    """``edge_sdk/data/<name>`` as a real path (templates and firmware are copied and
    rendered from it, so a path is needed, not just a readable resource)."""
    where = files("edge_sdk").joinpath("data").joinpath(name)  # one part each: Python 3.10
    if not isinstance(where, Path):  # installed as a zip: the files cannot be copied from it
        raise RuntimeError(f"edge-sdk's {name}/ is not on the file system ({where}): install "
                           "edge-sdk as files (pip install), not as a zipped package")
    return where


BOARDS_DIR = data_path("boards")
TEMPLATES_DIR = data_path("templates")
FIRMWARE_DIR = data_path("firmware")
