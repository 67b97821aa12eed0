"""The pyz's bytecode cache (src/sqlite_provision/pyz_boot.py), with the session's real pyz run as
a host runs it (`python3 sqlite-provision.pyz ...`) on CPython 3.6 and 3.13.

Which file each module came from is read in the process itself: a sitecustomize on PYTHONPATH
writes every module's __file__ at exit. The pyz's own debug line (SQLITE_PROVISION_DEBUG=1) says
where it ran from and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Dict, List, Optional

import pytest

from support import unavailable
from support.faults import need_root, read_only, tmpfs, world_dir
from support.interpreters import interpreter
from support.users import in_namespace

OBSERVER = """\
import atexit, json, os, sys

def _report():
    with open(os.environ["PYZ_TEST_MODULES"], "w") as out:
        json.dump({n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}, out)

atexit.register(_report)
"""


def need_python(minor: str) -> str:
    found = interpreter(minor)
    if found is None:
        unavailable(f"no CPython {minor} under pyenv ({minor} is a supported host python)")
    return found


@dataclass
class Start:
    proc: subprocess.CompletedProcess[str]
    modules: Dict[str, Optional[str]]

    def files(self, *prefixes: str) -> Dict[str, str]:
        """The tool's and its dependencies' modules (those named by prefixes), by file."""
        return {
            name: str(path)
            for name, path in self.modules.items()
            if path and name.split(".")[0] in prefixes
        }


def start(python: str, pyz: Path, cache: Path, *args: str, **extra: str) -> Start:
    observer = cache.parent / "observer"
    observer.mkdir(exist_ok=True)
    (observer / "sitecustomize.py").write_text(OBSERVER)
    report = cache.parent / "modules.json"
    env = {
        "PATH": "/usr/bin:/bin",
        "SQLITE_PROVISION_CACHE_DIR": str(cache),
        "SQLITE_PROVISION_DEBUG": "1",
        "PYTHONPATH": str(observer),
        "PYZ_TEST_MODULES": str(report),
        **extra,
    }
    proc = subprocess.run([python, str(pyz), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return Start(proc, json.loads(report.read_text()))


def entry_of(pyz: Path, cache: Path, python: str) -> Path:
    tag = subprocess.run([python, "-c", "import sys; print(sys.implementation.cache_tag)"],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return cache.resolve() / "pyz" / f"{hashlib.sha256(pyz.read_bytes()).hexdigest()}.{tag}"


def from_zip(run: Start, pyz: Path) -> None:
    files = run.files("sqlite_provision", "click")
    assert files and all(f.startswith(f"{pyz}/") for f in files.values()), files
    assert "running from the zip: " in run.proc.stderr


@pytest.mark.parametrize("minor", ["3.6", "3.13"])
def test_the_second_start_runs_from_the_cache(pyz: Path, tmp_path: Path, minor: str) -> None:
    python = need_python(minor)
    cache = tmp_path / "cache"
    zip_only = start(python, pyz, cache, "versions", "--json", SQLITE_PROVISION_PYZ_CACHE="0")
    assert not cache.exists()
    assert zip_only.files("sqlite_provision")["sqlite_provision.cli"].startswith(f"{pyz}/")

    entry = entry_of(pyz, cache, python)
    runs = [start(python, pyz, cache, "versions", "--json") for _ in range(3)]
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]
    for run in runs:
        assert run.proc.stdout == zip_only.proc.stdout
        assert f"running from {entry}\n" in run.proc.stderr
    second = runs[1]
    files = second.files("sqlite_provision", "click", "jinja2", "markupsafe", "distro")
    assert {"sqlite_provision.cli", "click.core"} <= set(files)
    outside = {name: f for name, f in files.items() if not f.startswith(f"{entry}/")}
    assert outside == {}
    assert str(second.modules["_sqlite_provision_boot"]).startswith(f"{pyz}/")
    assert (entry / "sqlite_provision" / "__pycache__").is_dir()
    # The third start found the entry exactly as made: the second wrote no bytecode into it
    # (the compiled files were valid), nor did anything else.
    assert "not using" not in runs[2].proc.stderr


def _source(build: Path, python: str, commit: str) -> None:
    build.write_text(build.read_text().replace(commit, "TAMPERED-SOURCE"))


def _bytecode(build: Path, python: str, commit: str) -> None:
    """A .pyc that claims to be the genuine _build.py's (same size and mtime in its header)
    but holds other code: a python that trusts the directory runs it."""
    fake = build.with_name("fake.py")
    fake.write_text(build.read_text().replace(commit, "TAMPERED".ljust(len(commit), "-")))
    stat = build.stat()
    os.utime(str(fake), ns=(stat.st_atime_ns, stat.st_mtime_ns))
    pyc = subprocess.run([python, "-c", "import importlib.util, sys; "
                          "print(importlib.util.cache_from_source(sys.argv[1]))", str(build)],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    subprocess.run([python, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], "
                    "cfile=sys.argv[2], doraise=True)", str(fake), pyc], check=True)  # fmt: skip
    fake.unlink()


def _no_manifest(build: Path, python: str, commit: str) -> None:
    _source(build, python, commit)
    (build.parent.parent / ".manifest").unlink()


def _world_writable(build: Path, python: str, commit: str) -> None:
    _source(build, python, commit)
    build.parent.parent.chmod(0o777)


TAMPER = {
    "source": _source,
    "bytecode": _bytecode,
    "no manifest": _no_manifest,
    "world-writable": _world_writable,
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_a_tampered_entry_is_not_executed(pyz: Path, tmp_path: Path, how: str) -> None:
    python = need_python("3.6")
    cache = tmp_path / "cache"
    genuine = start(python, pyz, cache, "--version")
    commit = genuine.proc.stdout.split("(commit ")[1].split(")")[0]
    entry = entry_of(pyz, cache, python)
    build = entry / "sqlite_provision" / "_build.py"
    original = build.read_text()
    TAMPER[how](build, python, commit)
    # The tampering works: a python that imported from the directory would run it.
    probe = subprocess.run([python, "-B", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "import sqlite_provision._build as b; print(b.COMMIT)", str(entry)],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "TAMPERED" in probe

    again = start(python, pyz, cache, "--version")
    assert "TAMPERED" not in again.proc.stdout + again.proc.stderr
    assert again.proc.stdout == genuine.proc.stdout
    # Not used, rebuilt: the next start ran from a fresh entry, the genuine file again.
    assert f"running from {entry}\n" in again.proc.stderr
    assert build.read_text() == original
    assert again.files("sqlite_provision")["sqlite_provision._build"] == str(build)


def _read_only(cache: Path) -> ContextManager[None]:
    cache.mkdir()
    return read_only(cache)


def _full(cache: Path) -> ContextManager[None]:
    cache.mkdir()
    return tmpfs(cache, "256k")


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_a_cache_that_cannot_be_written_runs_from_the_zip(
    pyz: Path, tmp_path: Path, how: str
) -> None:
    python = need_python("3.6")
    cache = tmp_path / "cache"
    zip_only = start(python, pyz, tmp_path / "none", "versions", "--json",
                     SQLITE_PROVISION_PYZ_CACHE="0")  # fmt: skip
    with (_read_only if how == "read-only" else _full)(cache):
        for _ in range(2):
            run = start(python, pyz, cache, "versions", "--json")
            assert run.proc.stdout == zip_only.proc.stdout
            from_zip(run, pyz)
        left = [p.name for p in cache.rglob("*")]
        assert left in ([], ["pyz"]), left  # the temporary sibling was removed
    expected = "Read-only file system" if how == "read-only" else "No space left on device"
    assert expected in run.proc.stderr


def test_a_user_who_cannot_write_the_cache_runs_from_the_zip(pyz: Path, tmp_path: Path) -> None:
    """nobody, with the cache directory root's: the tool runs, from the zip."""
    need_root()
    base = world_dir("sqlite-provision-pyz-")
    try:
        shutil.copy(str(pyz), str(base / "tool.pyz"))
        (base / "cache").mkdir(mode=0o755)
        env = {"PATH": "/usr/bin:/bin", "SQLITE_PROVISION_CACHE_DIR": str(base / "cache"),
               "SQLITE_PROVISION_DEBUG": "1"}  # fmt: skip
        argv = ["/usr/bin/python3", str(base / "tool.pyz"), "versions", "--json"]
        proc = in_namespace(argv, env=env, nobody=True)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["releases"][0]["default"] is True
        assert "running from the zip: [Errno 13] Permission denied" in proc.stderr
        assert list((base / "cache").iterdir()) == []
    finally:
        shutil.rmtree(str(base), ignore_errors=True)


