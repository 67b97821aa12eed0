"""Layer 6: the pseudo-RHEL tier. The real CLI, as the single file sqlite-provision.pyz (built by
the session with scripts/build-pyz) run by CPython 3.6 (pyenv's 3.6.15, RHEL 7/8's python3, with
none of the tool's dependencies installed), runs as root in a throw-away RHEL 9 look-alike of
this machine (an overlay of / in a private mount namespace, entered with chroot; see
tests/support/rhel_root.py): no gcc or make, `yum` is the real dnf with a local repository of
test-double RPMs. The pyz is bind-mounted read-only into the root; the interpreter is seen
there at its own path through the overlay.

The mirror is the session's loopback mirror: the network namespace is shared with the test
process on purpose, so 127.0.0.1 inside the root is the mirror's address. Runs as root only;
without root or the tools (rpm, dnf, createrepo-c, util-linux) it skips, and fails under CI=true.
"""

# Optional/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional

import pytest

from support import rhel_root, unavailable
from support.interpreters import interpreter
from support.mirror import Mirror
from support.rhel_root import (
    INNER_PYTHON,
    WHEELS_MOUNT,
    PseudoRhelRoot,
    build_rpms,
    host_problems,
    make_repo,
    sha256_of,
)

pytestmark = pytest.mark.rhel

VERSION = "3.44.2"
PREFIX = "/opt/sqlite/" + VERSION
CURRENT = "/opt/sqlite/current"
SNIPPETS = ("/etc/profile.d/sqlite-provision.sh", "/etc/profile.d/sqlite-provision.csh")
COMPILER_TOOLS = ("gcc", "cc", "c99", "cpp", "make", "tclsh")
PROBE = "import sqlite3; print(sqlite3.sqlite_version)"

# What the tier must leave exactly as it was on the host.
HOST_WATCHED = (
    "/usr/bin/gcc",
    "/usr/bin/make",
    "/etc/os-release",
    "/usr/bin/yum",
    "/usr/hidden",
    "/etc/yum.repos.d",
    "/etc/rpm",
    "/opt/sqlite",
    "/var/lib/rpm",
    *SNIPPETS,
)

RootFactory = Callable[..., ContextManager[PseudoRhelRoot]]


def host_state() -> Dict[str, Optional[str]]:
    """path -> a fingerprint (rhel_root.fingerprint: content hashes, modes and link texts, of a
    directory's whole tree too), None if absent."""
    return rhel_root.host_state(HOST_WATCHED)


