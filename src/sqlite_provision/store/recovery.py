"""What a run killed with no chance to undo (SIGKILL, the OOM killer, a power cut, a reboot during
cloud-init) left behind, put right by the next run before it does anything else. It runs under
the run lock: the run that left these is dead, or it would hold the lock.

Only names this tool makes are touched: its staging directories, the old build it moves aside
while replacing one, its temporary links and files, partial downloads, its own build directory,
and the journal of a rollback. An old build moved aside comes back where its prefix is missing
(the kill fell between the two renames), and is removed where the new one is in place. A
rollback killed before it was verified is put back: `current` and `previous` name again what
its journal says they named, and the next `rollback` does it again, verified.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, List, Sequence

from sqlite_provision.config import CURRENT_LINK_NAME, MANIFEST_NAME, PREVIOUS_LINK_NAME
from sqlite_provision.files import is_temp_sibling, read_link, set_link, write_atomic

STAGING_PREFIX = ".sqlite-provision-stage-"
SWITCH_JOURNAL = ".sqlite-provision-switch.json"  # in the prefix root, while a rollback runs
_BACKUP = re.compile(r"^\.(.+)\.previous$")


def staging_dir(prefix: Path) -> Path:
    """Where a build is staged: beside the prefix, on its filesystem, so the install is one
    rename."""
    return prefix.parent / f"{STAGING_PREFIX}{prefix.name}"


def backup_path(prefix: Path) -> Path:
    """Where an earlier build in the prefix waits while it is replaced, until the run succeeds."""
    return prefix.parent / f".{prefix.name}.previous"


def write_switch_journal(root: Path, current: str, previous: str) -> Path:
    """What `current` and `previous` name before a rollback switches them ("": nothing)."""
    journal = root / SWITCH_JOURNAL
    data = json.dumps({"current": current, "previous": previous}) + "\n"
    write_atomic(journal, data.encode("utf-8"), 0o644)
    return journal


def _recover_switch(root: Path) -> List[str]:
    """A rollback killed before it succeeded: its links back as its journal says they were."""
    journal = root / SWITCH_JOURNAL
    if journal.is_symlink() or not journal.is_file():
        return []
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    said = f"removed {journal}, unreadable"
    if isinstance(data, dict) and all(
        isinstance(data.get(k), str) for k in ("current", "previous")
    ):
        set_link(root / CURRENT_LINK_NAME, data["current"] or None)
        set_link(root / PREVIOUS_LINK_NAME, data["previous"] or None)
        said = "put back `current` ({}) and `previous` ({}), which a killed rollback had switched".format(
            data["current"] or "none", data["previous"] or "none"
        )
    journal.unlink()
    return [said]


@dataclass(frozen=True)
class Places:
    prefix_parent: Path  # where versions, staging trees and backups live
    activation_files: Sequence[Path]  # the files written atomically (their temporary siblings)
    cache_dir: Path
    build_dir: Path
    prefix_root: bool = True  # the parent is a prefix root (ours), not the parent of a --prefix
    build_owners: Sequence[int] = ()  # whose build directory it may be: ours, the build user's


def recover(places: Places) -> List[str]:
    """Put right what a killed run left; say what was done (nothing: an empty list)."""
    done: List[str] = []
    parent = places.prefix_parent
    if parent.is_dir():
        for entry in sorted(parent.iterdir()):
            done += _recover_entry(parent, entry, places.prefix_root)
    if places.prefix_root and parent.is_dir():
        done += _recover_switch(parent)
        previous = parent / PREVIOUS_LINK_NAME
        target = read_link(previous)
        if target is not None and not (parent / target).is_dir():
            previous.unlink()
            done.append(f"removed {previous}, which named {target}, gone")
    for path in places.activation_files:
        done += _remove_matching(path.parent, partial(is_temp_sibling, path.name))
    # source/fetch.py streams a download into a hidden .part file beside its cache entry
    done += _remove_matching(
        places.cache_dir, lambda entry: entry.startswith(".") and entry.endswith(".part")
    )
    build = places.build_dir
    if (
        build.is_dir()
        and not build.is_symlink()
        and build.stat().st_uid
        in (
            os.geteuid(),
            *places.build_owners,
        )
    ):
        shutil.rmtree(str(build), ignore_errors=True)
        done.append(f"removed the build directory {build}")
    return done


def _recover_entry(parent: Path, entry: Path, prefix_root: bool) -> List[str]:
    name = entry.name
    if name.startswith(STAGING_PREFIX) and entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(str(entry), ignore_errors=True)
        return [f"removed the staging directory {entry}"]
    backup = _BACKUP.match(name)
    if backup and entry.is_dir() and not entry.is_symlink():
        prefix = parent / backup.group(1)
        if os.path.lexists(str(prefix)):
            shutil.rmtree(str(entry), ignore_errors=True)
            return [f"removed {entry}, the old build a killed run had replaced"]
        os.rename(str(entry), str(prefix))
        return [f"put back {prefix}, which a killed run had moved aside"]
    if entry.is_symlink() and any(
        is_temp_sibling(link, name) for link in (CURRENT_LINK_NAME, PREVIOUS_LINK_NAME)
    ):
        entry.unlink()
        return [f"removed the temporary link {entry}"]
    if is_temp_sibling(SWITCH_JOURNAL, name) and entry.is_file() and not entry.is_symlink():
        entry.unlink()
        return [f"removed {entry}, left by a killed run"]
    if (
        prefix_root
        and entry.is_dir()
        and not entry.is_symlink()
        and name not in (CURRENT_LINK_NAME, PREVIOUS_LINK_NAME)
        and not name.startswith(".")
        and not (entry / MANIFEST_NAME).exists()
        and not any(entry.iterdir())
    ):
        entry.rmdir()  # what an uninstall killed after its manifest left
        return [f"removed the empty directory {entry}"]
    return []


def _remove_matching(directory: Path, matches: Callable[[str], bool]) -> List[str]:
    done = []
    if directory.is_dir():
        for entry in sorted(directory.iterdir()):
            if matches(entry.name) and (entry.is_file() or entry.is_symlink()):
                entry.unlink()
                done.append(f"removed {entry}, left by a killed run")
    return done
