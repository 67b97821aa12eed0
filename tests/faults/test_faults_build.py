"""Build faults: configure and make fail, yum fails or lies, and SIGTERM/SIGINT arrive during
make (and configure). Each is exit 5 (or 130/143) with the log's last 20 lines on stderr, no
process left behind, the build dir removed (or kept, with --keep-failed, and then the only
addition), and the host unchanged.

Builds that must get through configure use 3.52.0, whose autosetup configure takes a third of
the time of 3.44.2's autoconf one; the tarballs are local (--tarball), so nothing is cached.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

import pytest

from support.clirun import injected
from support.faults import (
    PYTHON,
    FakeRhel,
    FaultHost,
    Proc,
    expect,
    full_log_path,
    kept_dirs,
    log_tail_block,
    need_root,
    processes,
    running_in,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


def tarball(shared_tarballs: Dict[str, Any], version: str) -> List[str]:
    args = ["--tarball", str(shared_tarballs[version]["path"])]
    return args + (["--allow-withdrawn"] if version == "3.52.0" else [])


def check_log_tail(stderr: str, *needles: str) -> List[str]:
    """The log's last lines are on stderr: at most 20 of them, all from the named log file."""
    block = log_tail_block(stderr)
    assert 1 <= len(block) <= 20, stderr
    log = full_log_path(stderr)
    assert log is not None and log.is_file(), stderr
    logged = log.read_text().splitlines()
    assert all(line in logged for line in block), stderr
    for needle in needles:
        assert any(needle in line for line in block), f"{needle!r} not in the tail:\n{stderr}"
    return block


# --- configure and make ----------------------------------------------------------------------


def test_configure_fails_with_a_broken_cc(host: FaultHost, shared_tarballs: Dict[str, Any]) -> None:
    with host.fault("configure fails: CC=/nonexistent") as case:
        run = host.run(*tarball(shared_tarballs, "3.52.0"), env=host.env(CC="/nonexistent"))
    expect(run, 5, "configure failed", "read the log")
    check_log_tail(run.proc.stderr, "/nonexistent")
    assert run.data["exit_code"] == 5
    assert run.step("configure")["status"] == "failed"
    assert case.changes == {}, case.describe()


def test_configure_fails_with_a_bad_cflags(
    host: FaultHost, shared_tarballs: Dict[str, Any]
) -> None:
    """CFLAGS='-DTRIGGER_ERROR -include /nonexistent.h' breaks every compile, configure's own
    compiler test first: it fails there (C compiler cannot create executables), not in make."""
    env = host.env(CFLAGS="-O0 -DTRIGGER_ERROR -include /nonexistent.h")
    with host.fault("configure fails: CFLAGS -include /nonexistent.h") as case:
        run = host.run(*tarball(shared_tarballs, "3.44.2"), env=env)
    expect(run, 5, "configure failed", "CFLAGS")
    check_log_tail(run.proc.stderr, "C compiler cannot create executables")
    assert case.changes == {}, case.describe()


def test_configure_fails_with_keep_failed_keeps_only_the_build_dir(
    host: FaultHost, shared_tarballs: Dict[str, Any]
) -> None:
    env = host.env(CC="/nonexistent")
    with host.fault("configure fails, --keep-failed") as case:
        run = host.run(*tarball(shared_tarballs, "3.52.0"), "--keep-failed", env=env)
        case.kept = kept_dirs(run.proc.stderr)
    expect(run, 5, "configure failed", "--keep-failed: kept")
    assert len(case.kept) == 1 and case.kept[0].parent == host.tmp, run.proc.stderr
    assert (case.kept[0] / "sqlite-autoconf-3520000" / "configure").is_file()
    assert [p.name for p in host.tmp.iterdir()] == [case.kept[0].name]
    assert case.changes == {}, case.describe()


