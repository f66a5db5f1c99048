"""The commands' arrays on disk: inputs read from .npy/.npz (refused in one line when damaged),
outputs and reports written whole or not at all, and paths checked before any work."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import Any, cast

import numpy as np

from edge_sdk.errors import UsageError
from edge_sdk.files import write_atomic, write_json


def load_npy(path: str) -> np.ndarray:
    """An ``.npy`` (or ``.npz``) file, refused in one line if it is not one, or if its header
    claims more data than the file holds (read before anything is allocated)."""
    if Path(path).is_dir():
        raise UsageError(f"input {path} is a directory: give an .npy or .npz file")
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block until written
        raise UsageError(f"input {path} is not a regular file (a pipe or a device): save the "
                         "inputs to an .npy or .npz file and give that")
    try:
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                f.seek(0)
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = reader(f)
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                have = os.fstat(f.fileno()).st_size - f.tell()
                if need > have:
                    raise UsageError(f"input {path} claims {list(shape)} {dtype} values "
                                     f"({need} bytes) but holds {have} bytes: it is truncated "
                                     "or damaged")
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read input {path}: {' '.join(str(err).split())}") from None


def check_writable(path: str | None, what: str) -> None:
    """Before any work: the nearest existing folder on ``path``'s way must be a folder we may
    write in (missing folders below it are made when the result is written)."""
    if not path:
        return
    target = Path(path).absolute()
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot write in {ancestor} (permission denied)")
    if target.is_dir() and what in ("--output file", "--report"):
        raise UsageError(f"{what} {path} is a directory: give a file name")


def load_inputs(path: str) -> np.ndarray | dict[str, np.ndarray]:
    """``.npy``: the one input; ``.npz``: keys ``input_0``, ``input_1``, ... (or tensor names)."""
    data = load_npy(path)
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            return {k: data[k] for k in data.files}
    return data


def check_output_path(args: argparse.Namespace, graph) -> None:
    """Before any work: several outputs go to an ``.npz``, one to an ``.npy``."""
    path = getattr(args, "output", None)
    if graph is None or not path:
        return
    several = len(graph.outputs) > 1
    if several and not path.endswith(".npz"):
        raise UsageError(f"the model has {len(graph.outputs)} outputs: give --output a .npz "
                         "file (keys output_0, output_1, ...)")
    if not several and path.endswith(".npz"):
        raise UsageError("the model has one output: give --output a .npy file")


def save_npy(path: str, data: np.ndarray | dict[str, np.ndarray]) -> None:
    """An ``.npy`` (one array) or ``.npz`` (several), written whole or not at all."""

    buf = io.BytesIO()
    if isinstance(data, dict):
        np.savez(buf, **cast(dict[str, Any], data))  # keys are never savez's own options
    else:
        np.save(buf, data)
    write_atomic(path, buf.getvalue())


def save_results(args: argparse.Namespace, result) -> np.ndarray:
    """Write ``--output`` (``.npz`` with ``output_0``, ... for several outputs) and
    ``--report``. Shared by run, run-remote and deploy; returns the first output, for the
    summary line."""
    from edge_sdk.model_io import output_key

    outs = list(result.output_list)  # already shaped as the inputs were given
    if getattr(args, "output", None):
        save_npy(args.output, outs[0] if len(outs) == 1 else {
            output_key(i): o for i, o in enumerate(outs)})
    if getattr(args, "report", None):
        write_json(args.report, result.report)
    return outs[0]
