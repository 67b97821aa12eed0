"""The activation files an install wrote: their record beside the prefix root, the marker that
says a file is still ours, and the commands that must follow a change to one (systemd and the
loader cache read them only when told)."""

import json
from pathlib import Path
from typing import List, Tuple

from sqlite_provision.config import DEFAULT_LD_SO_CONF_DIR, DEFAULT_SYSTEMD_DIR, MANAGED_MARKER
from sqlite_provision.files import write_atomic

Command = Tuple[str, ...]
SYSTEMD_RELOAD: Command = ("systemctl", "daemon-reload")
LDCONFIG: Command = ("ldconfig",)


def is_managed(path: Path) -> bool:
    """The file carries our marker: written by this tool and, as far as it can tell, unedited."""
    try:
        return MANAGED_MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def read_record(record: Path) -> List[str]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return [str(p) for p in data.get("files", [])]
    except (OSError, ValueError, AttributeError):
        return []


def write_record(record: Path, files: List[str]) -> None:
    merged = sorted(set(read_record(record)) | set(files))
    data = json.dumps({"tool": "sqlite-provision", "files": merged}, indent=1) + "\n"
    write_atomic(record, data.encode("utf-8"), 0o644)


def forget(record: Path, files: List[str]) -> None:
    """Take files off the record (a venv unbound by `uninstall --venv`)."""
    kept = [f for f in read_record(record) if f not in set(files)]
    if kept:
        data = json.dumps({"tool": "sqlite-provision", "files": kept}, indent=1) + "\n"
        write_atomic(record, data.encode("utf-8"), 0o644)
    elif record.exists():
        record.unlink()


def systemd_followup(units_dir: Path, systemd_running: bool) -> Tuple[Command, ...]:
    """daemon-reload after a drop-in changed, where systemd reads it: the real unit directory
    of a host that runs systemd (not a test's directory, not a container without systemd)."""
    if units_dir == DEFAULT_SYSTEMD_DIR and systemd_running:
        return (SYSTEMD_RELOAD,)
    return ()


def ld_so_conf_followup(conf_dir: Path) -> Tuple[Command, ...]:
    """ldconfig after /etc/ld.so.conf.d changed (not after a test's directory did)."""
    return (LDCONFIG,) if conf_dir == DEFAULT_LD_SO_CONF_DIR else ()
