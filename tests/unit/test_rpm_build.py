"""store/rpm.py against the real rpmbuild, rpm and rpmsign, on a small tree made of this machine's
own libsqlite3 (a real shared library whose soname is libsqlite3.so.0) and Python's _sqlite3
(a real ELF that needs it): about half a second per rpmbuild, no SQLite build. The packages of
real builds are tested in tests/integration/test_rpm.py.

Each filter is proved by its negative: the same tree with the filter taken out of the template
gives a package that provides (or requires) libsqlite3.so.0, which build_rpm refuses."""

from __future__ import annotations

import _sqlite3
import os
import platform
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from sqlite_provision.errors import VerifyError
from sqlite_provision.files import package_data
from sqlite_provision.host.build_user import find_build_user
from sqlite_provision.host.rpmdb import check_signature, read_package
from sqlite_provision.recipe.rpmspec import TEMPLATE, recipe_from_metadata
from sqlite_provision.runner import Log, Runner
from sqlite_provision.store.manifest import manifest_problems, read_manifest
from sqlite_provision.store.rpm import BuiltRpm, SignWith, build_rpm
from support import need, need_tool
from support.gpg import ThrowawayKey
from support.rpm_lookalike import build_user_dir

VERSION = "3.40.1"
PREFIX = "/opt/sqlite/" + VERSION
NAME = "sqlite-provision-sqlite3_40_1"
EPOCH = 1669852800  # 2022-12-01


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """lib/libsqlite3.so.0.8.6 (this machine's library) and its two links, lib/_sqlite3.so."""
    need_tool("rpmbuild")
    library = Path(
        os.path.realpath("/usr/lib/" + platform.machine() + "-linux-gnu/libsqlite3.so.0")
    )
    need(library.is_file(), f"this machine's libsqlite3.so.0 ({library})")
    root = tmp_path / "tree"
    (root / "lib").mkdir(parents=True)
    shutil.copyfile(str(library), str(root / "lib" / library.name))
    os.symlink(library.name, str(root / "lib" / "libsqlite3.so.0"))
    os.symlink(library.name, str(root / "lib" / "libsqlite3.so"))
    shutil.copyfile(str(_sqlite3.__file__), str(root / "lib" / "_sqlite3.so"))
    for path in root.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755)
    return root


@pytest.fixture
def work_parent() -> Iterator[Path]:
    """Where the work directory goes: one the build user (nobody, as root) can reach."""
    with build_user_dir() as parent:
        yield parent


def metadata() -> Dict[str, Any]:
    return {"version": VERSION, "prefix": PREFIX, "arch": platform.machine(), "glibc_min": "2.34",
            "tool_version": "test", "request": {"version": VERSION},
            "build": {"era": "autoconf", "cflags": "-O2"}}  # fmt: skip


def build(tree: Path, out: Path, work: Path, **kwargs: Any) -> BuiltRpm:
    recipe = recipe_from_metadata(metadata(), source_date_epoch=EPOCH)
    user = find_build_user(None, os.geteuid())
    return build_rpm(Runner(os.environ, Log(out.parent / "log")), tree, recipe, metadata(), out, work, user,
                     **kwargs)  # fmt: skip


