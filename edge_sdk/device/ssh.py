"""Deploy to a Linux board over SSH with the system's OpenSSH client.

Why the system client: it honours the user's ``~/.ssh/config``, agent and known_hosts, and it
is what users already trust. Commands are argument lists; anything that reaches the remote
shell is either a fixed script or ``shlex``-quoted, and user data (paths) travel as positional
parameters of that fixed script, never spliced into it.

- Host keys are checked (``StrictHostKeyChecking=yes``) unless ``accept_new_host_key``
  (``accept-new``: trust on first use, still refuse a changed key).
- Uploads go to a temporary name, are unpacked into a staging directory and renamed into
  place, so an interrupted transfer never leaves a half bundle where the old one was.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import DeviceError, ToolchainError, UsageError

# Unpack $1 (an uploaded tar) into $2 (the bundle directory), atomically replacing it.
_INSTALL = r'''set -e
up="$1"; dest="$2"; stage="$dest.staging.$$"; old="$dest.old.$$"
mkdir -p -- "$(dirname -- "$dest")"
rm -rf -- "$stage"; mkdir -p -- "$stage"
tar -xf "$up" -C "$stage"; rm -f -- "$up"
if [ -e "$dest" ]; then mv -- "$dest" "$old"; fi
mv -- "$stage" "$dest"
rm -rf -- "$old"
'''


def remote_path(path: str) -> str:
    """A remote directory as given, made safe to pass to a command: a relative path that starts
    with '-' (``--remote-dir=-o...``) would be read as an option, so it gets a leading ``./``."""
    if not path or any(ord(c) < 32 for c in path):
        raise UsageError(f"{path!r} is not a remote directory: give a path such as edge-sdk or "
                         "/home/pi/models")
    return f"./{path}" if path.startswith("-") else path


def run_group(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run`` for ssh and scp, in a process group of their own that is killed
    whole when we stop for any reason (SIGTERM, Ctrl-C, a timeout): scp runs ssh as its child,
    and killing scp alone left that ssh alive for seconds after edge-sdk had exited."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@dataclass(frozen=True)
class SshHost:
    destination: str                 # user@host (or a Host alias of ~/.ssh/config)
    port: int | None = None
    identity: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    connect_timeout: int = 10

    def __post_init__(self) -> None:
        # ssh and scp would read "-oProxyCommand=..." as an option: never let a host be one.
        d = self.destination
        if not d or d.startswith("-") or any(c.isspace() or ord(c) < 32 for c in d):
            raise UsageError(f"{d!r} is not an SSH host: give user@host or a Host alias of "
                             "~/.ssh/config (it may not start with '-' or hold spaces)")

    def _options(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "StrictHostKeyChecking=" + ("accept-new" if self.accept_new_host_key
                                                  else "yes")]
        if self.known_hosts is not None:
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.identity is not None:
            opts += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        return opts

    def _check(self, proc: subprocess.CompletedProcess, what: str) -> str:
        if proc.returncode == 0:
            return proc.stdout
        err = proc.stderr.strip()
        where = self.destination + (f" port {self.port}" if self.port else "")
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in err:
            raise DeviceError(f"the host key of {where} has CHANGED since it was recorded: "
                              "this may be an attack; check with the board's owner before "
                              "updating known_hosts")
        if "Host key verification failed" in err or "No ED25519 host key" in err or \
                "host key is not known" in err:
            raise DeviceError(f"the host key of {where} is not in known_hosts: verify and add "
                              "it (ssh-keyscan), or pass --accept-new-host-key to trust it now")
        if "Permission denied" in err:
            raise DeviceError(f"SSH authentication to {where} failed: pass --identity KEY, or "
                              "add your public key to the board's ~/.ssh/authorized_keys")
        for reason in ("Connection refused", "Connection timed out", "No route to host",
                       "Could not resolve hostname", "Network is unreachable"):
            if reason in err:
                raise DeviceError(f"cannot reach {where}: {reason.lower()}; check the address, "
                                  "the port and that sshd runs on the board")
        if proc.returncode == 255:
            raise DeviceError(f"SSH to {where} failed: {err.splitlines()[-1] if err else '?'}")
        last = err.splitlines()[-1] if err else f"exit status {proc.returncode}"
        raise DeviceError(f"{what} on {where} failed: {last}")

    def run(self, argv: list[str], timeout: float = 600.0, what: str = "the command") -> str:
        """Run ``argv`` on the board (quoted for its shell); returns stdout."""
        if shutil.which("ssh") is None:
            raise ToolchainError("ssh not found: install it with apt-get install openssh-client")
        cmd = ["ssh", *self._options(), *(["-p", str(self.port)] if self.port else []),
               "--", self.destination, shlex.join(argv)]
        try:
            proc = run_group(cmd, timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{what} on {self.destination} did not finish within "
                              f"{timeout:.0f} s") from None
        return self._check(proc, what)

    def _scp(self, source: str, target: str, what: str) -> None:
        if shutil.which("scp") is None:
            raise ToolchainError("scp not found: install it with apt-get install openssh-client")
        cmd = ["scp", "-q", *self._options(), *(["-P", str(self.port)] if self.port else []),
               "--", source, target]
        try:
            proc = run_group(cmd, 600)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{what} to or from {self.destination} did not finish within "
                              "600 s") from None
        self._check(proc, what)

    def put(self, local: Path, remote: str) -> None:
        self._scp(str(local), f"{self.destination}:{remote}", "the upload")

    def get(self, remote: str, local: Path) -> None:
        self._scp(f"{self.destination}:{remote}", str(local), "the download")

    def install_bundle(self, bundle: Path, remote_dir: str) -> None:
        """Upload the directory ``bundle`` to ``remote_dir`` atomically."""
        archive = bundle.with_suffix(".tar")
        with tarfile.open(archive, "w") as tar:
            for item in sorted(bundle.iterdir()):
                tar.add(item, arcname=item.name)
        remote_dir = remote_path(remote_dir)
        upload = f"{remote_dir}.upload.tar"
        try:
            self.run(["mkdir", "-p", "--", str(Path(remote_dir).parent)],
                     what="creating the directory")
            self.put(archive, upload)
            self.run(["sh", "-c", _INSTALL, "edge-sdk-install", upload, remote_dir],
                     what="installing the bundle")
        except BaseException:
            # Interrupted or failed half-way (scp and its ssh are killed with us: run_group
            # ends their process group on any exception): the installed bundle, if any, is
            # untouched; drop the partial upload so nothing is left on the board. Best effort,
            # briefly.
            with contextlib.suppress(Exception):
                self.run(["rm", "-f", upload], timeout=15, what="removing the partial upload")
            raise
        finally:
            archive.unlink(missing_ok=True)
