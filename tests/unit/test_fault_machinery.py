"""Layer 2: the fault matrix's own machinery must be able to fail. need_root() fails under CI
rather than skip; the host snapshot sees an owner, a group, an xattr and a changed byte; a
run that wrote into the real default paths is seen; the allowed additions are only those."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import faults
from support.faults import REAL_DEFAULTS, FaultHost, unexpected_changes
from support.snapshot import diff, snapshot


def test_need_root_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("CI", "true")
    # Caught as anything, so that a skip where a failure is due fails this test, not skips it.
    with pytest.raises(BaseException) as under_ci:
        faults.need_root()
    assert under_ci.type is pytest.fail.Exception, under_ci.type
    assert "must not skip" in str(under_ci.value)
    monkeypatch.delenv("CI")
    with pytest.raises(BaseException) as elsewhere:
        faults.need_root()
    assert elsewhere.type is pytest.skip.Exception, elsewhere.type


def test_the_snapshot_sees_owner_group_mode_xattr_and_content(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("a")
    before = snapshot([tmp_path])
    target.chmod(0o600)
    assert diff(before, snapshot([tmp_path]))
    target.chmod(before[str(target)][1])
    assert diff(before, snapshot([tmp_path])) == {}
    try:
        os.setxattr(str(target), "user.sqlite-provision-test", b"1")
    except OSError:
        pytest.fail("this filesystem keeps no user xattrs; the snapshot check needs one")
    assert diff(before, snapshot([tmp_path]))
    os.removexattr(str(target), "user.sqlite-provision-test")
    assert diff(before, snapshot([tmp_path])) == {}
    if os.geteuid() == 0:
        os.chown(str(target), 0, 65534)
        assert diff(before, snapshot([tmp_path]))
        os.chown(str(target), 65534, 0)
        assert diff(before, snapshot([tmp_path]))


def test_every_case_watches_the_real_defaults_run_logs_home_and_the_prefix_parent(
    tmp_path: Path,
) -> None:
    host = FaultHost(tmp_path / "host")
    watched = host.watched()
    for path in (
        Path("/etc/profile.d"), Path("/etc/systemd/system"), Path("/etc/ld.so.conf.d"),
        Path("/opt/sqlite"), Path("/var/cache/sqlite-provision"),
        host.prefix_root.parent, host.lock.parent, host.log, host.home,
    ):  # fmt: skip
        assert path in watched, path
    assert set(REAL_DEFAULTS) <= set(watched)
    assert host.env()["HOME"] == str(host.home)


def test_only_a_log_file_the_lock_and_verified_downloads_are_allowed(tmp_path: Path) -> None:
    host = FaultHost(tmp_path / "host")
    before = snapshot(host.watched())
    host.log.mkdir(parents=True)
    (host.log / "install-1.log").write_text("log\n")
    host.lock.write_text("123\n")

    def left() -> dict:  # type: ignore[type-arg]
        after = snapshot(host.watched())
        return unexpected_changes(before, after, host.cache, logs=host.log, lock=host.lock)

    assert left() == {}
    (host.home / ".cache").mkdir()  # a run that wrote into HOME
    assert str(host.home / ".cache") in left()
    (host.home / ".cache").rmdir()
    (host.profile_dir / "other-package.sh").write_text("changed\n")
    assert str(host.profile_dir / "other-package.sh") in left()