CHANGES: Dict[str, List[str]] = {
    "the cache's directory is another user's": ["chown", "nobody", "{cache}/pyz"],
    "the entry is another user's": ["chown", "-R", "nobody", "{entry}"],
    "a parent is writable by others": ["chmod", "0777", "{cache}"],
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_cache_others_could_write_is_ignored(pyz: Path, tmp_path: Path, change: str) -> None:
    need_root()
    pwd.getpwnam("nobody")
    python = need_python("3.6")
    cache = tmp_path / "cache"
    start(python, pyz, cache, "--version")
    entry = entry_of(pyz, cache, python)
    build = entry / "sqlite_provision" / "_build.py"
    build.write_text('COMMIT = "TAMPERED"\n')
    argv = [a.format(cache=cache, entry=entry) for a in CHANGES[change]]
    subprocess.run(argv, check=True)
    run = start(python, pyz, cache, "--version")
    assert "TAMPERED" not in run.proc.stdout
    if change == "the entry is another user's":
        # In the user's own cache directory: set aside, and a new one made and used.
        assert f"not using {entry}: " in run.proc.stderr
        assert f"running from {entry}\n" in run.proc.stderr
        assert entry.stat().st_uid == os.geteuid()
    else:
        from_zip(run, pyz)
        assert "is owned by uid" in run.proc.stderr or "writable by group or others" in (
            run.proc.stderr
        )
        assert build.read_text() == 'COMMIT = "TAMPERED"\n'  # left as it was: not ours to fix
