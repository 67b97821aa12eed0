"""Layer 2: who runs the build (host/build_user.py) and how root takes the result over
(steps/takeover.py), against real users, real directories and real files."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from sqlite_provision.errors import HostError, UsageError, VerifyError
from sqlite_provision.host.build_user import (
    BuildUser,
    build_owner_uids,
    check_reachable,
    find_build_user,
    hand_over,
    take_back,
)
from sqlite_provision.steps.takeover import take_over

NOBODY = pwd.getpwnam("nobody")
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"), reason="root")


def nobody() -> BuildUser:
    return BuildUser("nobody", NOBODY.pw_uid, NOBODY.pw_gid, "/usr/bin/setpriv")


def test_wrap_drops_to_the_user_with_no_groups_and_no_new_privileges() -> None:
    argv = nobody().wrap(["make", "-j2"])
    assert argv == [
        "/usr/bin/setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}",
        "--clear-groups", "--no-new-privs", "--", "make", "-j2",
    ]  # fmt: skip


@ROOT_ONLY
def test_the_wrapped_command_really_runs_as_the_user() -> None:
    import subprocess

    user = find_build_user(None, 0)
    assert user is not None
    out = subprocess.run(user.wrap(["id", "-u"]), capture_output=True, text=True, check=True)
    groups = subprocess.run(user.wrap(["id", "-G"]), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(NOBODY.pw_uid)
    assert groups.stdout.split() == [str(NOBODY.pw_gid)]  # root's groups are gone


def test_not_root_builds_as_itself_and_refuses_a_build_user() -> None:
    assert find_build_user(None, 1000) is None
    with pytest.raises(UsageError) as caught:
        find_build_user("builder", 1000)
    assert caught.value.exit_code == 2 and "needs root" in str(caught.value)


def test_root_builds_as_nobody_by_default() -> None:
    user = find_build_user(None, 0)
    assert user is not None
    assert (user.name, user.uid, user.gid) == ("nobody", NOBODY.pw_uid, NOBODY.pw_gid)
    assert os.path.basename(user.setpriv) == "setpriv"


def test_a_user_that_does_not_exist_is_exit_3_with_the_fix() -> None:
    with pytest.raises(HostError) as caught:
        find_build_user("no-such-build-user", 0)
    assert caught.value.exit_code == 3
    assert "no such user" in str(caught.value)
    assert "useradd --system" in caught.value.hint


def test_root_itself_is_never_the_build_user() -> None:
    with pytest.raises(HostError) as caught:
        find_build_user("root", 0)
    assert caught.value.exit_code == 3 and "never runs as root" in str(caught.value)


def test_without_setpriv_it_is_exit_3_naming_util_linux(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no setpriv on it
    with pytest.raises(HostError) as caught:
        find_build_user(None, 0)
    assert caught.value.exit_code == 3
    assert "setpriv" in str(caught.value) and "util-linux" in caught.value.hint


def test_a_dead_runs_build_directory_may_be_the_build_users() -> None:
    assert build_owner_uids(None, 0) == [0, NOBODY.pw_uid]
    assert build_owner_uids(None, 1000) == [1000]
    assert build_owner_uids("no-such-build-user", 0) == [0]


def test_a_build_directory_behind_a_closed_directory_is_exit_3(tmp_path: Path) -> None:
    closed = tmp_path / "root-only"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    with pytest.raises(HostError) as caught:
        check_reachable(closed / "tmp" / "sqlite-provision-build-x", nobody())
    assert caught.value.exit_code == 3
    assert str(closed) in str(caught.value) and "0700" in str(caught.value)
    assert "TMPDIR=/var/tmp" in caught.value.hint
    closed.chmod(0o711)  # passable, not listable: enough
    check_reachable(closed / "tmp" / "sqlite-provision-build-x", nobody())


def test_a_directory_of_the_build_users_group_is_judged_by_its_group_bits(tmp_path: Path) -> None:
    shared = tmp_path / "group-only"
    shared.mkdir()
    if os.geteuid() == 0:
        os.chown(str(shared), 0, NOBODY.pw_gid)
        shared.chmod(0o710)
        check_reachable(shared / "build", nobody())
        shared.chmod(0o701)  # others may pass, the group may not: the group bits decide
        with pytest.raises(HostError):
            check_reachable(shared / "build", nobody())


@ROOT_ONLY
def test_hand_over_and_take_back(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "src").mkdir(parents=True)
    (build / "src" / "configure").write_text("#!/bin/sh\n")
    (build / "link").symlink_to("/etc/passwd")
    hand_over(build, nobody())
    for path in (build, build / "src", build / "src" / "configure"):
        assert path.stat().st_uid == NOBODY.pw_uid
    assert os.lstat(str(build / "link")).st_uid == NOBODY.pw_uid
    assert Path("/etc/passwd").stat().st_uid == 0  # the link was not followed
    take_back(build)
    info = build.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)


@ROOT_ONLY
def test_take_back_refuses_a_link_put_in_place_of_the_build_directory(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    (tmp_path / "build").symlink_to(target)
    with pytest.raises(OSError):
        take_back(tmp_path / "build")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


# --- take_over ------------------------------------------------------------------------------


def built_tree(base: Path) -> Path:
    top = base / "destdir" / "opt" / "sqlite" / "3.44.2"
    (top / "lib" / "pkgconfig").mkdir(parents=True)
    (top / "bin").mkdir()
    library = top / "lib" / "libsqlite3.so.0.8.6"
    library.write_bytes(b"\x7fELF library")
    library.chmod(0o6777)  # setuid, setgid, writable by all: none of it may survive
    (top / "lib" / "libsqlite3.so.0").symlink_to("libsqlite3.so.0.8.6")
    (top / "lib" / "pkgconfig" / "sqlite3.pc").write_text("Name: SQLite\n")
    (top / "lib" / "pkgconfig" / "sqlite3.pc").chmod(0o666)
    (top / "bin" / "sqlite3").write_bytes(b"\x7fELF shell")
    (top / "bin" / "sqlite3").chmod(0o775)
    return top


def test_take_over_copies_files_links_and_modes_without_write_or_setid_bits(
    tmp_path: Path,
) -> None:
    top = built_tree(tmp_path)
    target = tmp_path / "staged"
    assert take_over(tmp_path, top, target) == 3
    lib = target / "lib"
    assert (lib / "libsqlite3.so.0.8.6").read_bytes() == b"\x7fELF library"
    assert stat.S_IMODE((lib / "libsqlite3.so.0.8.6").stat().st_mode) == 0o755
    assert os.readlink(str(lib / "libsqlite3.so.0")) == "libsqlite3.so.0.8.6"
    assert stat.S_IMODE((lib / "pkgconfig" / "sqlite3.pc").stat().st_mode) == 0o644
    assert stat.S_IMODE((target / "bin" / "sqlite3").stat().st_mode) == 0o755
    for dirpath, dirnames, filenames in os.walk(str(target)):
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(dirpath, name))
            assert info.st_uid == os.geteuid()
            if not stat.S_ISLNK(info.st_mode):
                assert info.st_mode & 0o7022 == 0


@pytest.mark.parametrize("link", ["/etc/passwd", "../../../../../etc/passwd", "../../.."])
def test_take_over_refuses_a_link_out_of_the_tree(tmp_path: Path, link: str) -> None:
    top = built_tree(tmp_path)
    (top / "lib" / "escape").symlink_to(link)
    with pytest.raises(VerifyError) as caught:
        take_over(tmp_path, top, tmp_path / "staged")
    assert "outside the install" in str(caught.value)


def test_take_over_keeps_a_link_that_stays_inside(tmp_path: Path) -> None:
    top = built_tree(tmp_path)
    (top / "bin" / "libdir").symlink_to("../lib")
    take_over(tmp_path, top, tmp_path / "staged")
    assert os.readlink(str(tmp_path / "staged" / "bin" / "libdir")) == "../lib"


def test_take_over_refuses_a_fifo(tmp_path: Path) -> None:
    top = built_tree(tmp_path)
    os.mkfifo(str(top / "lib" / "pipe"))
    with pytest.raises(VerifyError) as caught:
        take_over(tmp_path, top, tmp_path / "staged")
    assert "neither a file, a directory nor a link" in str(caught.value)


def test_take_over_goes_through_no_link_on_the_way_to_the_tree(tmp_path: Path) -> None:
    """A build user who swapped a directory above the tree for a link cannot send root
    elsewhere: the tree is opened one component at a time, through no link."""
    top = built_tree(tmp_path)
    real_opt = tmp_path / "destdir" / "opt"
    real_opt.rename(tmp_path / "moved-opt")
    real_opt.symlink_to(tmp_path / "moved-opt")
    with pytest.raises(OSError):
        take_over(tmp_path, top, tmp_path / "staged")
