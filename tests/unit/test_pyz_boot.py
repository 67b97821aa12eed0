"""The pyz's start (sqlite_provision.pyz_boot), in this process on a small real zip: where the
cache is, what it trusts, what it rebuilds, what it removes. tests/integration/test_pyz_cache.py
runs the real pyz on CPython 3.6 and 3.13."""

from __future__ import annotations

import fcntl
import os
import pwd
import zipfile
from pathlib import Path
from typing import Callable, Dict, Iterator

import pytest

from sqlite_provision import config, pyz_boot
from sqlite_provision.pyz_boot import MANIFEST, Untrusted, cached

MODULES = {
    "__main__.py": "print('main')\n",
    "pkg/__init__.py": "VALUE = 'genuine'\n",
    "pkg/data.txt": "some data\n",
    "_vendor/dep.py": "X = 1\n",
}


@pytest.fixture(autouse=True)
def release_locks() -> Iterator[None]:
    yield
    while pyz_boot._held:
        os.close(pyz_boot._held.pop())


def make_pyz(path: Path, extra: str = "") -> Path:
    with zipfile.ZipFile(str(path), "w") as pyz:
        for name, text in MODULES.items():
            pyz.writestr(name, text)
        if extra:
            pyz.writestr("extra.txt", extra)
    return path


@pytest.fixture
def pyz(tmp_path: Path) -> Path:
    return make_pyz(tmp_path / "tool.pyz")


def env_for(tmp_path: Path) -> Dict[str, str]:
    return {"SQLITE_PROVISION_CACHE_DIR": str(tmp_path / "cache")}


def tag() -> str:
    return str(__import__("sys").implementation.cache_tag)


