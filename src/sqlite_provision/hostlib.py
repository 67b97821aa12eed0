"""The system libsqlite3 that Python's _sqlite3 loads when run without our environment: its path,
version, compile options and exported public API. The ABI gate compares the new library to it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Optional, Tuple

from sqlite_provision.elf import ElfError, exported_functions
from sqlite_provision.features import public_symbols
from sqlite_provision.verify import read_library, system_probe


@dataclass(frozen=True)
class HostLibrary:
    path: Optional[str]
    version: Optional[str]
    options: Tuple[str, ...] = ()
    symbols: FrozenSet[str] = field(default_factory=frozenset)  # public API only
    problem: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "version": self.version,
            "compile_options": list(self.options),
            "public_symbols": len(self.symbols),
            "problem": self.problem,
        }


def probe(python: str) -> HostLibrary:
    """Ask `python` (without LD_LIBRARY_PATH) which library it maps; fall back to ldconfig's."""
    seen = system_probe(python)
    path = seen.library
    version = seen.sqlite_version
    options = tuple(seen.compile_options or ())
    if not path or ours(path):
        if path:
            # With --ld-so-conf active, python maps our own earlier install even without
            # LD_LIBRARY_PATH: compare with the distribution's library instead.
            path = distribution_library()
        else:  # _sqlite3 linked statically, or no sqlite3 module: ask ldconfig
            from sqlite_provision.status import system_library

            path = system_library()
        version, options = None, ()
        if path:
            try:
                version, listed = read_library(Path(path))
                options = tuple(listed)
            except (RuntimeError, ValueError) as exc:
                return HostLibrary(path, None, problem=str(exc))
    if not path:
        return HostLibrary(None, version, options, problem="no system libsqlite3 found")
    try:
        symbols = public_symbols(exported_functions(Path(path)))
    except (OSError, ElfError) as exc:
        return HostLibrary(path, version, options, problem=f"cannot read {path}: {exc}")
    return HostLibrary(path, version, options, symbols)


DISTRIBUTION_DIRS = ("/usr/lib64", "/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                     "/usr/lib", "/lib")  # fmt: skip


def ours(library: str) -> bool:
    """A library inside a prefix this tool installed (a manifest in one of its parents)."""
    from sqlite_provision.options import MANIFEST_NAME

    for parent in Path(os.path.realpath(library)).parents:
        if (parent / MANIFEST_NAME).is_file():
            return True
    return False


def distribution_library() -> Optional[str]:
    for directory in DISTRIBUTION_DIRS:
        candidate = Path(directory) / "libsqlite3.so.0"
        if candidate.exists() and not ours(str(candidate)):
            return str(candidate)
    return None
