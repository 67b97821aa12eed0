"""The activation files an install wrote: their record beside the prefix root, the marker that
says a file is still ours, and the commands that must follow a change to one (systemd and the
loader cache read them only when told)."""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

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


SELINUX_RULE = "selinux_equivalence"  # {"path": ROOT, "equal": "/usr", "added_by": WHO}
ADDED_BY_TOOL = "sqlite-provision"


def read_data(record: Path) -> Dict[str, Any]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_record(record: Path) -> List[str]:
    try:
        return [str(p) for p in read_data(record).get("files", [])]
    except TypeError:
        return []


def read_selinux_rule(record: Path) -> Optional[Dict[str, str]]:
    """The SELinux equivalence rule the record knows of, and who added it (None: none)."""
    rule = read_data(record).get(SELINUX_RULE)
    if not isinstance(rule, dict) or not isinstance(rule.get("path"), str):
        return None
    return {str(k): str(v) for k, v in rule.items()}


def rule_added_by_tool(record: Path) -> Optional[Path]:
    """The root of the equivalence rule this tool added, which `uninstall --all` deletes."""
    rule = read_selinux_rule(record)
    if rule is None or rule.get("added_by") != ADDED_BY_TOOL:
        return None
    return Path(rule["path"])


def dump(files: List[str], rule: Optional[Dict[str, str]]) -> bytes:
    data: Dict[str, Any] = {"tool": "sqlite-provision", "files": files}
    if rule is not None:
        data[SELINUX_RULE] = rule
    return (json.dumps(data, indent=1) + "\n").encode("utf-8")


def write_record(record: Path, files: List[str], rule: Optional[Dict[str, str]] = None) -> None:
    """Add `files` (and the SELinux rule, unless the record already says who added it)."""
    merged = sorted(set(read_record(record)) | set(files))
    write_atomic(record, dump(merged, read_selinux_rule(record) or rule), 0o644)


def forget(record: Path, files: List[str]) -> None:
    """Take files off the record (a venv unbound by `uninstall --venv`)."""
    kept = [f for f in read_record(record) if f not in set(files)]
    rule = read_selinux_rule(record)
    if kept or rule is not None:
        write_atomic(record, dump(kept, rule), 0o644)
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
