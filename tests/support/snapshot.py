"""A record of everything under some directories: each path's type, mode, owner, group,
extended attributes, link target and content hash. Two snapshots compare equal exactly when a
run left those trees unchanged: a chown, a chmod, a setfattr or a changed byte all show."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Dict, Iterable, Tuple

# (kind, mode, link target or sha256 or "", uid, gid, xattrs as "name=sha256;...")
Entry = Tuple[str, int, str, int, int, str]
ABSENT: Entry = ("absent", 0, "", -1, -1, "")


def snapshot(roots: Iterable[Path]) -> Dict[str, Entry]:
    found: Dict[str, Entry] = {}
    for root in roots:
        if not os.path.lexists(str(root)):
            found[str(root)] = ABSENT
            continue
        found.update(_entries(root))
    return found


def _entries(root: Path) -> Dict[str, Entry]:
    out: Dict[str, Entry] = {str(root): _entry(str(root))}
    if os.path.isdir(str(root)) and not os.path.islink(str(root)):
        for dirpath, dirnames, filenames in os.walk(str(root)):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                out[path] = _entry(path)
    return out


def xattrs(path: str) -> str:
    """Every extended attribute (security.selinux, user.*, ...) with a hash of its value; ""
    where the filesystem has none or keeps none."""
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return ""
    found = []
    for name in names:
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        found.append(f"{name}={hashlib.sha256(value).hexdigest()}")
    return ";".join(found)


def _entry(path: str) -> Entry:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return ("link", mode, os.readlink(path), st.st_uid, st.st_gid, xattrs(path))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", mode, "", st.st_uid, st.st_gid, xattrs(path))
    if not stat.S_ISREG(st.st_mode):
        return ("special", mode, "", st.st_uid, st.st_gid, xattrs(path))
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return ("file", mode, digest, st.st_uid, st.st_gid, xattrs(path))


def diff(before: Dict[str, Entry], after: Dict[str, Entry]) -> Dict[str, Tuple[object, object]]:
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in sorted(keys) if before.get(k) != after.get(k)}
