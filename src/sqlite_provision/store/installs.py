"""Versions side by side under the prefix root, their `current` and `previous` links, switching
back to the previous version, and uninstalling.

Uninstall removes exactly the files a version's manifest lists, nothing it did not install.
"""

import os
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Sequence

from sqlite_provision.config import (
    ACTIVATION_RECORD,
    CURRENT_LINK_NAME,
    MANIFEST_NAME,
    PREVIOUS_LINK_NAME,
    csh_twin,
)
from sqlite_provision.digests import file_digest
from sqlite_provision.errors import HostError, UsageError
from sqlite_provision.faultpoints import crash_point
from sqlite_provision.files import read_link, set_link
from sqlite_provision.results import UninstallResult
from sqlite_provision.runner import Runner
from sqlite_provision.store.manifest import Manifest, read_manifest
from sqlite_provision.store.records import (
    Command,
    forget,
    is_managed,
    ld_so_conf_followup,
    read_record,
    systemd_followup,
)


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


class Switch(NamedTuple):
    from_target: str  # what `current` pointed at
    prefix: Path  # what it points at now
    manifest: Manifest
    undo: Callable[[], None]


def switch_to_previous(root: Path) -> Switch:
    """Swap `current` and `previous` (exit 3 if there is no previous version of ours)."""
    current_link = root / CURRENT_LINK_NAME
    previous_link = root / PREVIOUS_LINK_NAME
    current = read_link(current_link)
    previous = read_link(previous_link)
    if previous is None:
        raise HostError(
            f"no previous version to roll back to ({previous_link} does not exist)",
            hint="`sqlite-provision status` lists the installed versions; "
            "`install --version X.Y.Z` switches to any of them",
        )
    target = root / previous
    manifest = read_manifest(target)
    if manifest is None:
        raise HostError(
            f"the previous version {target} is gone or not ours",
            hint="install the version you want with `sqlite-provision install --version X.Y.Z`",
        )
    undo_current = set_link(current_link, previous)
    undo_previous = set_link(previous_link, current)

    def undo() -> None:
        undo_previous()
        undo_current()

    return Switch(current or "", target, manifest, undo)


def uninstall(
    root: Path,
    versions: List[str],
    remove_all: bool,
    profile_file: Optional[Path],
    runner: Runner,
    units_dir: Path,
    conf_dir: Path,
    systemd_running: bool,
    hooks: Sequence[Path] = (),
) -> UninstallResult:
    """Remove versions (or, with remove_all, everything) and unbind the venvs whose `hooks`
    are named."""
    current = read_link(root / CURRENT_LINK_NAME)
    present = {row.version: row for row in installed_versions(root)}
    result = UninstallResult()
    if hooks:
        unbind(root / ACTIVATION_RECORD, hooks, result)
    if remove_all:
        versions = sorted(present)
    if not versions and not remove_all:  # --all on a host with nothing left is a no-op
        if hooks:
            return result
        raise UsageError(
            "name a VERSION to uninstall, or pass --all (or --venv DIR to unbind a venv)",
            hint="`sqlite-provision status` lists what is installed",
        )
    for version in versions:
        if version not in present:
            raise HostError(
                f"SQLite {version} is not installed under {root} by sqlite-provision",
                hint="`sqlite-provision status` lists what is installed",
            )
        if not remove_all and present[version].prefix.name == current:
            raise HostError(
                f"SQLite {version} is the current version",
                hint="run `sqlite-provision rollback` (or install another version) first, "
                "or pass --all to remove everything",
            )
    for version in versions:
        remove_manifest_files(present[version].prefix, present[version].manifest, result)
        result.removed_versions.append(version)
    remaining = {present[v].prefix.name for v in present if v not in versions}
    for name in (CURRENT_LINK_NAME, PREVIOUS_LINK_NAME):
        link = root / name
        target = read_link(link)
        if target is not None and target not in remaining:
            set_link(link, None)
            result.removed_activation.append(str(link))
    if remove_all:
        followups: List[Command] = []
        for path in remove_activation(root, profile_file, result):
            if path.parent.parent == units_dir:
                followups += systemd_followup(units_dir, systemd_running)
            if path.parent == conf_dir:
                followups += ld_so_conf_followup(conf_dir)
        for argv in sorted(set(followups)):
            runner.capture(list(argv))  # logged; the files are gone either way
    try:
        root.rmdir()  # only if now empty
    except OSError:
        pass
    return result


def unbind(record: Path, hooks: Sequence[Path], result: UninstallResult) -> None:
    """Remove the venv hooks named (only while they carry our marker) and their record entries."""
    for hook in hooks:
        if is_managed(hook):
            hook.unlink()
            result.removed_activation.append(str(hook))
    forget(record, [str(h) for h in hooks])


def remove_manifest_files(prefix: Path, manifest: Manifest, result: UninstallResult) -> None:
    """The manifest's files, then the directories left empty, and the manifest last: a run
    killed midway leaves the manifest, so the next one finishes the job."""
    for rel, digest in sorted(manifest.files.items()):
        path = prefix / rel
        if not os.path.lexists(str(path)):
            continue
        if digest is not None and path.is_file() and file_digest(path) != digest:
            result.changed_since_install.append(str(path))
        path.unlink()
        result.removed_files += 1
        crash_point("during:uninstall")
    # Directories now empty, deepest first; what is left is not ours.
    for dirpath, dirnames, filenames in sorted(os.walk(str(prefix)), key=lambda t: -len(t[0])):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            if not (dirpath == str(prefix) and name == MANIFEST_NAME):
                result.kept_foreign.append(os.path.join(dirpath, name))
        if dirpath != str(prefix):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    (prefix / MANIFEST_NAME).unlink()
    try:
        prefix.rmdir()
    except OSError:
        pass


def remove_activation(
    root: Path, profile_file: Optional[Path], result: UninstallResult
) -> List[Path]:
    """Remove the activation files the installs wrote, only while they carry our marker;
    return the ones removed."""
    record = root / ACTIVATION_RECORD
    files = set(read_record(record))
    if profile_file is not None:
        files |= {str(profile_file), str(csh_twin(profile_file))}
    removed = []
    for name in sorted(files):
        path = Path(name)
        if not is_managed(path):
            continue
        path.unlink()
        removed.append(path)
        result.removed_activation.append(name)
        if path.parent.name.endswith(".service.d"):
            try:
                path.parent.rmdir()
            except OSError:
                pass
    if record.exists():
        record.unlink()
    return removed
