"""Output files: written whole or not at all, never through a link, never over a non-file;
FIFOs and character devices (/dev/stdout, a pipe) written in place."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from edge_sdk.cli import main
from edge_sdk.errors import UsageError
from edge_sdk.files import write_atomic
from tests.conftest import shared_model


def test_a_new_file_and_a_replaced_one_keep_normal_modes(tmp_path):
    out = tmp_path / "sub" / "r.json"
    write_atomic(out, b"one")
    assert out.read_bytes() == b"one"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    out.chmod(0o640)
    write_atomic(out, b"two")
    assert out.read_bytes() == b"two" and stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.json"]  # no temporaries left


def test_a_planted_link_at_the_old_temporary_name_is_not_followed(tmp_path):
    """The temporary used to be the predictable .NAME.tmp: a link planted there redirected the
    write into any file the user could write."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / ".y.npy.tmp").symlink_to(victim)
    assert main(["run", str(shared_model("ad01_int8")), "--board", "host",
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert victim.read_text() == "precious"
    assert (tmp_path / "y.npy").is_file() and not (tmp_path / "y.npy").is_symlink()


def test_a_link_as_the_target_is_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "r.json"
    link.symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        write_atomic(link, b"{}")
    assert link.is_symlink() and victim.read_text() == "precious"


def test_a_directory_or_socket_target_is_refused(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        write_atomic(tmp_path, b"{}")
    import socket

    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(UsageError, match="socket"):
            write_atomic(sock_path, b"{}")
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)


def test_devices_are_written_in_place_not_replaced(capsys):
    """`--report /dev/full` replaced the device node with a JSON file (exit 0); as root,
    /dev/null too. Now the device is written to: /dev/full says it is full, /dev/null takes it."""
    model = str(shared_model("ad01_int8"))
    assert main(["run", model, "--board", "host", "--report", "/dev/full"]) == 6
    assert "cannot write /dev/full" in capsys.readouterr().err
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)
    assert main(["run", model, "--board", "host", "--report", "/dev/null"]) == 0
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="nobody is reading"):
        write_atomic(fifo, b"x")  # no reader: an error at once, not a hang
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(Path(fifo).read_bytes()))
    reader.start()
    for _ in range(200):  # until the reader has the FIFO open
        try:
            write_atomic(fifo, b"through the pipe")
            break
        except UsageError:
            threading.Event().wait(0.01)
    reader.join(10)
    assert got == [b"through the pipe"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
