"""Versions side by side under the prefix root and their `current` and `previous` links, as a
rollback and an uninstall read them under the lock; and removing a version's files.

Uninstall removes exactly the files a version's manifest lists, nothing it did not install.
"""

import os
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple

from sqlite_provision.config import (
    ACTIVATION_RECORD,
    CURRENT_LINK_NAME,
    MANIFEST_NAME,
    PREVIOUS_LINK_NAME,
    csh_twin,
)
from sqlite_provision.digests import file_digest
from sqlite_provision.errors import HostError
from sqlite_provision.faultpoints import crash_point
from sqlite_provision.files import read_link
from sqlite_provision.store.manifest import Manifest, read_manifest
from sqlite_provision.store.records import is_managed, read_record


class Installed(NamedTuple):
    version: str
    prefix: Path
    manifest: Manifest


def installed_versions(root: Path) -> List[Installed]:
    """The versions this tool installed under `root`, oldest name first. Links (`current`) and
    dot-directories (a staging tree, a build waiting as backup) are not versions."""
    rows = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_symlink() or not child.is_dir() or child.name.startswith("."):
                continue
            manifest = read_manifest(child)
            if manifest is not None:
                rows.append(Installed(manifest.version, child, manifest))
    return rows


def previous_version(root: Path) -> Tuple[str, str, Manifest]:
    """What `current` names ("" for nothing), what `previous` names, and that version's
    manifest: the rollback's target (exit 3 if there is no previous version of ours)."""
    previous_link = root / PREVIOUS_LINK_NAME
    previous = read_link(previous_link)
    if previous is None:
        raise HostError(
            f"no previous version to roll back to ({previous_link} does not exist)",
            hint="`sqlite-provision status` lists the installed versions; "
            "`install --version X.Y.Z` switches to any of them",
        )
    manifest = read_manifest(root / previous)
    if manifest is None:
        raise HostError(
            f"the previous version {root / previous} is gone or not ours",
            hint="install the version you want with `sqlite-provision install --version X.Y.Z`",
        )
    return read_link(root / CURRENT_LINK_NAME) or "", previous, manifest


def versions_to_remove(root: Path, versions: Sequence[str], remove_all: bool) -> List[Installed]:
    """The installed versions an uninstall removes: every one with `remove_all`, else those
    named, each installed by this tool (exit 3 otherwise) and not the current one."""
    present = {row.version: row for row in installed_versions(root)}
    if remove_all:
        return [present[v] for v in sorted(present)]
    current = read_link(root / CURRENT_LINK_NAME)
    for version in versions:
        if version not in present:
            raise HostError(
                f"SQLite {version} is not installed under {root} by sqlite-provision",
                hint="`sqlite-provision status` lists what is installed",
            )
        if present[version].prefix.name == current:
            raise HostError(
                f"SQLite {version} is the current version",
                hint="run `sqlite-provision rollback` (or install another version) first, "
                "or pass --all to remove everything",
            )
    return [present[v] for v in versions]


def dangling_links(root: Path, removed: Sequence[Installed]) -> List[Tuple[Path, str]]:
    """`current` and `previous`, with what they name, where that is a version the uninstall
    removes (or nothing at all)."""
    remaining = {row.prefix.name for row in installed_versions(root)} - {
        row.prefix.name for row in removed
    }
    found = []
    for link in (root / CURRENT_LINK_NAME, root / PREVIOUS_LINK_NAME):
        target = read_link(link)
        if target is not None and target not in remaining:
            found.append((link, target))
    return found


class Removal(NamedTuple):
    """What removing one version does, read before anything is removed."""

    version: str
    prefix: Path
    files: Tuple[str, ...]  # the manifest's files that are there, relative to the prefix
    changed: Tuple[str, ...]  # of those, the ones changed since the install
    foreign: Tuple[str, ...]  # files in the prefix it did not install: kept
    rpm: Optional[str] = None  # the package that owns the files (install --rpm): rpm removes them


def plan_removal(row: Installed) -> Removal:
    """Exactly the files the version's manifest lists and that exist; which of them changed
    since the install; and what else is in the prefix, which stays."""
    files, changed = [], []
    for rel, digest in sorted(row.manifest.files.items()):
        path = row.prefix / rel
        if not os.path.lexists(str(path)):
            continue
        files.append(rel)
        if digest is not None and path.is_file() and file_digest(path) != digest:
            changed.append(str(path))
    listed = set(row.manifest.files) | {MANIFEST_NAME}
    foreign = []
    for dirpath, dirnames, filenames in os.walk(str(row.prefix)):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found = os.path.join(dirpath, name)
            if os.path.relpath(found, str(row.prefix)) not in listed:
                foreign.append(found)
    return Removal(row.version, row.prefix, tuple(files), tuple(changed), tuple(sorted(foreign)),
                   row.manifest.rpm_package)  # fmt: skip


def remove_files(prefix: Path, files: Sequence[str]) -> int:
    """The files named, then the directories left empty, and the manifest last: a run killed
    midway leaves the manifest, so the next one finishes the job. Returns how many went."""
    removed = 0
    for rel in files:
        path = prefix / rel
        if os.path.lexists(str(path)):
            path.unlink()
            removed += 1
            crash_point("during:uninstall")
    # Directories now empty, deepest first; what is left is not ours.
    for dirpath, _, _ in sorted(os.walk(str(prefix)), key=lambda t: -len(t[0])):
        if dirpath != str(prefix):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    manifest = prefix / MANIFEST_NAME
    if os.path.lexists(str(manifest)):
        manifest.unlink()
    try:
        prefix.rmdir()
    except OSError:
        pass
    return removed


def activation_files(root: Path, profile_file: Path) -> List[Path]:
    """The activation files the installs wrote (their record, and the snippet and its csh twin)
    that still carry our marker: what `uninstall --all` removes."""
    files = set(read_record(root / ACTIVATION_RECORD))
    files |= {str(profile_file), str(csh_twin(profile_file))}
    return [Path(name) for name in sorted(files) if is_managed(Path(name))]
