"""The system libsqlite3 that Python's _sqlite3 loads when run without our environment: its path,
version, compile options and exported public API. The ABI gate compares the new library to it."""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, List, Optional, Tuple

from sqlite_provision.config import MANIFEST_NAME
from sqlite_provision.host.elf import ElfError, exported_functions
from sqlite_provision.host.pythons import read_library, system_probe
from sqlite_provision.recipe.features import public_symbols
from sqlite_provision.runner import Runner

_LDCONFIG_LINE = re.compile(r"^\s*(libsqlite3\.so\.0)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")
LDCONFIG_PATHS = ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig")
DISTRIBUTION_DIRS = ("/usr/lib64", "/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                     "/usr/lib", "/lib")  # fmt: skip


@dataclass(frozen=True)
class SystemLibrary:
    path: Optional[str]
    version: Optional[str]
    options: Tuple[str, ...] = ()
    symbols: FrozenSet[str] = field(default_factory=frozenset)  # public API only
    problem: Optional[str] = None


NOT_PROBED = SystemLibrary(None, None, problem="not probed")


def probe(runner: Runner, python: str) -> SystemLibrary:
    """Ask `python` (without LD_LIBRARY_PATH) which library it maps; fall back to ldconfig's."""
    seen = system_probe(runner, python)
    path = seen.library
    version = seen.sqlite_version
    options = tuple(seen.compile_options)
    if not path or ours(path):
        if path:
            # With --ld-so-conf active, python maps our own earlier install even without
            # LD_LIBRARY_PATH: compare with the distribution's library instead.
            path = distribution_library()
        else:  # _sqlite3 linked statically, or no sqlite3 module: ask ldconfig
            path = system_library(runner)
        version, options = None, ()
        if path:
            try:
                version, listed = read_library(runner, Path(path))
                options = tuple(listed)
            except (RuntimeError, ValueError) as exc:
                return SystemLibrary(path, None, problem=str(exc))
    if not path:
        return SystemLibrary(None, version, options, problem="no system libsqlite3 found")
    try:
        symbols = public_symbols(exported_functions(Path(path)))
    except (OSError, ElfError) as exc:
        return SystemLibrary(path, version, options, problem=f"cannot read {path}: {exc}")
    return SystemLibrary(path, version, options, symbols)


def parse_ldconfig(text: str) -> List[Tuple[str, str]]:
    """(flags, path) of each libsqlite3.so.0 in `ldconfig -p` output, in the cache's order."""
    found = []
    for line in text.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match:
            found.append((match.group(2), match.group(3)))
    return found


def system_library(runner: Runner) -> Optional[str]:
    """The libsqlite3.so.0 the loader's cache names for this arch."""
    for ldconfig in LDCONFIG_PATHS:
        result = runner.capture([ldconfig, "-p"], env=runner.clean_env(), timeout=20)
        if result.returncode == 0:
            for flags, path in parse_ldconfig(result.stdout):
                if "x86-64" in flags or "64bit" in flags or os.uname().machine not in flags:
                    return path
            return None
    return None


def ours(library: str) -> bool:
    """A library inside a prefix this tool installed (a manifest in one of its parents)."""
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
