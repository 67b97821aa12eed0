"""Host faults: verification fails after activation, a second concurrent run, not root, a
read-only prefix parent, a noexec TMPDIR, a full TMPDIR, and a failing restorecon where SELinux is
enabled.

Verification and the lock need an installed host: they use the seed's install (a copy of it
where the case changes the host's files as its setup), so no case here builds anything.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from support.clirun import injected, run_cli
from support.faults import (
    PYTHON,
    Case,
    FaultHost,
    Seed,
    expect,
    read_only,
    serve_release,
    tmpfs,
    unprivileged_command,
    world_dir,
)
from support.mirror import Mirror
from support.selinux_host import FAILING_RESTORECON, SELinuxHost

pytestmark = pytest.mark.integration


def test_verification_fails_and_restores_the_previous_snippet(seed: Seed, tmp_path: Path) -> None:
    """A verify python that drops LD_LIBRARY_PATH still loads the system library: exit 6, and
    the snippet that was there before (an older, hand-edited one, mode 0640, group nogroup) comes
    back exactly: bytes, mode and owner."""
    host = seed.copy(tmp_path / "host")
    previous = b"# an older snippet, edited by hand\nexport LD_LIBRARY_PATH=/opt/old/lib\n"
    host.profile.write_bytes(previous)
    host.profile.chmod(0o640)
    owner = (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        owner = (0, 65534)  # root:nogroup, not the root:root a new file would get
        os.chown(str(host.profile), *owner)
    wrapper = tmp_path / "python-without-ld-library-path"
    wrapper.write_text(f'#!/bin/sh\nunset LD_LIBRARY_PATH\nexec "{PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    with host.fault("verification fails (python ignores the snippet)") as case:
        run = host.run(
            "--version", "3.44.2", "--mirror", seed.mirror.url, "--systemd-unit", "myapp",
            python=str(wrapper),
        )  # fmt: skip
    expect(run, 6, "verification failed", "expected 3.44.2", "Who sees the new library")
    assert run.step("profile")["status"] == "ok"  # it was replaced, then restored
    assert run.step("verify")["status"] == "failed"
    assert host.profile.read_bytes() == previous
    info = host.profile.stat()
    assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o640, *owner)
    assert os.readlink(str(host.current)) == "3.44.2"
    assert case.changes == {}, case.describe()


def test_second_concurrent_run_gives_up_on_the_lock(seed: Seed, tmp_path: Path) -> None:
    """The first run is an idempotent re-run whose verify probe is slow (it holds the lock for
    ~3 s); the second, with --lock-timeout 1, exits 3 naming the first one's pid."""
    host = seed.host
    slow = tmp_path / "slow-python"
    slow.write_text(
        f'#!/bin/sh\n[ -n "$LD_LIBRARY_PATH" ] && sleep 3\nexec "{PYTHON}" "$@"\n'
    )  # only the verify probe runs under the snippet's LD_LIBRARY_PATH
    slow.chmod(0o755)
    args = ["--version", "3.44.2", "--mirror", seed.mirror.url, "--systemd-unit", "myapp"]
    with host.fault("second run while the lock is held") as case:
        first = subprocess.Popen(
            injected([PYTHON, "-m", "sqlite_provision", *host.args(*args, python=str(slow))],
                     host.env()),
            env=host.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if host.lock.exists() and host.lock.read_text().strip() == str(first.pid):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the first run never took the lock")
            second = host.run(*args, "--lock-timeout", "1")
        finally:
            _, err = first.communicate(timeout=120)
    expect(second, 3, f"pid {first.pid}", str(host.lock), "--lock-timeout")
    assert first.returncode == 0, err
    assert case.changes == {}, case.describe()


def test_a_failing_restorecon_leaves_the_host_unchanged(seed: Seed, tmp_path: Path) -> None:
    """On a look-alike where SELinux is enabled (support/selinux_host.py), the installed host
    gains a second unit: its drop-in (and its directory) is written, then `restorecon -F` on it
    fails: exit 5 naming restorecon, and the drop-in and its directory are gone again."""
    host = seed.copy(tmp_path / "host")
    selinux = SELinuxHost(tmp_path / "selinux")
    selinux.put_tool("restorecon", FAILING_RESTORECON)
    env = selinux.env(host.env())
    command = selinux.command(injected([PYTHON, "-m", "sqlite_provision"], env))
    args = ["--version", "3.44.2", "--mirror", seed.mirror.url, "--systemd-unit", "myapp",
            "--systemd-unit", "second"]  # fmt: skip
    with host.fault("restorecon fails on an activation file (SELinux enabled)") as case:
        run = run_cli(host.args(*args), env, command=command, as_shipped=True)
    expect(run, 5, "restorecon failed", str(host.systemd / "second.service.d"))
    assert run.step("relabel")["status"] == "skipped"  # the version was installed already
    assert not (host.systemd / "second.service.d").exists()
    assert case.changes == {}, case.describe()


@pytest.mark.parametrize("version", ["3.44.2", "latest"])
def test_not_root_with_a_system_prefix_exits_before_any_download(
    mirror: Mirror, shared_tarballs: Dict[str, Any], version: str
) -> None:
    """As `nobody`, with the default /opt/sqlite and /etc/profile.d: exit 3 before any HTTP
    request (`latest` would read the download page first: it must not)."""
    serve_release(mirror, shared_tarballs)
    base = world_dir("sqlite-provision-nobody-")
    try:
        command, python, extra_env = unprivileged_command(base / "python")
        nobody = pwd.getpwnam("nobody")
        state = base / "state"
        state.mkdir()
        os.chown(str(state), nobody.pw_uid, nobody.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(state),
            "LANG": "C.UTF-8",
            "SQLITE_PROVISION_CACHE_DIR": str(state / "cache"),
            "SQLITE_PROVISION_LOG_DIR": str(state / "log"),
            "SQLITE_PROVISION_LOCK_FILE": str(state / "lock"),
            "TMPDIR": str(state),
            **extra_env,
        }
        watched = [
            Path("/opt/sqlite"),
            Path("/etc/profile.d/sqlite-provision.sh"),
            Path("/etc/profile.d/sqlite-provision.csh"),
            state / "cache",
        ]
        with Case(
            f"not root, system prefix (--version {version})", watched, state / "cache"
        ) as case:
            run = run_cli(
                ["install", "--version", version, "--mirror", mirror.url, "--python", python,
                 "--json"],
                env, command=command, timeout=120,
            )  # fmt: skip
    finally:
        shutil.rmtree(str(base), ignore_errors=True)
    expect(run, 3, "you are not root", "/opt/sqlite", "run as root")
    assert mirror.requests == []
    assert case.changes == {}, case.describe()


def test_read_only_prefix_parent(host: FaultHost, shared_tarballs: Dict[str, Any]) -> None:
    parent = host.prefix_root.parent
    with read_only(parent):
        with host.fault("read-only prefix parent") as case:
            run = host.run("--tarball", str(shared_tarballs["3.44.2"]["path"]))
    expect(run, 3, "read-only", str(parent), "--prefix-root")
    assert run.data["exit_code"] == 3
    assert case.changes == {}, case.describe()


def test_noexec_tmpdir(host: FaultHost, shared_tarballs: Dict[str, Any]) -> None:
    with tmpfs(host.tmp, "16m", "noexec"):
        with host.fault("noexec TMPDIR") as case:
            run = host.run("--tarball", str(shared_tarballs["3.44.2"]["path"]))
        assert list(host.tmp.iterdir()) == []
    expect(run, 3, "cannot run programs", str(host.tmp), "noexec", "TMPDIR=/var/tmp")
    assert case.changes == {}, case.describe()


def test_full_tmpdir(host: FaultHost, shared_tarballs: Dict[str, Any]) -> None:
    """TMPDIR on a 2 MB tmpfs: the unpacked tree does not fit. Exit 3 (a host precondition:
    the README's table has no row for a full disk; unforeseen filesystem errors are 3), the
    build dir removed, the tmpfs empty again."""
    with tmpfs(host.tmp, "2m"):
        with host.fault("full disk under TMPDIR") as case:
            run = host.run("--tarball", str(shared_tarballs["3.44.2"]["path"]))
        assert list(host.tmp.iterdir()) == []
    expect(run, 3, "No space left on device", str(host.tmp), "df -h")
    assert run.step("extract")["status"] == "failed"
    assert case.changes == {}, case.describe()
