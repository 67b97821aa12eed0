"""The steps that pack an artifact (`build`) and install one (`install --artifact`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from sqlite_provision import artifact
from sqlite_provision.elf import exported_functions
from sqlite_provision.features import public_symbols
from sqlite_provision.manifest import Manifest, read_manifest, scan_tree, write_manifest
from sqlite_provision.steps import Context, Step, new_staging


@dataclass(frozen=True)
class PackArtifact(Step):
    out: Path
    name = "pack"
    changes_host = True

    def describe(self) -> str:
        return f"pack the staged install and its metadata into {self.out} (+ .sha256)"

    def run(self, ctx: Context) -> str:
        assert ctx.staged_prefix is not None  # noqa: S101
        manifest = read_manifest(ctx.staged_prefix)
        assert manifest is not None  # noqa: S101 - Stage wrote it
        library = ctx.staged_prefix / "lib" / "libsqlite3.so.0"
        previous = [
            p for p in (self.out, Path(str(self.out) + ".sha256")) if os.path.lexists(str(p))
        ]
        digest = artifact.pack(
            ctx.staged_prefix,
            self.out,
            version=manifest.version,
            prefix=str(ctx.layout.prefix),
            request=manifest.request,
            build=manifest.build,
            symbols=sorted(public_symbols(exported_functions(library))),
            files=manifest.files,
        )
        if not previous:

            def undo() -> None:
                for path in (self.out, Path(str(self.out) + ".sha256")):
                    if os.path.lexists(str(path)):
                        path.unlink()

            ctx.undo.append((f"remove {self.out}", undo))
        return f"{self.out} ({self.out.stat().st_size} bytes, sha256 {digest})"


@dataclass(frozen=True)
class UnpackArtifact(Step):
    path: Path
    metadata: Dict[str, Any]
    sha256: Optional[str]
    name = "unpack"

    def describe(self) -> str:
        return (
            f"check {self.path} (sha256, arch {self.metadata.get('arch')}, glibc >= "
            f"{self.metadata.get('glibc_min')}), unpack it beside the prefix, check every file"
        )

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        artifact.check_checksum(self.path, self.sha256)
        artifact.check_host(self.metadata)
        staging = new_staging(ctx, beside_prefix=True)
        tree = artifact.unpack(self.path, staging, self.metadata)
        moved = artifact.relocate(tree, str(self.metadata.get("prefix")), str(ctx.layout.prefix))
        write_manifest(
            tree,
            Manifest(
                version=str(self.metadata["version"]),
                request=ctx.request,
                build=dict(self.metadata.get("build") or {}, artifact=self.path.name),
                files=scan_tree(tree),
            ),
        )
        ctx.staged_prefix = tree
        note = f"; prefix rewritten in {', '.join(moved)}" if moved else ""
        return (
            f"artifact verified and unpacked ({len(self.metadata.get('files') or {})} files){note}"
        )
