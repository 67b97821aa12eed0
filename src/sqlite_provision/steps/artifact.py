"""The steps that pack an artifact (`build`) and install one (`install --artifact`)."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from sqlite_provision.digests import Checksum
from sqlite_provision.host.elf import exported_functions
from sqlite_provision.recipe.features import public_symbols
from sqlite_provision.steps.base import RunState, Step
from sqlite_provision.steps.build import new_staging
from sqlite_provision.store import artifact
from sqlite_provision.store.manifest import Manifest, read_manifest, scan_tree, write_manifest


@dataclass(frozen=True)
class PackArtifact(Step):
    out: Path
    prefix: Path  # where the hosts will install it
    arch: str
    name = "pack-artifact"
    changes_host = True

    def describe(self) -> str:
        return f"pack the staged install and its metadata into {self.out} (+ .sha256)"

    def run(self, state: RunState) -> str:
        assert state.staged is not None  # noqa: S101 - Stage ran
        manifest = read_manifest(state.staged)
        assert manifest is not None  # noqa: S101 - Stage wrote it
        library = state.staged / "lib" / "libsqlite3.so.0"
        sidecar = Path(str(self.out) + ".sha256")
        existed = [p for p in (self.out, sidecar) if os.path.lexists(str(p))]
        digest = artifact.pack(
            state.staged,
            self.out,
            version=manifest.version,
            prefix=str(self.prefix),
            request=manifest.request,
            build=manifest.build,
            symbols=sorted(public_symbols(exported_functions(library))),
            files=manifest.files,
            arch=self.arch,
        )
        if not existed:

            def undo() -> None:
                for path in (self.out, sidecar):
                    if os.path.lexists(str(path)):
                        path.unlink()

            state.undo.append((f"remove {self.out}", undo))
        return f"{self.out} ({self.out.stat().st_size} bytes, sha256 {digest})"


@dataclass(frozen=True)
class UnpackArtifact(Step):
    path: Path
    metadata: Dict[str, Any]
    checksum: Checksum
    prefix: Path
    staging: Path
    request: Dict[str, Any]
    arch: str
    glibc: Optional[Tuple[int, ...]]
    name = "unpack-artifact"

    def describe(self) -> str:
        return (
            f"check {self.path} (sha256, arch {self.metadata.get('arch')}, glibc >= "
            f"{self.metadata.get('glibc_min')}), unpack it beside the prefix, check every file"
        )

    def run(self, state: RunState) -> str:
        artifact.check_checksum(self.path, self.checksum)
        artifact.check_host(self.metadata, self.arch, self.glibc)
        new_staging(state, self.staging, beside_prefix=True)
        tree = artifact.unpack(self.path, self.staging, self.metadata)
        moved = artifact.relocate(tree, str(self.metadata.get("prefix")), str(self.prefix))
        write_manifest(
            tree,
            Manifest(
                version=str(self.metadata["version"]),
                request=dict(self.request),
                build=dict(self.metadata.get("build") or {}, artifact=self.path.name),
                files=scan_tree(tree),
            ),
        )
        state.staged = tree
        note = f"; prefix rewritten in {', '.join(moved)}" if moved else ""
        return (
            f"artifact verified and unpacked ({len(self.metadata.get('files') or {})} files){note}"
        )