@pytest.fixture(scope="session")
def rhel_repos(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Two dnf repositories of test doubles: "full" (gcc, make, redhat-release, rpm) and
    "no-gcc" (the same without gcc). Built once per session."""
    problems = host_problems()
    if problems:
        unavailable("pseudo-RHEL tier: " + "; ".join(problems))
    base = tmp_path_factory.mktemp("pseudo-rhel-rpms")
    started = time.monotonic()
    rpms = build_rpms(base / "rpmbuild")
    repos = {
        "full": make_repo(base / "repo-full", rpms),
        "no-gcc": make_repo(base / "repo-no-gcc", rpms, leave_out=["gcc"]),
    }
    print(f"pseudo-RHEL RPMs and repos: {time.monotonic() - started:.1f}s")
    return repos


PYZ_IN_ROOT = WHEELS_MOUNT + "/sqlite-provision.pyz"  # the root's read-only tool mount


@pytest.fixture(scope="session")
def python36() -> str:
    """RHEL 7/8's python3: pyenv's CPython 3.6, which the tool runs on in the root."""
    found = interpreter("3.6")
    if found is None:
        unavailable("no CPython 3.6 under pyenv for the pseudo-RHEL tier")
    return str(found)


@pytest.fixture(scope="session")
def rhel_wheels(
    rhel_repos: Dict[str, Path], pyz: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """What is mounted read-only at /srv/pseudo-rhel/wheels in the root: the session's pyz."""
    tools = tmp_path_factory.mktemp("pseudo-rhel-tools")
    shutil.copyfile(str(pyz), str(tools / "sqlite-provision.pyz"))
    return tools


@pytest.fixture
def pseudo_rhel(
    rhel_repos: Dict[str, Path], rhel_wheels: Path, python36: str, tmp_path: Path
) -> Iterator[RootFactory]:
    """pseudo_rhel(repo="full"|"no-gcc") -> a context manager giving a fresh root with the tool
    installed. On leaving it, the root is thrown away and the host is checked unchanged."""

    TOOL_PYTHON[:] = [python36]

    @contextlib.contextmanager
    def make(repo: str = "full") -> Iterator[PseudoRhelRoot]:
        before = host_state()
        with PseudoRhelRoot(tmp_path / f"ns-{repo}", rhel_repos[repo], rhel_wheels) as root:
            yield root
        assert host_state() == before, "the pseudo-RHEL root changed the host"

    yield make


TOOL_PYTHON: List[str] = []  # [python36], set by the pseudo_rhel fixture


def cli(root: PseudoRhelRoot, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The pyz on CPython 3.6, as root in the root, at CFLAGS=-O0, with default cache, log,
    prefix and profile paths (all inside the root)."""
    return root.run([*TOOL_PYTHON, PYZ_IN_ROOT, *args], env={"CFLAGS": "-O0"}, timeout=timeout)


def tool_runs_on_python36(root: PseudoRhelRoot) -> str:
    """The tool in the root is the pyz on 3.6, with nothing of its dependencies installed for
    that python: what `--version` says, checked."""
    python = TOOL_PYTHON[0]
    assert root.check([python, "-c", "import sys; print(sys.version_info[:2])"]).strip() == "(3, 6)"
    missing = root.run([python, "-c", "import click"])
    assert missing.returncode != 0, "click is installed for 3.6: the pyz would not be tested"
    version = root.check([python, PYZ_IN_ROOT, "--version"]).strip()
    assert version.startswith("sqlite-provision "), version
    return version


def install_args(mirror: Mirror, *extra: str) -> List[str]:
    return ["install", "--version", VERSION, "--mirror", mirror.url, "--json", *extra]


def result(proc: subprocess.CompletedProcess[str]) -> Dict[str, Any]:
    try:
        return dict(json.loads(proc.stdout))
    except ValueError:
        pytest.fail(describe(proc))


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def step(data: Dict[str, Any], name: str) -> Dict[str, Any]:
    for found in data["steps"]:
        if found["name"] == name:
            return dict(found)
    pytest.fail(f"no step {name!r} in {json.dumps(data, indent=2)}")


def found_tools(root: PseudoRhelRoot) -> List[str]:
    script = 'for t in "$@"; do command -v "$t" || true; done'
    return root.check(["sh", "-c", script, "sh", *COMPILER_TOOLS]).split()


def test_install_on_pseudo_rhel_runs_yum_builds_activates_and_is_idempotent(
    pseudo_rhel: RootFactory, sqlite_mirror: Mirror
) -> None:
    timings: Dict[str, float] = {}
    started = time.monotonic()
    with pseudo_rhel("full") as root:
        timings["root"] = time.monotonic() - started

        # A RHEL 9 host with no compiler, no make, no tclsh; its own SQLite is older.
        os_release = root.read_text("/etc/os-release")
        assert 'ID="rhel"' in os_release and 'VERSION_ID="9.4"' in os_release
        assert root.check(["rpm", "-qf", "/etc/os-release"]).startswith("redhat-release-9.4")
        assert found_tools(root) == []
        assert root.run(["rpm", "-q", "gcc"]).returncode == 1
        system_version = root.check([INNER_PYTHON, "-c", PROBE]).strip()
        assert system_version != VERSION

        print("pseudo-RHEL tool: " + tool_runs_on_python36(root))

        # --dry-run shows the yum command, and changes nothing.
        plan = cli(root, *install_args(sqlite_mirror, "--dry-run"))
        assert plan.returncode == 0, describe(plan)
        assert step(result(plan), "install-compiler")["commands"] == ["yum install -y gcc make"]
        assert not root.exists("/opt/sqlite") and found_tools(root) == []

        # The real run: yum installs gcc and make, then build, install, activate, verify.
        mark = time.monotonic()
        first = cli(root, *install_args(sqlite_mirror))
        timings["first install"] = time.monotonic() - mark
        data = result(first)
        assert first.returncode == 0, describe(first)
        assert data["ok"] is True and data["changed"] is True
        assert data["version"] == VERSION and data["prefix"] == PREFIX
        for name in (
            "install-compiler",
            "configure",
            "make",
            "stage",
            "install",
            "smoke-test",
            "verify",
        ):
            assert step(data, name)["status"] == "ok", (name, describe(first))
        log = root.read_text(data["log_file"])
        assert "yum install -y gcc make" in log
        assert "gcc-11.4.1-3.el9" in log  # dnf's own transaction output
        assert root.check(["rpm", "-q", "gcc"]).startswith("gcc-11.4.1-3.el9")
        assert root.check(["rpm", "-q", "make"]).startswith("make-4.3-8.el9")
        assert "/usr/bin/gcc" in found_tools(root)
        [verified] = data["verified"]
        assert verified["ok"] is True and verified["sqlite_version"] == VERSION
        assert verified["library"].startswith(PREFIX + "/lib/")
        assert root.exists(SNIPPETS[0])
        assert root.check(["readlink", CURRENT]).strip() == VERSION

        # verify, on its own.
        check = cli(root, "verify", "--json")
        assert check.returncode == 0, describe(check)
        assert result(check)["ok"] is True

        # A login shell reads /etc/profile.d and its python loads the new library; a plain
        # process does not.
        login = root.check(["bash", "-l", "-c", f'echo "$LD_LIBRARY_PATH"; python3 -c "{PROBE}"'])
        ld_path, version = login.strip().splitlines()[-2:]
        assert CURRENT + "/lib" in ld_path.split(":")
        assert version == VERSION
        assert root.check([INNER_PYTHON, "-c", PROBE]).strip() == system_version

        # A second run changes nothing.
        mark = time.monotonic()
        second = cli(root, *install_args(sqlite_mirror))
        timings["second install"] = time.monotonic() - mark
        again = result(second)
        assert second.returncode == 0, describe(second)
        assert again["changed"] is False
        assert step(again, "install-compiler")["status"] == "skipped"
    timings["total"] = time.monotonic() - started
    print("pseudo-RHEL install: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def test_gcc_missing_from_the_repo_exits_5_with_dnfs_message_and_leaves_nothing(
    pseudo_rhel: RootFactory, sqlite_mirror: Mirror
) -> None:
    with pseudo_rhel("no-gcc") as root:
        tool_runs_on_python36(root)
        assert found_tools(root) == []

        run = cli(root, *install_args(sqlite_mirror))

        assert run.returncode == 5, describe(run)
        data = result(run)
        assert data["ok"] is False and data["exit_code"] == 5
        assert step(data, "install-compiler")["status"] == "failed"
        # dnf's own words reach the user: in the error/log tail on stderr and in the JSON.
        assert "No match for argument: gcc" in run.stderr
        assert "gcc" in json.dumps(data["error"])
        for path in (PREFIX, CURRENT, "/opt/sqlite", *SNIPPETS):
            assert not root.exists(path), path
        assert root.run(["rpm", "-q", "make"]).returncode == 1  # dnf installed nothing
        assert found_tools(root) == []


def test_host_state_sees_a_changed_byte_mode_or_link_inside_a_directory(tmp_path: Path) -> None:
    """The host check compares what is inside the watched directories (the rpm database, the
    repository files), not only their names: a byte, a mode or a link target changed deep
    inside shows; the same tree copied elsewhere (modes kept) compares equal."""
    original = tmp_path / "original"
    (original / "var" / "lib" / "rpm").mkdir(parents=True)
    (original / "etc" / "yum.repos.d").mkdir(parents=True)
    (original / "var" / "lib" / "rpm" / "rpmdb.sqlite").write_bytes(b"SQLite format 3\0" * 64)
    (original / "etc" / "yum.repos.d" / "local.repo").write_text("[local]\nenabled=1\n")
    (original / "etc" / "yum.repos.d" / "local.repo").chmod(0o644)
    (original / "etc" / "yum.repos.d" / "alias.repo").symlink_to("local.repo")
    copy = tmp_path / "copy"
    shutil.copytree(str(original), str(copy), symlinks=True)
    watched = ["var/lib/rpm", "etc/yum.repos.d"]

    def state(root: Path) -> List[Optional[str]]:
        return list(rhel_root.host_state([str(root / w) for w in watched]).values())

    assert state(copy) == state(original)
    database = copy / "var" / "lib" / "rpm" / "rpmdb.sqlite"
    data = bytearray(database.read_bytes())
    data[100] ^= 0x01  # one byte, same size, same names
    database.write_bytes(bytes(data))
    assert state(copy)[0] != state(original)[0]
    assert state(copy)[1] == state(original)[1]
    data[100] ^= 0x01
    database.write_bytes(bytes(data))
    assert state(copy) == state(original)
    (copy / "etc" / "yum.repos.d" / "local.repo").chmod(0o600)
    assert state(copy)[1] != state(original)[1]
    (copy / "etc" / "yum.repos.d" / "local.repo").chmod(0o644)
    (copy / "etc" / "yum.repos.d" / "alias.repo").unlink()
    (copy / "etc" / "yum.repos.d" / "alias.repo").symlink_to("elsewhere.repo")
    assert state(copy)[1] != state(original)[1]
    assert rhel_root.host_state([str(tmp_path / "absent")]) == {str(tmp_path / "absent"): None}


def test_host_fingerprint_sees_changes(tmp_path: Path) -> None:
    """The fingerprint used above changes with content and with link text."""
    target = tmp_path / "f"
    target.write_bytes(b"a")
    link = tmp_path / "l"
    link.symlink_to("f")
    first = sha256_of(str(link))
    target.write_bytes(b"b")
    assert sha256_of(str(link)) != first
    assert sha256_of(str(target)).endswith(hashlib.sha256(b"b").hexdigest())
