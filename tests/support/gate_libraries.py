"""Real libraries for the ABI gate's tests, and a python that takes one for its system library.

    python = python_seeing(build_system_sqlite("3.26.0", tmp / "rhel8"), tmp)  # RHEL 8's host
    lib = amalgamation_library(tarball, ("-DSQLITE_OMIT_JSON",))  # 3.44.2 without JSON

`amalgamation_library` compiles the tarball's sqlite3.c alone into libsqlite3.so.0 (one gcc at
-O0, a few seconds), cached in build/amalgamation/<key>/ like support/system_sqlite.py's builds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, List, Sequence, Tuple

from sqlite_provision.host.library import SystemLibrary, probe
from sqlite_provision.runner import Completed, Runner
from support import REPO_ROOT, need_tool, unavailable
from support.interpreters import interpreter

CACHE = REPO_ROOT / "build" / "amalgamation"

# RHEL 8's sqlite.spec flags (support/system_sqlite.py), with FTS4/FTS5, which its configure
# adds: a library that keeps every function RHEL 8's library exports.
RHEL8_LIKE = (
    "-DSQLITE_ENABLE_COLUMN_METADATA=1", "-DSQLITE_DISABLE_DIRSYNC=1", "-DSQLITE_ENABLE_FTS3=3",
    "-DSQLITE_ENABLE_FTS4=1", "-DSQLITE_ENABLE_FTS5=1", "-DSQLITE_ENABLE_RTREE=1",
    "-DSQLITE_SECURE_DELETE=1", "-DSQLITE_ENABLE_UNLOCK_NOTIFY=1", "-DSQLITE_ENABLE_DBSTAT_VTAB=1",
    "-DSQLITE_ENABLE_FTS3_PARENTHESIS=1", "-DSQLITE_THREADSAFE=1",
)  # fmt: skip


class RecordingRunner(Runner):
    """A real Runner that also keeps the argv of each command it captures."""

    def __init__(self) -> None:
        super().__init__(os.environ)
        self.captured: List[List[str]] = []

    def capture(self, argv: Sequence[str], **kwargs: Any) -> Completed:
        self.captured.append([str(a) for a in argv])
        return super().capture(argv, **kwargs)


def python_seeing(library: Path, directory: Path) -> str:
    """A python (CPython 3.6, as RHEL 8's platform-python) whose system libsqlite3 is `library`:
    the loader finds it after whatever LD_LIBRARY_PATH an activation gives, as it finds
    /usr/lib64's on a host. (The machine's own python3 would not do: its _sqlite3 was built
    against 3.40.1 and needs functions an old library lacks.)"""
    python = interpreter("3.6") or unavailable("no CPython 3.6 under pyenv")
    wrapper = directory / "python3"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'LD_LIBRARY_PATH="${{LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}}{library.parent}" '
        f'exec {python} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def amalgamation_library(tarball: Path, defines: Sequence[str]) -> Path:
    """libsqlite3.so.0 compiled from the tarball's sqlite3.c with `defines` (cached)."""
    gcc = need_tool("gcc")
    compiler = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True)
    key = hashlib.sha256(
        "\n".join([tarball.name, str(tarball.stat().st_size), *defines, compiler.stdout]).encode()
    ).hexdigest()[:12]
    library = CACHE / key / "libsqlite3.so.0"
    if library.is_file():
        return library
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=str(CACHE)) as work:
        with tarfile.open(str(tarball)) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/sqlite3.c"))
            source = archive.extractfile(member)
            assert source is not None
            (Path(work) / "sqlite3.c").write_bytes(source.read())
        built = Path(work) / "libsqlite3.so.0"
        done = subprocess.run(
            [gcc, "-O0", "-shared", "-fPIC", "-Wl,-soname,libsqlite3.so.0", *defines,
             "-o", str(built), "sqlite3.c", "-lpthread", "-ldl", "-lm"],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        library.parent.mkdir(exist_ok=True)
        os.replace(str(built), str(library))
    return library


def rhel8_system_lib(directory: Path) -> Tuple[SystemLibrary, str]:
    """RHEL 8's system library (3.26.0, its spec flags) as the tool itself sees it: probed
    through a python that loads it (host/library.py); and that python."""
    from support.system_sqlite import build_system_sqlite

    python = python_seeing(build_system_sqlite("3.26.0", directory / "rhel8"), directory)
    system_lib = probe(Runner(os.environ), python)
    assert system_lib.version == "3.26.0" and system_lib.problem is None, system_lib
    assert "ENABLE_JSON1" in system_lib.options and len(system_lib.symbols) > 200, system_lib
    return system_lib, python
