"""One run at a time: an fcntl lock, so cloud-init and Ansible cannot run two installs at once.

flock locks vanish with the process that held them, so a crashed run never leaves a stale lock.
"""

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from sqlite_provision.config import ENV_LOCK_FILE
from sqlite_provision.errors import HostError


def _quiet(text: str) -> None:
    pass


def _holder(fd: int) -> Optional[str]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text or None


@contextmanager
def held(
    path: Path, timeout: float, on_wait: Callable[[str], None] = _quiet, poll: float = 0.2
) -> Iterator[None]:
    """Hold the lock for the block; while another run holds it, say so once (`on_wait`) and
    wait up to `timeout` seconds, then fail with exit 3 naming its pid."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
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
                    on_wait(
                        f"waiting up to {timeout:.0f}s for another run (pid {holder}) to release {path}"
                    )
                    announced = True
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        os.close(fd)
