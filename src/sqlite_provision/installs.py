"""Versions side by side under the prefix root: rollback and uninstall.

Uninstall removes exactly the files a version's manifest lists, nothing it did not install.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sqlite_provision.activate import read_link, set_link
from sqlite_provision.errors import HostError, UsageError, VerifyError
from sqlite_provision.manifest import Manifest, read_manifest
from sqlite_provision.options import (
    CURRENT_LINK_NAME,
    MANIFEST_NAME,
    PREVIOUS_LINK_NAME,
)
from sqlite_provision.verify import ProbeResult, verify_python

PROFILE_MARKER = "Managed by sqlite-provision"


@dataclass
class UninstallResult:
    removed_versions: List[str] = field(default_factory=list)
    removed_files: int = 0
    kept_foreign: List[str] = field(default_factory=list)  # files we did not install, left alone
    changed_since_install: List[str] = field(default_factory=list)
    removed_activation: List[str] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {
            "changed": bool(self.removed_versions or self.removed_activation),
            "removed_versions": self.removed_versions,
            "removed_files": self.removed_files,
            "kept_foreign": self.kept_foreign,
            "changed_since_install": self.changed_since_install,
            "removed_activation": self.removed_activation,
        }


def installed(root: Path) -> List[Tuple[str, Path, Manifest]]:
    rows = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_symlink() or not child.is_dir() or child.name.startswith("."):
                continue
            manifest = read_manifest(child)
            if manifest is not None:
                rows.append((manifest.version, child, manifest))
    return rows


def rollback(
    root: Path,
    profile_file: Optional[Path],
    pythons: Tuple[str, ...],
    min_version: str,
) -> Tuple[str, str, List[ProbeResult]]:
    """Swap `current` and `previous`, then re-verify; on failure swap back (exit 6)."""
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
    results = [
        verify_python(
            python,
            prefix=target,
            lib_dir=current_link / "lib",
            profile_file=profile_file if profile_file and profile_file.exists() else None,
            min_version=min_version,
            expected_version=manifest.version,
        )
        for python in pythons
    ]
    failed = [r for r in results if not r.ok]
    if failed:
        undo_previous()
        undo_current()
        raise VerifyError(
            "rollback to {} failed verification: {}; `current` was left at {}".format(
                manifest.version,
                "; ".join(f"{r.python}: {r.problem}" for r in failed),
                current,
            ),
            hint="check --min-version, or install the version you need",
        )
    return current or "", manifest.version, results


def uninstall(
    root: Path, versions: List[str], remove_all: bool, profile_file: Optional[Path]
) -> UninstallResult:
    current = read_link(root / CURRENT_LINK_NAME)
    present = {version: (prefix, manifest) for version, prefix, manifest in installed(root)}
    if remove_all:
        versions = sorted(present)
    if not versions:
        raise UsageError(
            "name a VERSION to uninstall, or pass --all",
            hint="`sqlite-provision status` lists what is installed",
        )
    for version in versions:
        if version not in present:
            raise HostError(
                f"SQLite {version} is not installed under {root} by sqlite-provision",
                hint="`sqlite-provision status` lists what is installed",
            )
        if not remove_all and present[version][0].name == current:
            raise HostError(
                f"SQLite {version} is the current version",
                hint="run `sqlite-provision rollback` (or install another version) first, "
                "or pass --all to remove everything",
            )
    result = UninstallResult()
    for version in versions:
        prefix, manifest = present[version]
        remove_manifest_files(prefix, manifest, result)
        result.removed_versions.append(version)
    remaining = {v for v in present if v not in versions}
    for name in (CURRENT_LINK_NAME, PREVIOUS_LINK_NAME):
        link = root / name
        target = read_link(link)
        if target is not None and target not in {present[v][0].name for v in remaining}:
            set_link(link, None)
            result.removed_activation.append(str(link))
    if remove_all:
        remove_activation(root, profile_file, result)
    try:
        root.rmdir()  # only if now empty
    except OSError:
        pass
    return result


def remove_manifest_files(prefix: Path, manifest: Manifest, result: UninstallResult) -> None:
    from sqlite_provision.manifest import sha256_file

    for rel, digest in sorted(manifest.files.items()):
        path = prefix / rel
        if not os.path.lexists(str(path)):
            continue
        if digest is not None and path.is_file() and sha256_file(path) != digest:
            result.changed_since_install.append(str(path))
        path.unlink()
        result.removed_files += 1
    (prefix / MANIFEST_NAME).unlink()
    # Remove directories that are now empty, deepest first; what is left is not ours.
    for dirpath, dirnames, filenames in sorted(os.walk(str(prefix)), key=lambda t: -len(t[0])):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            result.kept_foreign.append(os.path.join(dirpath, name))
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


def is_managed(path: Path) -> bool:
    try:
        return PROFILE_MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def remove_activation(root: Path, profile_file: Optional[Path], result: UninstallResult) -> None:
    """Remove the activation files the installs wrote, only while they carry our marker."""
    from sqlite_provision.activation import csh_path, read_record
    from sqlite_provision.options import ACTIVATION_RECORD
    from sqlite_provision.runner import capture

    record = root / ACTIVATION_RECORD
    files = set(read_record(record))
    if profile_file is not None:
        files |= {str(profile_file), str(csh_path(profile_file))}
    for name in sorted(files):
        path = Path(name)
        if not is_managed(path):
            continue
        path.unlink()
        result.removed_activation.append(name)
        if path.parent.name.endswith(".service.d"):
            try:
                path.parent.rmdir()
            except OSError:
                pass
            if str(path).startswith("/etc/systemd/") and os.path.isdir("/run/systemd/system"):
                capture(["systemctl", "daemon-reload"])
        if str(path).startswith("/etc/ld.so.conf.d/"):
            capture(["ldconfig"])
    if record.exists():
        record.unlink()
