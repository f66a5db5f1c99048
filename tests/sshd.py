"""A throwaway OpenSSH server on 127.0.0.1 for the deploy tests (a real peer, not a mock)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    host: str
    port: int
    identity: Path
    known_hosts: Path
    root: Path
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(root: Path) -> Sshd:
    keygen = shutil.which("ssh-keygen")
    if not (os.path.exists(SSHD) and keygen):
        raise FileNotFoundError("openssh-server is not installed (./setup.sh installs it)")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                       check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = _free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "StrictModes no", "UsePAM no",
        f"PidFile {root / 'sshd.pid'}", "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp", ""]))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-f", str(config), "-D", "-e"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("sshd did not start listening")
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    return Sshd(f"{getpass.getuser()}@127.0.0.1", port, root / "client_key",
                root / "known_hosts", root, proc)
