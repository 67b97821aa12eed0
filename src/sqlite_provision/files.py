"""File primitives every layer uses: atomic writes with explicit modes, exact restores, links
swapped in one rename, and directories created so that an undo can remove exactly those."""

import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Tuple


def read_bytes(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class NotRegularFile(OSError):
    """A path that is there but is no regular file (a fifo, a device, a directory)."""


def read_regular(path: Path) -> bytes:
    """The bytes of a file another user may have placed: opened through no link, never blocking
    on a fifo. OSError when it cannot be opened (FileNotFoundError when absent), NotRegularFile
    when it is no regular file."""
    descriptor = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        return handle.read()


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_temp_sibling(name: str, entry: str) -> bool:
    """Whether `entry` is one of the temporary siblings that write_atomic and swap_symlink make
    for `name` (what a killed run may leave beside it)."""
    return entry.startswith(f".{name}.") and entry.endswith(".tmp")


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory, fsync, then rename over the target, so that a
    reader (a login shell) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, str(path))
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def file_metadata(path: Path) -> Tuple[int, Tuple[int, int]]:
    """(permission bits, (uid, gid)) of an existing file, to restore it exactly."""
    info = os.stat(str(path))
    return stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)


def restore(
    path: Path,
    previous: Optional[bytes],
    mode: int = 0o644,
    owner: Optional[Tuple[int, int]] = None,
) -> None:
    """Put back what was there before the run: the old bytes (with their mode and, given
    `owner`, their uid and gid), or nothing."""
    if previous is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    write_atomic(path, previous, mode)
    if owner is not None and owner != (os.getuid(), os.getgid()):
        os.chown(str(path), owner[0], owner[1])


def snapshot_file(path: Path) -> Callable[[], None]:
    """Remember a file as it is (bytes, mode, owner, or absence); return how to put it back."""
    previous = read_bytes(path)
    mode: int = 0o644
    owner: Optional[Tuple[int, int]] = None
    if previous is not None:
        mode, owner = file_metadata(path)

    def put_back() -> None:
        restore(path, previous, mode, owner)

    return put_back


def read_link(link: Path) -> Optional[str]:
    try:
        return os.readlink(str(link))
    except OSError:
        return None


def swap_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` atomically: a new link renamed over the old one."""
    tmp = link.parent / f".{link.name}.{os.getpid()}.tmp"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, str(tmp))
    try:
        os.replace(str(tmp), str(link))
    except BaseException:
        tmp.unlink()
        raise
    fsync_dir(link.parent)


def set_link(link: Path, target: Optional[str]) -> Callable[[], None]:
    """Point link at target (None removes it) atomically; return how to put it back."""
    before = read_link(link)
    if target is None:
        if before is not None:
            os.unlink(str(link))
    else:
        swap_symlink(link, target)

    def undo() -> None:
        set_link(link, before)

    return undo


def make_parents(path: Path) -> List[Path]:
    """mkdir -p that reports what it created (deepest first), so an undo can remove exactly that."""
    created: List[Path] = []
    current = path
    while not current.exists():
        created.append(current)
        current = current.parent
    for directory in reversed(created):
        directory.mkdir(mode=0o755)
    return created


def remove_empty(created: List[Path]) -> None:
    """Remove directories make_parents created, deepest first, while they are empty."""
    for directory in created:
        try:
            directory.rmdir()
        except OSError:
            return


def nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def package_data(relative: str) -> bytes:
    """A file shipped inside the package (data/, templates/), from a wheel or a zipapp alike."""
    import pkgutil

    data = pkgutil.get_data("sqlite_provision", relative)
    if data is None:  # pragma: no cover - a loader that cannot read data
        raise FileNotFoundError(f"sqlite_provision/{relative} is missing from the installation")
    return data
