"""Safe tar extraction: every member is checked before anything is written."""

import os
import tarfile
import zlib
from pathlib import Path
from typing import List, Optional, Sequence, Set

from sqlite_provision.errors import DownloadError, UnsafeArchiveError


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _through_symlink(parts: Sequence[str], symlinks: Set[str]) -> Optional[str]:
    """The symlink member that a path (relative to the root) goes through, if any. Nothing is
    written yet when members are checked, so realpath cannot see the archive's own links: without
    this, `a -> ..` then `a/b -> ..` then `a/b/x` writes x outside (Python without tar filters)."""
    current: List[str] = []
    for index, part in enumerate(parts):
        if part in ("", "."):
            continue
        if part == "..":
            current = current[:-1]
            continue
        current.append(part)
        if index < len(parts) - 1 and "/".join(current) in symlinks:
            return "/".join(current)
    return None


def check_members(members: List[tarfile.TarInfo], dest: Path) -> None:
    """Refuse absolute paths, `..`, links that escape, and anything but files, dirs and links."""
    root = os.path.realpath(str(dest))
    symlinks = {"/".join(Path(m.name).parts) for m in members if m.issym()}
    for member in members:
        name = member.name
        via = _through_symlink(Path(name).parts, symlinks)
        if via is None and member.issym():
            via = _through_symlink(
                Path(name).parts[:-1] + tuple(member.linkname.split("/")), symlinks
            )
        elif via is None and member.islnk():
            via = _through_symlink(tuple(member.linkname.split("/")), symlinks)
        if via is not None:
            raise UnsafeArchiveError(
                f"unsafe tarball: member {name!r} goes through the symlink {via!r}",
                hint="this is not an sqlite.org tarball; check where it came from",
            )
        if name.startswith("/") or os.path.isabs(name):
            raise UnsafeArchiveError(
                f"unsafe tarball: member {name!r} has an absolute path",
                hint="this is not an sqlite.org tarball; check where it came from",
            )
        target = os.path.realpath(os.path.join(root, name))
        if not _inside(root, target) or ".." in Path(name).parts:
            raise UnsafeArchiveError(
                f"unsafe tarball: member {name!r} would land outside the build directory",
                hint="this is not an sqlite.org tarball; check where it came from",
            )
        if member.issym() or member.islnk():
            link = member.linkname
            base = os.path.dirname(target) if member.issym() else root
            resolved = os.path.realpath(os.path.join(base, link))
            if os.path.isabs(link) or not _inside(root, resolved):
                raise UnsafeArchiveError(
                    f"unsafe tarball: link {name!r} -> {link!r} points outside the build directory",
                    hint="this is not an sqlite.org tarball; check where it came from",
                )
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(
                f"unsafe tarball: member {name!r} is a device, fifo or other special file",
                hint="this is not an sqlite.org tarball; check where it came from",
            )


def extract_members(
    tar: tarfile.TarFile, members: List[tarfile.TarInfo], dest: Path, own_modes: bool
) -> None:
    """Extract `members` into dest once every one of them is checked. Owners are never taken
    from an archive (we run as root); with `own_modes`, neither are odd modes."""
    check_members(members, dest)
    for member in members:
        if own_modes:
            member.mode = (member.mode & 0o755) | (0o700 if member.isdir() else 0o600)
        member.uid = member.gid = 0
        member.uname = member.gname = ""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(str(dest), members=members, filter="data")
    else:  # pragma: no cover - Python < 3.8.17 lacks filters; check_members did the job
        tar.extractall(str(dest), members=members)  # noqa: S202 - checked above


def extract(tarball: Path, dest: Path) -> Path:
    """Extract into dest (which must exist) and return the single top-level source directory."""
    try:
        with tarfile.open(str(tarball), "r:*") as tar:
            members = tar.getmembers()
            extract_members(tar, members, dest, own_modes=True)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise DownloadError(
            f"{tarball.name} is not a readable tar archive: {exc}",
            hint="the checksum matched, so the file is what you asked for; pass the sqlite-autoconf "
            "tarball, not another file",
        ) from exc
    tops = sorted({Path(m.name).parts[0] for m in members if Path(m.name).parts})
    if len(tops) != 1 or not (dest / tops[0]).is_dir():
        raise DownloadError(
            "{} does not hold one top-level directory (found {})".format(
                tarball.name, ", ".join(tops[:5]) or "nothing"
            ),
            hint="pass an sqlite-autoconf-XXXXXXX.tar.gz tarball",
        )
    return dest / tops[0]
