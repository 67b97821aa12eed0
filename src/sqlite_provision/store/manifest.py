"""The manifest in each prefix: every file installed with its sha256, and how it was built.

It is what makes re-runs cheap and honest (the install is trusted only if the files still match),
and what uninstall will remove, and nothing else.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from sqlite_provision.config import MANIFEST_NAME
from sqlite_provision.digests import file_digest
from sqlite_provision.files import write_atomic

FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    version: str
    request: Dict[str, Any]  # the inputs that define the build (version, source hash, CFLAGS)
    build: Dict[str, Any]  # era, configure args, cflags, compile options
    files: Dict[str, Optional[str]]  # relative path -> sha256, or None for a symlink

    @property
    def rpm_package(self) -> Optional[str]:
        """The package whose install put this tree here (`install --rpm`), or None."""
        owner = self.build.get("rpm")
        return str(owner) if owner else None

    def to_json(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "tool": "sqlite-provision",
            "version": self.version,
            "request": self.request,
            "build": self.build,
            "files": self.files,
        }


def scan_tree(root: Path) -> Dict[str, Optional[str]]:
    files: Dict[str, Optional[str]] = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        dirnames.sort()
        for name in sorted(
            filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        ):
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if rel == MANIFEST_NAME:
                continue
            files[rel] = None if path.is_symlink() else file_digest(path)
    return files


def write_manifest(prefix: Path, manifest: Manifest) -> None:
    data = json.dumps(manifest.to_json(), indent=1, sort_keys=True) + "\n"
    write_atomic(prefix / MANIFEST_NAME, data.encode("utf-8"), 0o644)


def read_manifest(prefix: Path) -> Optional[Manifest]:
    try:
        data = json.loads((prefix / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "sqlite-provision":
        return None
    try:
        return Manifest(
            version=str(data["version"]),
            request=dict(data.get("request") or {}),
            build=dict(data.get("build") or {}),
            files={str(k): v for k, v in dict(data["files"]).items()},
        )
    except (KeyError, TypeError, ValueError):
        return None


def manifest_problems(prefix: Path, manifest: Manifest) -> List[str]:
    """Files of the manifest that are missing or changed since the install."""
    problems = []
    for rel, digest in sorted(manifest.files.items()):
        path = prefix / rel
        if digest is None:
            if not path.is_symlink():
                problems.append(f"{rel}: missing link")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif file_digest(path) != digest:
            problems.append(f"{rel}: content changed")
    return problems


def installed_reason(prefix: Path, request: Dict[str, Any]) -> Optional[str]:
    """Why no build is needed: this exact build is in the prefix and every file of it is intact
    (hashed here: a run asks once)."""
    manifest = read_manifest(prefix)
    if manifest is None or not same_request(manifest, request):
        return None
    if manifest_problems(prefix, manifest):
        return None
    return f"SQLite {manifest.version} already installed in {prefix} (manifest verified)"


def same_request(manifest: Manifest, request: Dict[str, Any]) -> bool:
    """The manifest's build is the one requested. The same tarball may be named by another hash
    (a pinned version has the catalog's SHA-256, `latest` the download page's SHA3-256): the
    manifest records every digest of the tarball it was built from, so either one matches."""
    if manifest.request == request:
        return True
    digests = manifest.build.get("source_hashes") or []
    return request.get("source_hash") in digests and dict(
        manifest.request, source_hash=None
    ) == dict(request, source_hash=None)
