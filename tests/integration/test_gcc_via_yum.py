"""Integration: gcc and make missing on a RHEL 9 host, installed by yum, then a real build.

The OS is a fake root with RHEL 9's os-release (SQLITE_PROVISION_TEST_OS_ROOT, given to the
tool by the tests' launcher support/launch.py). The compiler is
hidden by PATH: a directory that mirrors every entry of /usr/bin, /usr/sbin, /bin and /sbin as
links, minus the compiler family (a hand-picked PATH breaks configure in odd ways). A fake
`yum`, first on PATH, records its argv and "installs" gcc, cc and make by linking the real ones
into that directory.
"""

# Optional/List rather than `X | None`: the tool and its tests run on Python 3.7.

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest

from support.clirun import PYTHON, run_cli
from support.mirror import Mirror
from support.rhel import RHEL9_OS_RELEASE, mirror_system_path

pytestmark = pytest.mark.integration

# The compiler family, as the pseudo-RHEL recipe removes it (plus their versioned aliases).
# The Debian host's own package tools: on the fake RHEL the fake yum is the only one, since the
# tool's smoke test would run this Debian rpm as RHEL's (`rpm -q rpm` fails on an empty rpmdb).
DEBIAN_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
"""


class Host:
    """A fake OS root, a PATH without a compiler, and a slot for a fake yum."""

    def __init__(self, base: Path, os_release: str) -> None:
        self.base = base
        self.os_root = base / "osroot"
        (self.os_root / "etc").mkdir(parents=True)
        (self.os_root / "etc" / "os-release").write_text(os_release)
        self.tools = base / "bin"  # the mirrored system directories
        mirror_system_path(self.tools)
        self.yum_dir = base / "yum-bin"
        self.yum_dir.mkdir()
        self.record = base / "yum-calls.txt"
        self.prefix = base / "prefix"
        self.profile = base / "p.sh"
        self.state = base / "state"

    @property
    def path(self) -> str:
        return f"{self.yum_dir}{os.pathsep}{self.tools}"

    def fake_yum(self, body: str) -> None:
        """A yum that appends its argv, one [arg] per argument, to the record, then runs body.

        `yum --version` (the tool's smoke test after the install) is recorded and answered."""
        script = self.yum_dir / "yum"
        script.write_text(
            "#!/bin/sh\n"
            f"printf '[%s]' \"$@\" >> '{self.record}'\n"
            f"echo >> '{self.record}'\n"
            'if [ "$*" = --version ]; then echo 4.14.0; exit 0; fi\n' + body + "\n"
        )
        script.chmod(0o755)

    def yum_calls(self) -> List[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []

    def yum_changes(self) -> List[str]:
        """The calls that could change the host: all but `yum --version`."""
        return [call for call in self.yum_calls() if call != "[--version]"]

    def env(self) -> Dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SQLITE_PROVISION_") and k not in ("LD_LIBRARY_PATH", "CC")
        }
        env.update(
            PATH=self.path,
            SQLITE_PROVISION_TEST_OS_ROOT=str(self.os_root),
            SQLITE_PROVISION_CACHE_DIR=str(self.state / "cache"),
            SQLITE_PROVISION_LOG_DIR=str(self.state / "log"),
            SQLITE_PROVISION_LOCK_FILE=str(self.state / "lock"),
            CFLAGS="-O0",
        )
        return env

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return run_cli(args, self.env(), timeout=300).proc

    def install_args(self, tarball: Path) -> List[str]:
        return [
            "install",
            "--tarball",
            str(tarball),
            "--prefix",
            str(self.prefix),
            "--profile-file",
            str(self.profile),
            "--python",
            PYTHON,
            "--json",
        ]


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def real_tool(name: str) -> str:
    path = shutil.which(name, path="/usr/bin")
    if path is None:
        pytest.fail(f"this machine has no /usr/bin/{name}, which the build needs")
    return path


@pytest.fixture
def rhel(tmp_path: Path) -> Host:
    host = Host(tmp_path, RHEL9_OS_RELEASE)
    for name in ("gcc", "cc", "make"):  # the PATH really hides them
        assert shutil.which(name, path=host.path) is None, name
    assert shutil.which("sh", path=host.path) is not None
    return host


@pytest.fixture
def tarball(shared_tarballs: Dict[str, Any]) -> Path:
    return Path(shared_tarballs["3.44.2"]["path"])


def step_status(proc: subprocess.CompletedProcess[str], name: str) -> str:
    for step in json.loads(proc.stdout)["steps"]:
        if step["name"] == name:
            return str(step["status"])
    pytest.fail(f"no step {name}:\n" + describe(proc))


def test_yum_installs_gcc_and_make_then_the_build_runs(rhel: Host, tarball: Path) -> None:
    links = "\n".join(
        f"ln -s '{real_tool(name)}' '{rhel.tools / name}'" for name in ("gcc", "cc", "make")
    )
    rhel.fake_yum(links + "\nexit 0")

    proc = rhel.run(rhel.install_args(tarball))

    assert proc.returncode == 0, describe(proc)
    assert rhel.yum_changes() == ["[install][-y][gcc][make]"]
    data = json.loads(proc.stdout)
    assert step_status(proc, "install-compiler") == "ok"
    assert step_status(proc, "make") == "ok"
    assert data["changed"] is True
    assert data["verified"][0]["sqlite_version"] == "3.44.2"
    # Independently: a shell that sources the snippet gets the new library.
    out = subprocess.run(
        [
            "sh",
            "-c",
            '. "$1"; exec "$2" -c "import sqlite3; print(sqlite3.sqlite_version)"',
            "sh",
            str(rhel.profile),
            PYTHON,
        ],
        env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "3.44.2"


def test_yum_failure_exits_5_with_its_message(rhel: Host, tarball: Path) -> None:
    rhel.fake_yum('echo "Error: Unable to find a match: gcc" >&2\nexit 1')

    proc = rhel.run(rhel.install_args(tarball))

    assert proc.returncode == 5, describe(proc)
    assert rhel.yum_calls() == ["[install][-y][gcc][make]"]
    assert "Error: Unable to find a match: gcc" in proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 5
    assert not rhel.prefix.exists()
    assert not rhel.profile.exists()


def test_yum_success_without_a_compiler_exits_5_still_missing(rhel: Host, tarball: Path) -> None:
    rhel.fake_yum("exit 0")

    proc = rhel.run(rhel.install_args(tarball))

    assert proc.returncode == 5, describe(proc)
    assert rhel.yum_calls() == ["[install][-y][gcc][make]"]
    assert "still missing" in proc.stderr
    assert not rhel.prefix.exists()
    assert not rhel.profile.exists()


def test_debian_without_gcc_exits_3_naming_the_command_before_any_download(
    tmp_path: Path, mirror: Mirror
) -> None:
    host = Host(tmp_path, DEBIAN_OS_RELEASE)
    host.fake_yum("exit 0")  # present, but a Debian host must never get yum run on it
    args = ["install", "--version", "3.44.2", "--mirror", mirror.url, "--prefix", str(host.prefix)]
    args += ["--profile-file", str(host.profile), "--python", PYTHON]

    proc = host.run(args)

    assert proc.returncode == 3, describe(proc)
    assert "apt-get install -y gcc make" in proc.stderr
    assert "gcc" in proc.stderr.splitlines()[0]
    assert mirror.requests == []
    assert host.yum_calls() == []
    assert not host.prefix.exists()
    assert not host.profile.exists()
    assert not (host.state / "cache").exists()
