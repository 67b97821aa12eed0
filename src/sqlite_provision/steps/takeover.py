"""Root takes the staged tree over from the build user: a copy, made by root, so every file is
root's (root:root) from the moment it exists, and nothing in it can still be changed by the
build user or by a process the build left running.

Only what an install holds is copied: directories, regular files and links that stay inside
the tree. Modes keep their read and execute bits (rwxr-xr-x at most): no setuid or setgid, no
sticky bit, nothing writable by group or others. Anything else (a device, a fifo, a socket, a
link out of the tree) is refused: `make install` of SQLite writes none.
"""

import os
import shutil
import stat
from pathlib import Path

from sqlite_provision.errors import VerifyError

KEPT_BITS = 0o755


def refuse(path: Path, why: str) -> VerifyError:
    return VerifyError(
        f"the staged tree holds {path}, {why}; SQLite's make install writes no such file",
        hint="the build did something it should not: read the log, and use an official tarball",
    )


def link_stays_inside(rel_dir: str, target: str) -> bool:
    """A link in `rel_dir` (relative to the tree's top) naming `target` stays in the tree."""
    if os.path.isabs(target):
        return False
    resolved = os.path.normpath(os.path.join(rel_dir, target))
    return resolved != ".." and not resolved.startswith(".." + os.sep)


def open_no_follow(base: Path, top: Path) -> int:
    """A descriptor of `top`, opened one component at a time below `base`, through no link:
    the tree belongs to another user, who must not be able to point root elsewhere."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    descriptor = os.open(str(base), flags)
    try:
        for part in top.relative_to(base).parts:
            inner = os.open(part, flags, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def take_over(base: Path, source: Path, target: Path) -> int:
    """Copy the tree at `source` (inside `base`, root's own directory) to `target` (new) as
    this user's own; return the number of files. Every name is opened relative to its
    directory and through no link, so a process the build left behind cannot redirect root."""
    count = 0
    os.mkdir(str(target), KEPT_BITS)
    os.chmod(str(target), KEPT_BITS)
    top = open_no_follow(base, source)
    try:
        for rel_dir, dirnames, filenames, dir_fd in os.fwalk(
            ".", dir_fd=top, follow_symlinks=False
        ):
            there = target / rel_dir
            for name in sorted(dirnames + filenames):
                shown = source / rel_dir / name
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    link = os.readlink(name, dir_fd=dir_fd)
                    if not link_stays_inside(rel_dir, link):
                        raise refuse(shown, f"a link to {link}, outside the install")
                    os.symlink(link, str(there / name))
                elif stat.S_ISDIR(info.st_mode):
                    os.mkdir(str(there / name), KEPT_BITS)
                    os.chmod(str(there / name), KEPT_BITS)
                elif stat.S_ISREG(info.st_mode):
                    copy_file(dir_fd, name, there / name, stat.S_IMODE(info.st_mode) & KEPT_BITS)
                    count += 1
                else:
                    raise refuse(shown, "neither a file, a directory nor a link")
    finally:
        os.close(top)
    return count


def copy_file(dir_fd: int, name: str, copy: Path, mode: int) -> None:
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(source, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):  # swapped since it was listed
            raise refuse(copy, "no longer a regular file")
        made = os.open(str(copy), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(made, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    os.chmod(str(copy), mode)  # the umask may have taken bits the source had