def test_make_fails(host: FaultHost, shared_tarballs: Dict[str, Any]) -> None:
    """A CFLAGS that configure's test programs survive and sqlite3.c does not: SQLITE_API is
    the storage-class macro in front of every public definition of the amalgamation."""
    env = host.env(CFLAGS="-O0 -DSQLITE_API=TRIGGER_ERROR -Wfatal-errors")
    with host.fault("make fails: CFLAGS -DSQLITE_API=TRIGGER_ERROR") as case:
        run = host.run(*tarball(shared_tarballs, "3.52.0"), env=env)
    expect(run, 5, "make failed", "bad CFLAGS")
    check_log_tail(run.proc.stderr, "error:", "make: ***")
    assert run.step("configure")["status"] == "ok"
    assert run.step("make")["status"] == "failed"
    assert run.data["exit_code"] == 5
    assert case.changes == {}, case.describe()


# --- yum ---------------------------------------------------------------------------------------


def test_yum_fails(host: FaultHost, shared_tarballs: Dict[str, Any], tmp_path: Path) -> None:
    need_root()  # only root may run yum
    rhel = FakeRhel(tmp_path / "rhel", "echo 'Error: Unable to find a match: gcc make'\nexit 1")
    with host.fault("yum fails (exit 1)") as case:
        run = host.run(*tarball(shared_tarballs, "3.44.2"), env=rhel.env(host))
    expect(run, 5, "yum failed with exit status 1", "yum install -y gcc make", "repositories")
    check_log_tail(run.proc.stderr, "Unable to find a match")
    assert rhel.yum_calls() == ["install -y gcc make"]
    assert run.step("install-compiler")["status"] == "failed"
    assert case.changes == {}, case.describe()


def test_yum_succeeds_but_gcc_is_still_missing(
    host: FaultHost, shared_tarballs: Dict[str, Any], tmp_path: Path
) -> None:
    need_root()
    rhel = FakeRhel(tmp_path / "rhel", "echo 'Complete!'\nexit 0")
    with host.fault("yum succeeds, gcc still missing") as case:
        run = host.run(*tarball(shared_tarballs, "3.44.2"), env=rhel.env(host))
    expect(run, 5, "reported success but gcc and make", "still missing", "AppStream")
    assert rhel.yum_calls() == ["install -y gcc make"]
    assert case.changes == {}, case.describe()


# --- signals during make -----------------------------------------------------------------------


def path_without(directory: Path, *patterns: str) -> Path:
    """A directory of links to every program of /usr/bin and /bin but those named."""
    directory.mkdir()
    for system in ("/usr/bin", "/bin"):
        for name in sorted(os.listdir(system)):
            link = directory / name
            if not link.exists() and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                link.symlink_to(os.path.join(system, name))
    return directory