def test_the_cache_is_under_the_tools_cache_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    envs = [
        {"SQLITE_PROVISION_CACHE_DIR": str(tmp_path / "c")},
        {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")},
        {"XDG_CACHE_HOME": "relative", "HOME": str(tmp_path / "home")},
        {"HOME": str(tmp_path / "home")},
        {},
    ]
    for euid in (0, 1000):
        monkeypatch.setattr(os, "geteuid", lambda euid=euid: euid)
        for env in envs:
            expected = str(config.cache_dir(env) / "pyz")
            assert pyz_boot.cache_base(env, euid) == expected, (euid, env)


def test_the_first_start_unpacks_and_compiles_and_the_next_one_uses_it(
    pyz: Path, tmp_path: Path
) -> None:
    env = env_for(tmp_path)
    entry = cached(str(pyz), env)
    assert entry is not None
    digest = pyz_boot.pyz_digest(pyz.read_bytes())
    assert Path(entry) == (tmp_path / "cache" / "pyz" / f"{digest}.{tag()}").resolve()
    assert (Path(entry) / "pkg" / "__pycache__" / f"__init__.{tag()}.pyc").is_file()
    assert (Path(entry) / "pkg" / "data.txt").read_text() == "some data\n"
    listed = (Path(entry) / MANIFEST).read_text().splitlines()
    assert listed[0] == f"{pyz_boot.FORMAT} {digest}.{tag()}"
    assert any(line.endswith(" pkg/data.txt") for line in listed)
    before = (Path(entry) / MANIFEST).stat().st_mtime_ns
    assert cached(str(pyz), env) == entry
    assert (Path(entry) / MANIFEST).stat().st_mtime_ns == before  # used, not rebuilt
    assert sorted(p.name for p in (tmp_path / "cache" / "pyz").iterdir()) == [Path(entry).name]


def _append(path: Path) -> None:
    with path.open("a") as handle:
        handle.write("VALUE = 'tampered'\n")


def _same_size_new_mtime(path: Path) -> None:
    path.write_text(path.read_text().replace("genuine", "tampere"))


def _added(path: Path) -> None:
    (path.parent / "json.py").write_text("raise SystemExit('shadowed')\n")


def _symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to("/etc/hostname")


def _group_writable(path: Path) -> None:
    path.chmod(0o664)


def _no_manifest(path: Path) -> None:
    _append(path)
    (path.parent.parent / MANIFEST).unlink()


def _garbled_manifest(path: Path) -> None:
    _append(path)
    manifest = path.parent.parent / MANIFEST
    manifest.write_bytes(manifest.read_bytes().replace(b"\nf ", b"\n\xff ", 1))


MUTATIONS: Dict[str, Callable[[Path], None]] = {
    "appended": _append,
    "same size, new mtime": _same_size_new_mtime,
    "a file added": _added,
    "removed": lambda path: path.unlink(),
    "a link instead": _symlink,
    "group-writable": _group_writable,
    "no manifest": _no_manifest,
    "a garbled manifest": _garbled_manifest,
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_changed_entry_is_not_used_but_rebuilt(pyz: Path, tmp_path: Path, mutation: str) -> None:
    env = env_for(tmp_path)
    entry = Path(str(cached(str(pyz), env)))
    os.close(pyz_boot._held.pop())
    module = entry / "pkg" / "__init__.py"
    manifest = (entry / MANIFEST).read_text() if (entry / MANIFEST).exists() else ""
    MUTATIONS[mutation](module)
    with pytest.raises((Untrusted, OSError)):
        pyz_boot.open_entry(
            str(entry), f"{pyz_boot.pyz_digest(pyz.read_bytes())}.{tag()}", os.geteuid()
        )
    assert cached(str(pyz), env) == str(entry)  # rebuilt in place, and used
    assert module.read_text() == "VALUE = 'genuine'\n"
    assert not (entry / "pkg" / "json.py").exists()
    assert (entry / MANIFEST).read_text() != manifest  # a new manifest: rebuilt


def test_an_entry_in_use_is_not_replaced(pyz: Path, tmp_path: Path) -> None:
    """A running process holds its manifest's lock: a changed entry it runs from is left to it,
    and this start runs from the zip."""
    env = env_for(tmp_path)
    entry = Path(str(cached(str(pyz), env)))
    _append(entry / "pkg" / "__init__.py")
    assert cached(str(pyz), env) is None
    assert "tampered" in (entry / "pkg" / "__init__.py").read_text()


def test_a_pyz_with_an_odd_member_name_runs_from_the_zip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pyz"
    with zipfile.ZipFile(str(bad), "w") as pyz:
        pyz.writestr("../escaped.py", "X = 1\n")
    assert cached(str(bad), env_for(tmp_path)) is None
    assert not (tmp_path / "cache" / "escaped.py").exists()
    assert list((tmp_path / "cache" / "pyz").iterdir()) == []  # the temporary sibling went


def test_an_unwritable_cache_runs_from_the_zip(pyz: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    assert cached(str(pyz), {"SQLITE_PROVISION_CACHE_DIR": str(tmp_path / "file" / "c")}) is None


def test_the_cache_can_be_turned_off(pyz: Path, tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "SQLITE_PROVISION_PYZ_CACHE": "0"}
    assert cached(str(pyz), env) is None
    assert not (tmp_path / "cache").exists()


def test_the_cache_can_be_put_elsewhere(pyz: Path, tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "SQLITE_PROVISION_PYZ_CACHE": str(tmp_path / "shared")}
    entry = cached(str(pyz), env)
    assert entry is not None and Path(entry).parent == (tmp_path / "shared").resolve()
    assert not (tmp_path / "cache").exists()
    assert cached(str(pyz), {"SQLITE_PROVISION_PYZ_CACHE": "shared"}) is None  # not absolute


def test_a_directory_others_can_write_is_not_trusted(pyz: Path, tmp_path: Path) -> None:
    env = env_for(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    cache.chmod(0o777)
    assert cached(str(pyz), env) is None
    with pytest.raises(Untrusted, match="writable by group or others"):
        pyz_boot.check_directories(str(cache.resolve()), os.geteuid())
    cache.chmod(0o1777)  # sticky, as /tmp: others cannot rename what is ours
    assert cached(str(pyz), env) is not None
    (cache / "pyz").chmod(0o1777)  # ... but the cache's own directory is ours alone
    assert cached(str(pyz), env) is None


def test_a_directory_of_another_user_is_not_trusted(pyz: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    nobody = pwd.getpwnam("nobody").pw_uid
    env = env_for(tmp_path)
    entry = Path(str(cached(str(pyz), env)))
    os.close(pyz_boot._held.pop())
    os.chown(str(entry / "pkg" / "__init__.py"), nobody, -1)
    assert cached(str(pyz), env) == str(entry)  # another owner inside: rebuilt
    assert (entry / "pkg" / "__init__.py").stat().st_uid == 0
    os.close(pyz_boot._held.pop())
    os.chown(str(tmp_path / "cache" / "pyz"), nobody, -1)
    assert cached(str(pyz), env) is None  # the cache's directory itself: not touched
    os.chown(str(tmp_path / "cache" / "pyz"), 0, -1)
    os.chown(str(tmp_path / "cache"), nobody, -1)  # a parent that user could rename
    assert cached(str(pyz), env) is None


def test_a_new_pyz_removes_the_other_entries_unless_in_use(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    first = Path(str(cached(str(make_pyz(tmp_path / "a.pyz", "a")), env)))
    os.close(pyz_boot._held.pop())
    second = Path(str(cached(str(make_pyz(tmp_path / "b.pyz", "b")), env)))
    assert not first.exists() and second.is_dir()
    with (second / MANIFEST).open() as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_SH)  # as a process running from it
        os.close(pyz_boot._held.pop())
        third = Path(str(cached(str(make_pyz(tmp_path / "c.pyz", "c")), env)))
        assert second.is_dir() and third.is_dir()
    names = sorted(p.name for p in (tmp_path / "cache" / "pyz").iterdir())
    assert names == sorted([second.name, third.name])


def test_leftovers_of_killed_starts_are_removed_once_stale(pyz: Path, tmp_path: Path) -> None:
    base = tmp_path / "cache" / "pyz"
    base.mkdir(parents=True)
    stale = base / f".tmp-{'0' * 64}.{tag()}-abc"
    fresh = base / f".tmp-{'1' * 64}.{tag()}-def"
    foreign = base / "kept.txt"
    for path in (stale, fresh):
        path.mkdir()
        (path / "x.py").write_text("")
    foreign.write_text("not ours")
    old = 1_000_000_000
    os.utime(str(stale), (old, old))
    assert cached(str(pyz), env_for(tmp_path)) is not None
    assert not stale.exists() and fresh.exists() and foreign.exists()


def test_another_start_that_got_there_first_wins(pyz: Path, tmp_path: Path) -> None:
    env = env_for(tmp_path)
    entry = Path(str(cached(str(pyz), env)))
    key = entry.name
    os.close(pyz_boot._held.pop())
    made = (entry / MANIFEST).stat().st_ino
    pyz_boot.create(pyz.read_bytes(), str(entry.parent), key)  # as a start that lost the race
    assert (entry / MANIFEST).stat().st_ino == made
    assert [p.name for p in entry.parent.iterdir()] == [key]


def test_a_filesystem_without_locks_still_uses_its_entry(
    pyz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flock failing with ENOLCK (an NFS without a lock manager): no rebuild at every start."""
    import errno

    def no_locks(fd: int, how: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(pyz_boot.fcntl, "flock", no_locks)
    env = env_for(tmp_path)
    entry = Path(str(cached(str(pyz), env)))
    made = (entry / MANIFEST).stat().st_ino
    assert cached(str(pyz), env) == str(entry)
    assert (entry / MANIFEST).stat().st_ino == made
