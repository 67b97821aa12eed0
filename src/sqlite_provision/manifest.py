"""The manifest in each prefix: every file installed with its sha256, and how it was built.

It is what makes re-runs cheap and honest (the install is trusted only if the files still match),
and what uninstall will remove, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from sqlite_provision.activate import write_atomic
from sqlite_provision.options import MANIFEST_NAME

FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    version: str
    request: Dict[str, Any]  # the inputs that define the build (version, source hash, CFLAGS)
    build: Dict[str, Any]  # era, configure args, cflags, compile options
    files: Dict[str, Optional[str]]  # relative path -> sha256, or None for a symlink

    def to_json(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "tool": "sqlite-provision",
            "version": self.version,
            "request": self.request,
            "build": self.build,
            "files": self.files,
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
            files[rel] = None if path.is_symlink() else sha256_file(path)
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
        elif sha256_file(path) != digest:
            problems.append(f"{rel}: content changed")
    return problems