def wait_for(what: str, probe: Callable[[], Optional[T]], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


SIGNAL_CASES = [
    ("make", signal.SIGINT, 130),
    ("make", signal.SIGTERM, 143),
    ("configure", signal.SIGTERM, 143),  # configure's own test compiles, in TMPDIR
    # No tclsh (RHEL minimal): `configure --help`, the tool's probe of the options, first
    # compiles autosetup's jimsh0 for about a second.
    ("configure --help", signal.SIGINT, 130),
]


def default_sigint() -> None:
    """SIGINT as a terminal's Ctrl-C finds it, even when this test runs in a background job
    (which starts with SIGINT ignored, and would pass that on)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "phase, signum, code",
    SIGNAL_CASES,
    ids=[f"{signal.Signals(s).name}-during-{phase}" for phase, s, _ in SIGNAL_CASES],
)
def test_signal_leaves_no_orphan_and_no_trace(
    host: FaultHost,
    shared_tarballs: Dict[str, Any],
    tmp_path: Path,
    phase: str,
    signum: int,
    code: int,
) -> None:
    """The signal goes to the tool alone (make runs in its own process group, as a terminal's
    Ctrl-C or systemd's stop would reach it): the tool stops the whole group, rolls back and
    exits 128+N; no compiler survives, and no file is left in TMPDIR."""
    name = signal.Signals(signum).name
    args = host.args(*tarball(shared_tarballs, "3.52.0"))
    env = host.env()
    if phase == "configure --help":
        env["PATH"] = str(path_without(tmp_path / "bin", "tclsh*", "jimsh*"))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with host.fault(f"{name} during {phase}") as case:
        with out.open("w") as stdout, err.open("w") as stderr:
            # In a session of its own, as under systemd or cloud-init: its process group is
            # its own, and whatever is left in it afterwards is an orphan.
            tool = subprocess.Popen(
                injected([PYTHON, "-m", "sqlite_provision", *args], env),
                env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                start_new_session=True, preexec_fn=default_sigint,
            )  # fmt: skip
            try:

                def busy() -> List[Proc]:
                    found = running_in(host.tmp)
                    make = [p for p in found if p.ppid == tool.pid and "make" in p.cmdline]
                    cc1 = [p for p in found if "cc1" in p.cmdline]
                    if phase == "make":  # make, and a compiler under it on sqlite3.c
                        cc1 = [p for p in cc1 if "sqlite3.c" in p.cmdline]
                        return make + cc1 if make and cc1 else []
                    if phase == "configure --help":
                        return [p for p in cc1 if "jimsh0.c" in p.cmdline]
                    return cc1 if not make else []  # a test compile of configure's

                build = wait_for(f"a compiler in the build dir during {phase}", busy, 120)
                build = running_in(host.tmp)
                groups = {p.pgid for p in build} | {tool.pid}
                os.kill(tool.pid, signum)
                returncode = tool.wait(timeout=60)
            finally:
                if tool.poll() is None:
                    tool.kill()
                    tool.wait()
        orphans = running_in(host.tmp) + [p for p in processes() if p.pgid in groups]
    stderr_text = err.read_text()
    assert returncode == code, stderr_text
    assert orphans == [], orphans
    assert f"interrupted by {name}" in stderr_text
    assert "the host was left as before the run" in stderr_text
    assert "fix:" in stderr_text, stderr_text
    assert list(host.tmp.iterdir()) == []
    assert case.changes == {}, case.describe()


# --- the build user --------------------------------------------------------------------------


def test_a_tarball_the_build_user_cannot_read_is_read_by_root(
    host: FaultHost, shared_tarballs: Dict[str, Any]
) -> None:
    """Root reads the verified tarball into the build directory; the build user never opens
    it. A tarball in a directory only root may enter (/root/downloads) still builds, and the
    build still runs as the build user."""
    need_root()
    private = host.root / "root-only"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    copy = private / "sqlite-autoconf-3520000.tar.gz"
    shutil.copyfile(str(shared_tarballs["3.52.0"]["path"]), str(copy))
    copy.chmod(0o600)
    nobody = pwd.getpwnam("nobody")
    assert subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                           "--clear-groups", "--", "cat", str(copy)],
                          capture_output=True).returncode != 0  # fmt: skip
    run = host.run("--tarball", str(copy), "--allow-withdrawn")
    expect(run, 0, fix=False)
    assert run.data["version"] == "3.52.0"
    logged = Path(run.data["log_file"]).read_text()
    assert f"setpriv --reuid={nobody.pw_uid} --regid={nobody.pw_gid}" in logged


def test_a_tmpdir_the_build_user_cannot_reach_is_exit_3_before_anything(
    host: FaultHost, shared_tarballs: Dict[str, Any]
) -> None:
    """TMPDIR=/root/tmp: the build user could not enter the build directory. Said before any
    download or change, with the fix (another TMPDIR)."""
    need_root()
    closed = host.root / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    (closed / "tmp").mkdir()
    with host.fault("TMPDIR the build user cannot reach") as case:
        run = host.run(
            *tarball(shared_tarballs, "3.44.2"), env=host.env(TMPDIR=str(closed / "tmp"))
        )
    expect(run, 3, "the build runs as nobody", str(closed), "TMPDIR=/var/tmp")
    assert "steps" not in run.data, run.data  # refused before the first step
    assert list((closed / "tmp").iterdir()) == []
    assert case.changes == {}, case.describe()


def test_a_build_user_that_does_not_exist_is_exit_3(
    host: FaultHost, shared_tarballs: Dict[str, Any]
) -> None:
    need_root()
    with host.fault("--build-user that does not exist") as case:
        run = host.run(*tarball(shared_tarballs, "3.44.2"), "--build-user", "no-such-builder")
    expect(run, 3, "cannot build as no-such-builder", "no such user", "useradd")
    assert list(host.tmp.iterdir()) == []
    assert case.changes == {}, case.describe()
