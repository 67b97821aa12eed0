"""Build once, deploy many: a staged install packed with its metadata, for hosts with no compiler.

An artifact is a .tar.gz holding `metadata.json` and `tree/` (the staged prefix). Beside it,
`ARTIFACT.sha256` holds its checksum; installing needs that file or --sha256 (fail closed). Every
file of the tree is hashed in the metadata and checked after unpacking.
"""

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sqlite_provision import __version__
from sqlite_provision.digests import Checksum, file_digest, mismatch
from sqlite_provision.errors import ChecksumError, DownloadError, HostError
from sqlite_provision.files import write_atomic
from sqlite_provision.host.elf import ElfError, glibc_needed, required_versions
from sqlite_provision.source.archive import extract_members

FORMAT = 1
METADATA = "metadata.json"
TREE = "tree"


def glibc_of_tree(tree: Path) -> Tuple[int, ...]:
    needed: Tuple[int, ...] = (0,)
    for path in sorted(tree.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        try:
            needed = max(needed, glibc_needed(required_versions(path)))
        except (ElfError, IndexError, ValueError):
            continue
    return needed


def pack(
    staged: Path,
    out: Path,
    *,
    version: str,
    prefix: str,
    request: Dict[str, Any],
    build: Dict[str, Any],
    symbols: List[str],
    files: Dict[str, Optional[str]],
    arch: str,
) -> str:
    """Write the artifact atomically (mode 0644) and its .sha256 beside it; return the sha256."""
    glibc = glibc_of_tree(staged)
    metadata = {
        "format": FORMAT,
        "tool": "sqlite-provision",
        "tool_version": __version__,
        "version": version,
        "prefix": prefix,
        "arch": arch,
        "glibc_min": ".".join(str(p) for p in glibc) if glibc != (0,) else None,
        "request": request,
        "build": build,
        "symbols": sorted(symbols),
        "files": files,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        data = (json.dumps(metadata, indent=1, sort_keys=True) + "\n").encode("utf-8")
        info = tarfile.TarInfo(METADATA)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
        for rel in sorted(files):
            tar.add(str(staged / rel), arcname=f"{TREE}/{rel}", recursive=False)
    payload = buffer.getvalue()
    write_atomic(out, payload, 0o644)
    digest = hashlib.sha256(payload).hexdigest()
    write_atomic(Path(str(out) + ".sha256"), f"{digest}  {out.name}\n".encode(), 0o644)
    return digest


def expected_checksum(artifact: Path, given: Optional[str]) -> Checksum:
    """The artifact's SHA-256: --sha256 (validated already), else its .sha256 file (fail closed)."""
    if given:
        return Checksum("sha256", given)
    sidecar = Path(str(artifact) + ".sha256")
    try:
        words = sidecar.read_text(encoding="utf-8").split()
    except OSError:
        words = []
    if not words:
        raise ChecksumError(
            f"no checksum for the artifact {artifact}",
            hint=f"pass --sha256 HEX, or keep {sidecar.name} (written by `build`) beside it",
        )
    try:
        return Checksum("sha256", words[0])
    except ValueError:
        raise ChecksumError(
            f"{sidecar} does not start with a SHA-256 (64 hex characters)",
            hint=f"copy {sidecar.name} again from the build host, or pass --sha256 HEX",
        ) from None


def check_checksum(artifact: Path, expected: Checksum) -> None:
    got = file_digest(artifact)
    if got != expected.hexdigest:
        raise mismatch(
            f"the artifact {artifact.name}",
            expected,
            got,
            hint="copy the artifact again; if you rebuilt it, use its new .sha256",
        )


def read_metadata(artifact: Path) -> Dict[str, Any]:
    try:
        with tarfile.open(str(artifact), "r:gz") as tar:
            member = tar.getmember(METADATA)
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(METADATA)
            data = json.loads(handle.read().decode("utf-8"))
    except (tarfile.TarError, KeyError, ValueError, OSError, EOFError) as exc:
        raise DownloadError(
            f"{artifact} is not a sqlite-provision artifact: {exc}",
            hint="build one with `sqlite-provision build --artifact OUT.tar.gz`",
        ) from exc
    if not isinstance(data, dict) or data.get("tool") != "sqlite-provision":
        raise DownloadError(
            f"{artifact} is not a sqlite-provision artifact",
            hint="build one with `sqlite-provision build --artifact OUT.tar.gz`",
        )
    return data


def check_host(metadata: Dict[str, Any], arch: str, glibc: Optional[Tuple[int, ...]]) -> None:
    """The artifact runs on a host of this arch and glibc (exit 3 otherwise)."""
    if metadata.get("arch") != arch:
        raise HostError(
            f"the artifact was built for {metadata.get('arch')}, this host is {arch}",
            hint="build the artifact on a host of the same architecture",
        )
    needed = metadata.get("glibc_min")
    if needed and glibc is not None:
        try:
            needed_key = tuple(int(p) for p in str(needed).split("."))
        except ValueError as exc:
            raise HostError(f"bad glibc_min {needed!r} in the artifact") from exc
        if needed_key > glibc:
            raise HostError(
                "the artifact needs glibc {}, this host has {}".format(
                    needed, ".".join(str(p) for p in glibc)
                ),
                hint="build the artifact on the oldest OS release you deploy to",
            )


def unpack(artifact: Path, dest: Path, metadata: Dict[str, Any]) -> Path:
    """Extract tree/ into dest (checked members), verify every file's hash; return the tree."""
    try:
        with tarfile.open(str(artifact), "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(TREE + "/")]
            extract_members(tar, members, dest, own_modes=False)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"cannot unpack the artifact {artifact}: {exc}") from exc
    tree = dest / TREE
    files: Dict[str, Optional[str]] = dict(metadata.get("files") or {})
    for rel, digest in files.items():
        path = tree / rel
        if digest is None:
            ok = path.is_symlink()
        else:
            ok = path.is_file() and not path.is_symlink() and file_digest(path) == digest
        if not ok:
            raise ChecksumError(
                f"the artifact's file {rel} does not match its metadata",
                hint="the artifact was altered after it was built; rebuild it",
            )
    return tree


def relocate(tree: Path, old_prefix: str, new_prefix: str) -> List[str]:
    """Rewrite the built-for prefix in text files (sqlite3.pc, libsqlite3.la). Binaries keep it:
    the library has no rpath, and LD_LIBRARY_PATH from the activation files finds it."""
    changed: List[str] = []
    if old_prefix == new_prefix:
        return changed
    for path in sorted(tree.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data or old_prefix.encode() not in data:
            continue
        path.write_bytes(data.replace(old_prefix.encode(), new_prefix.encode()))
        changed.append(str(path.relative_to(tree)))
    return changed
