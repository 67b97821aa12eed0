"""A record of everything under some directories: each path's type, mode, link target and
content hash. Two snapshots compare equal exactly when a run left those trees unchanged."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Dict, Iterable, Tuple

Entry = Tuple[str, int, str]  # (kind, mode, link target or sha256 or "")


def snapshot(roots: Iterable[Path]) -> Dict[str, Entry]:
    found: Dict[str, Entry] = {}
    for root in roots:
        if not os.path.lexists(str(root)):
            found[str(root)] = ("absent", 0, "")
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


def _entry(path: str) -> Entry:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return ("link", mode, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", mode, "")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return ("file", mode, digest)


def diff(before: Dict[str, Entry], after: Dict[str, Entry]) -> Dict[str, Tuple[object, object]]:
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in sorted(keys) if before.get(k) != after.get(k)}
