"""One run at a time: an fcntl lock, so cloud-init and Ansible cannot run two installs at once.

flock locks vanish with the process that held them, so a crashed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional

from sqlite_provision.errors import HostError

ENV_LOCK_FILE = "SQLITE_PROVISION_LOCK_FILE"
LOCK_NAME = "sqlite-provision.lock"


def lock_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get(ENV_LOCK_FILE):
        return Path(env[ENV_LOCK_FILE])
    for directory in ("/run/lock", "/var/lock"):
        if os.path.isdir(directory) and os.access(directory, os.W_OK):
            return Path(directory) / LOCK_NAME
    runtime = env.get("XDG_RUNTIME_DIR") or "/tmp"  # noqa: S108 - fallback for non-root runs
    return Path(runtime) / f"{LOCK_NAME}.{os.geteuid()}"


def _holder(fd: int) -> Optional[str]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text or None


@contextmanager
def held(path: Path, timeout: float, poll: float = 0.2) -> Iterator[None]:
    try:
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HostError(
            f"cannot open the lock file {path}: {exc}",
            hint=f"run as root, or set {ENV_LOCK_FILE} to a writable path",
        ) from exc
    try:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (BlockingIOError, PermissionError):
                holder = _holder(fd) or "unknown"
                if time.monotonic() >= deadline:
                    raise HostError(
                        f"another sqlite-provision run (pid {holder}) holds {path}; waited {timeout:.0f}s",
                        hint="wait for it to finish, or raise --lock-timeout",
                    ) from None
                if not announced:
                    sys.stderr.write(
                        f"waiting up to {timeout:.0f}s for another run (pid {holder}) to release {path}\n"
                    )
                    announced = True
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        os.close(fd)
