"""Writing the user's output files safely: whole or not at all, never through a link, never
replacing something that is not a file.

Every file edge-sdk writes at a path the user named (``--output``, ``--report``, ``--html``, an
imported board, a quantized model) goes through :func:`write_atomic`. The data is written to a
temporary file made with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and an unpredictable name in the target's
folder (:func:`tempfile.mkstemp`), then renamed over the target, so a reader never sees half a
file, a failure leaves nothing behind, and a link planted at a predictable temporary name cannot
redirect the write. A target that exists must be a regular file; a FIFO or character device
(``/dev/stdout``, a pipe made with ``mkfifo``) is written directly, as the user clearly meant.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

from edge_sdk.errors import UsageError


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _write_stream(path: Path, data: bytes) -> None:
    """A FIFO or character device: written in place (a rename would replace the node)."""
    try:
        # Non-blocking open: a FIFO nobody reads is an error now, not a hang.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == 6:  # ENXIO: a FIFO without a reader
            raise UsageError(f"{path} is a FIFO that nobody is reading: start the reader "
                             "first, or give a file name") from None
        raise UsageError(f"cannot write {path}: {err.strerror}") from None
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}") from None
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path``: atomically for a regular file (new or replaced, its mode
    kept), directly for a FIFO or character device; anything else is refused in one line."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}") from None
    mode = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.stat(path).st_mode
            except OSError:
                target = st.st_mode
            if stat.S_ISCHR(target) or stat.S_ISFIFO(target):  # /dev/stdout and the like
                _write_stream(path, data)
                return
            raise UsageError(f"{path} is a symbolic link: edge-sdk does not write through "
                             "links; give the path of the file itself")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            _write_stream(path, data)
            return
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} is {_kind(st.st_mode)}, not a file: give a file name")
        mode = stat.S_IMODE(st.st_mode)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is None:  # as a plain open() would create it: 0666 less the umask
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
        raise


# Every JSON document edge-sdk writes or prints carries this first, so that a script reading
# them can tell which vocabulary it has. The vocabulary is one across commands: a quantity has
# one key wherever it appears (``flash_bytes`` is the model's flash, measured or estimated as
# ``flash_basis`` says; a board's capacity is ``flash_capacity_bytes``). Bump on a renamed or
# removed key, not on an added one.
SCHEMA = "edge-sdk/1"


def stamped(data: dict) -> dict:
    """``data`` with the ``schema`` key first."""
    return {"schema": SCHEMA, **{k: v for k, v in data.items() if k != "schema"}}


def json_text(data: dict) -> str:
    """What ``--json`` prints: ``data`` stamped with the schema, indented."""
    return json.dumps(stamped(data), indent=2)


def write_json(path: str | Path, data: dict) -> None:
    """``data`` as indented JSON with the schema stamp, through :func:`write_atomic`."""
    write_atomic(path, (json_text(data) + "\n").encode())
