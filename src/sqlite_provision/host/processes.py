"""The running processes that still map another libsqlite3 than the provisioned one (or one that
was deleted since), as `needs-restarting` lists them for packages: a daemon keeps the library it
started with until it restarts. Read from /proc: each process's maps, its command line, and its
systemd unit from its cgroup. A process whose maps cannot be read is counted, not an error.
"""

import os
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision.results import StaleProcess

DELETED = " (deleted)"


def mapped_libraries(maps: str) -> List[str]:
    """The libsqlite3 files a /proc/PID/maps text maps, in order, once each (a deleted one keeps
    its ' (deleted)' mark)."""
    found: List[str] = []
    for line in maps.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and "/libsqlite3" in fields[5]:
            path = fields[5].strip()
            if path not in found:
                found.append(path)
    return found


def unit_of(cgroup: str) -> Optional[str]:
    """The systemd unit (service or scope) a /proc/PID/cgroup text names, if any."""
    for line in cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[0] == "0" or parts[1] == "name=systemd"):
            for name in reversed(parts[2].split("/")):
                if name.endswith((".service", ".scope")):
                    return name
    return None


def _read(path: Path) -> str:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return handle.read()


def is_stale(library: str, provisioned: str) -> bool:
    """Another file than the provisioned library, or one deleted since it was mapped."""
    if library.endswith(DELETED):
        return True
    return os.path.realpath(library) != provisioned


def stale_processes(
    provisioned: Optional[Path], proc: Path = Path("/proc")
) -> Tuple[List[StaleProcess], int]:
    """(the processes mapping another libsqlite3 than `provisioned`, how many could not be
    read). Nothing is stale where nothing is provisioned."""
    if provisioned is None or not provisioned.exists():
        return [], 0
    target = os.path.realpath(str(provisioned))
    stale: List[StaleProcess] = []
    unreadable = 0
    me = os.getpid()
    for entry in sorted(proc.iterdir(), key=lambda p: (len(p.name), p.name)):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            libraries = mapped_libraries(_read(entry / "maps"))
        except FileNotFoundError:
            continue  # it exited meanwhile
        except OSError:
            unreadable += 1
            continue
        others = [lib for lib in libraries if is_stale(lib, target)]
        if not others:
            continue
        try:
            command = _read(entry / "cmdline").replace("\0", " ").strip()
            unit = unit_of(_read(entry / "cgroup"))
        except OSError:
            command, unit = "", None
        stale.append(StaleProcess(int(entry.name), command, others[0], unit))
    return stale, unreadable