def rpm(*args: str) -> str:
    done = subprocess.run(["rpm", *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_package_holds_the_tree_and_provides_no_library(
    tree: Path, tmp_path: Path, work_parent: Path
) -> None:
    built = build(tree, tmp_path / "out", work_parent / "work")
    assert built.rpm == tmp_path / "out" / f"{NAME}-{VERSION}-1.{platform.machine()}.rpm"
    assert built.provides == (f"{NAME} = {VERSION}-1", f"{NAME}(x86-64) = {VERSION}-1")
    assert rpm("-qp", "--provides", str(built.rpm)).split("\n")[:-1] == list(built.provides)
    assert ".so" not in rpm("-qp", "--provides", str(built.rpm))
    requires = rpm("-qp", "--requires", str(built.rpm)).split("\n")
    assert "libc.so.6()(64bit)" in requires and any(
        r.startswith("libc.so.6(GLIBC_2.") for r in requires
    )
    assert not [r for r in requires if "sqlite" in r], requires
    assert list(built.requires) == requires[:-1]
    sidecar = Path(str(built.rpm) + ".sha256").read_text()
    assert sidecar == f"{built.sha256}  {built.rpm.name}\n"
    listed = rpm("-qpl", str(built.rpm)).split()
    assert listed == ["/opt/sqlite", PREFIX, f"{PREFIX}/lib", f"{PREFIX}/lib/_sqlite3.so",
                      f"{PREFIX}/lib/libsqlite3.so", f"{PREFIX}/lib/libsqlite3.so.0",
                      f"{PREFIX}/lib/libsqlite3.so.0.8.6",
                      f"{PREFIX}/sqlite-provision-manifest.json"]  # fmt: skip
    assert not (work_parent / "work").exists()
    log = (tmp_path / "log").read_text()
    assert "%global __provides_exclude_from ^/opt/sqlite/3\\\\.40\\\\.1/.*$" in log  # the spec
    rpmbuild = next(line for line in log.splitlines() if "$ " in line and "rpmbuild" in line)
    if os.geteuid() == 0:  # never as root: as nobody, through setpriv
        assert f"--reuid={pwd.getpwnam('nobody').pw_uid} " in rpmbuild, rpmbuild
    owners = rpm(
        "-qp", "--qf", "[%{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEMTIMES}\n]", str(built.rpm)
    )
    assert set(owners.split("\n")[:-1]) == {f"root:root {EPOCH}"}


def test_the_manifest_in_the_package_names_it(
    tree: Path, tmp_path: Path, work_parent: Path
) -> None:
    """Installed into a private root (rpm --root, no dependencies: it has no glibc), the tree
    is one the tool reads as its own install, with the package's name in it."""
    built = build(tree, tmp_path / "out", work_parent / "work")
    root = tmp_path / "root"
    rpm("--root", str(root), "--initdb")
    rpm("--root", str(root), "-i", "--nodeps", str(built.rpm))
    manifest = read_manifest(root / PREFIX.lstrip("/"))
    assert manifest is not None and manifest.build["rpm"] == NAME
    assert manifest.request == {"version": VERSION}
    assert manifest_problems(root / PREFIX.lstrip("/"), manifest) == []
    assert sorted(manifest.files) == ["lib/_sqlite3.so", "lib/libsqlite3.so",
                                      "lib/libsqlite3.so.0", "lib/libsqlite3.so.0.8.6"]  # fmt: skip


def test_two_builds_are_byte_identical(tree: Path, tmp_path: Path, work_parent: Path) -> None:
    first = build(tree, tmp_path / "one", work_parent / "work")
    os.utime(str(tree / "lib" / "_sqlite3.so"))  # a later copy of the same tree
    second = build(tree, tmp_path / "two", work_parent / "work")
    assert first.rpm.read_bytes() == second.rpm.read_bytes()
    assert first.sha256 == second.sha256


@pytest.mark.parametrize("line", ["%global __provides_exclude_from", "%global __requires_exclude"])
def test_without_a_filter_the_package_would_stand_in_and_is_refused(
    line: str, tree: Path, tmp_path: Path, work_parent: Path
) -> None:
    template = package_data("templates/" + TEMPLATE).decode("utf-8")
    unfiltered = "\n".join(t for t in template.split("\n") if not t.startswith(line))
    assert unfiltered != template
    with pytest.raises(VerifyError, match="could stand in for the system library"):
        build(tree, tmp_path / "out", work_parent / "work", template=unfiltered)
    assert not (tmp_path / "out").exists() and not (work_parent / "work").exists()


def test_a_signed_package_checks_out_against_its_key_only(
    tree: Path, tmp_path: Path, work_parent: Path
) -> None:
    need_tool("rpmsign")
    with ThrowawayKey(tmp_path / "gnupg") as key:
        built = build(
            tree, tmp_path / "out", work_parent / "work", sign=SignWith(key.uid, key.home)
        )
    assert built.signed_with == key.uid
    runner = Runner(os.environ)
    keyring = tmp_path / "keyring"
    unknown = check_signature(runner, built.rpm, keyring)
    assert unknown.signed and not unknown.ok and unknown.key_ids == (key.key_id,)
    assert "NOKEY" in unknown.problems[0]
    rpm("--dbpath", str(keyring), "--import", str(key.public))
    trusted = check_signature(runner, built.rpm, keyring)
    assert trusted.ok and trusted.signed and trusted.problems == ()
    assert read_package(runner, built.rpm).name == NAME
    damaged = tmp_path / "damaged.rpm"
    data = bytearray(built.rpm.read_bytes())
    data[-100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    bad = check_signature(runner, damaged, keyring)
    assert not bad.ok and any("BAD" in p for p in bad.problems), bad
    unsigned = check_signature(runner, build(tree, tmp_path / "plain", work_parent / "w").rpm,
                               keyring)  # fmt: skip
    assert unsigned.ok and not unsigned.signed
