"""The system libsqlite3 of older RHEL releases, for look-alike hosts and the ABI gate: built from
../shared/system-sqlite with that release's sqlite.spec flags (shared/reference/README.md).

    lib = build_system_sqlite("3.26.0", tmp / "rhel8")    # .../lib/libsqlite3.so.0, RHEL 8's

Red Hat builds from sqlite-src; these are the sqlite-autoconf tarballs of the same releases, so
the spec's configure options are mapped to this tarball's (`--enable-load-extension` is
`--enable-dynamic-extensions` here). Each build is checked: its version, and that `PRAGMA
compile_options` lists the spec's options (a typo in a -D flag is silently ignored otherwise).

Builds are kept in build/system-sqlite/<key>/ between runs (the key covers the tarball, the
flags and the compiler), so only a fresh clone (CI) pays the few seconds each takes at -O0.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from support import REPO_ROOT, need, need_tool

SYSTEM_SQLITE_DIR = Path(
    os.environ.get(
        "SQLITE_PROVISION_TEST_SYSTEM_SQLITE", REPO_ROOT.parent / "shared" / "system-sqlite"
    )
)
CACHE = REPO_ROOT / "build" / "system-sqlite"

# sqlite.spec of RHEL 7 (3.7.17); RHEL 8 (3.26.0) adds the rest (shared/reference/README.md).
RHEL7_DEFINES = (
    "-DSQLITE_ENABLE_COLUMN_METADATA=1",
    "-DSQLITE_DISABLE_DIRSYNC=1",
    "-DSQLITE_ENABLE_FTS3=3",
    "-DSQLITE_ENABLE_RTREE=1",
    "-DSQLITE_SECURE_DELETE=1",
    "-DSQLITE_ENABLE_UNLOCK_NOTIFY=1",
)
RHEL8_DEFINES = (
    *RHEL7_DEFINES,
    "-DSQLITE_ENABLE_DBSTAT_VTAB=1",
    "-DSQLITE_ENABLE_FTS3_PARENTHESIS=1",
    "-DSQLITE_ENABLE_JSON1=1",
)


@dataclass(frozen=True)
class SystemRelease:
    version: str
    of: str  # whose system library it is
    tarball: str
    defines: Tuple[str, ...]
    configure: Tuple[str, ...]
    options: Tuple[str, ...]  # what PRAGMA compile_options must list

    @property
    def key(self) -> str:
        compiler = subprocess.run(
            ["gcc", "--version"], capture_output=True, text=True, check=False
        ).stdout.split("\n", 1)[0]
        text = "\n".join([self.tarball, *self.defines, *self.configure, compiler])
        return f"{self.version}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


RELEASES = {
    "3.7.17": SystemRelease(
        "3.7.17",
        "RHEL 7, CentOS 7, Amazon Linux 2",
        "sqlite-autoconf-3071700.tar.gz",
        RHEL7_DEFINES,
        ("--enable-threadsafe", "--enable-dynamic-extensions"),
        (
            "ENABLE_COLUMN_METADATA",
            "ENABLE_FTS3",
            "ENABLE_RTREE",
            "SECURE_DELETE",
            "ENABLE_UNLOCK_NOTIFY",
            "DISABLE_DIRSYNC",
        ),
    ),
    "3.26.0": SystemRelease(
        "3.26.0",
        "RHEL 8 and its rebuilds",
        "sqlite-autoconf-3260000.tar.gz",
        RHEL8_DEFINES,
        ("--enable-fts5", "--enable-threadsafe", "--enable-dynamic-extensions"),
        (
            "ENABLE_COLUMN_METADATA",
            "ENABLE_FTS3",
            "ENABLE_FTS3_PARENTHESIS",
            "ENABLE_FTS4",
            "ENABLE_FTS5",
            "ENABLE_JSON1",
            "ENABLE_RTREE",
            "ENABLE_DBSTAT_VTAB",
            "SECURE_DELETE",
            "ENABLE_UNLOCK_NOTIFY",
            "DISABLE_DIRSYNC",
        ),
    ),
}


def expected_sha256(tarball: str) -> str:
    for line in (SYSTEM_SQLITE_DIR / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name.strip() == tarball:
            return digest
    raise AssertionError(f"{tarball} is not in {SYSTEM_SQLITE_DIR / 'SHA256SUMS'}")


def build_system_sqlite(version: str, out: Path) -> Path:
    """That release's library, as its RHEL builds it, installed under `out` (a copy of the cached
    build); returns out/lib/libsqlite3.so.0."""
    release = RELEASES[version]
    tarball = SYSTEM_SQLITE_DIR / release.tarball
    need(tarball.is_file(), f"{tarball} is missing (../shared/system-sqlite)")
    need_tool("gcc")
    need_tool("make")
    cached = CACHE / release.key
    if not (cached / ".done").is_file():
        build_into(release, tarball, cached)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(cached, out, symlinks=True)
    (out / ".done").unlink()
    return out / "lib" / "libsqlite3.so.0"


def build_into(release: SystemRelease, tarball: Path, dest: Path) -> None:
    data = tarball.read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected_sha256(release.tarball), tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        subprocess.run(["tar", "-xzf", str(tarball), "-C", work], check=True)
        (src,) = Path(work).glob("sqlite-autoconf-*")
        staged = Path(work) / "installed"
        env = dict(os.environ, CFLAGS=" ".join(["-O0", *release.defines]))
        env.pop("LD_LIBRARY_PATH", None)
        for argv in (
            ["./configure", f"--prefix={staged}", "--disable-static", *release.configure],
            ["make", f"-j{os.cpu_count() or 1}"],
            ["make", "install"],
        ):
            done = subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True,
                                  check=False)  # fmt: skip
            assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        check_library(release, staged / "lib" / "libsqlite3.so.0")
        (staged / ".done").write_text(release.key + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)


def compile_options(library: Path) -> Tuple[str, List[str]]:
    """The version and PRAGMA compile_options of a library file, read through ctypes."""
    lib = ctypes.CDLL(str(library))
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    lib.sqlite3_compileoption_get.restype = ctypes.c_char_p
    lib.sqlite3_compileoption_get.argtypes = [ctypes.c_int]
    options: List[str] = []
    while True:
        name = lib.sqlite3_compileoption_get(len(options))
        if name is None:
            break
        options.append(name.decode())
    return lib.sqlite3_libversion().decode(), options


def check_library(release: SystemRelease, library: Path) -> None:
    # In a child process: loading two libsqlite3 into the test process would be a trap.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[2]); "
         "from support.system_sqlite import compile_options; "
         "v, o = compile_options(sys.argv[1]); print(v); print(' '.join(o))",
         str(library), str(REPO_ROOT / "tests")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    version, options = probe.stdout.splitlines()[:2]
    assert version == release.version, (version, release.version)
    names = {o.split("=", 1)[0] for o in options.split()}
    missing = [o for o in release.options if o not in names]
    assert not missing, f"{library} lacks {missing}: {options}"
