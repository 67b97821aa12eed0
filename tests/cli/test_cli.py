"""Layer 4: the CLI as a user runs it, in a subprocess, through each launcher (`python -m
sqlite_provision`, and the built pyz on CPython 3.6 and 3.13 as hosts run it).

Usage errors, `--dry-run` (no network, no writes), the JSON shapes and the help texts.
Every run points its cache, log, prefix, profile, HOME and TMPDIR into one temporary root,
which is walked before and after to prove that nothing was written.
"""

# Optional/List rather than `X | None`: the tool and its tests run on Python 3.7.

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path
from typing import Dict, List, Set

import pytest

from support.clirun import PYTHON, Run, pyz_cache, run_cli
from support.launchers import Launcher
from support.mirror import Mirror


class Sandbox:
    """A temporary root holding every path the tool could write to."""

    def __init__(self, base: Path, launcher: Launcher) -> None:
        self.launcher = launcher
        self.root = base / "root"
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True)
        self.prefix = self.root / "opt" / "sqlite-test"
        self.profile = self.root / "etc" / "profile.d" / "sqlite-provision.sh"
        self.cache = self.root / "cache"
        self.log = self.root / "log"
        self.home = self.root / "home"
        # A real file outside the root, for --tarball (click checks that it exists).
        self.tarball = base / "sqlite-autoconf-3440200.tar.gz"
        self.tarball.write_bytes(b"not really a tarball")

    def env(self) -> Dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SQLITE_PROVISION_") and k != "LD_LIBRARY_PATH"
        }
        env.update(
            SQLITE_PROVISION_CACHE_DIR=str(self.cache),
            SQLITE_PROVISION_PYZ_CACHE=pyz_cache(),  # the launcher's, not the host's state
            SQLITE_PROVISION_LOG_DIR=str(self.log),
            SQLITE_PROVISION_LOCK_FILE=str(self.root / "sqlite-provision.lock"),
            HOME=str(self.home),
            XDG_CACHE_HOME=str(self.root / "xdg-cache"),
            XDG_STATE_HOME=str(self.root / "xdg-state"),
            TMPDIR=str(self.tmp),
            CFLAGS="-O0",
        )
        return env

    def snapshot(self) -> Set[str]:
        found = set()
        for dirpath, dirnames, filenames in os.walk(str(self.root)):
            for name in dirnames + filenames:
                found.add(os.path.relpath(os.path.join(dirpath, name), str(self.root)))
        return found

    def place_args(self) -> List[str]:
        return ["--prefix", str(self.prefix), "--profile-file", str(self.profile)]

    def run(self, args: List[str]) -> Run:
        """The tool with args, through this sandbox's launcher and in its environment."""
        return run_cli(args, self.env(), timeout=120, command=self.launcher.argv)


@pytest.fixture
def sandbox(tmp_path: Path, launcher: Launcher) -> Sandbox:
    return Sandbox(tmp_path, launcher)


# --- --dry-run -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.44.2", "latest", None])
def test_dry_run_text_touches_neither_network_nor_disk(
    sandbox: Sandbox, mirror: Mirror, version: str
) -> None:
    before = sandbox.snapshot()
    args = ["install", "--dry-run", "--mirror", mirror.url, "--jobs", "2", "--python", PYTHON]
    args += sandbox.place_args()
    if version is not None:
        args += ["--version", version]
    run = sandbox.run(args)
    proc = run.proc

    assert proc.returncode == 0, run.describe()
    assert mirror.requests == []
    assert sandbox.snapshot() == before
    assert "make -j2" in proc.stdout
    assert f"./configure --prefix={sandbox.prefix} " in proc.stdout
    assert mirror.url in proc.stdout  # the plan names the mirror it would use


def build_user_prefix() -> str:
    """What the plan puts before configure and make: setpriv to nobody as root, else nothing."""
    if os.geteuid() != 0:
        return ""
    nobody = pwd.getpwnam("nobody")
    setpriv = shutil.which("setpriv")
    return (
        f"{setpriv} --reuid={nobody.pw_uid} --regid={nobody.pw_gid} --clear-groups "
        "--no-new-privs -- "
    )


def test_dry_run_json_is_one_object_with_the_exact_commands(
    sandbox: Sandbox, mirror: Mirror
) -> None:
    before = sandbox.snapshot()
    args = ["install", "--dry-run", "--json", "--version", "3.44.2", "--mirror", mirror.url]
    args += ["--jobs", "2", "--python", PYTHON, *sandbox.place_args()]
    run = sandbox.run(args)
    proc = run.proc

    assert proc.returncode == 0, run.describe()
    assert mirror.requests == []
    assert sandbox.snapshot() == before
    data = json.loads(proc.stdout)  # exactly one JSON document, nothing else on stdout
    assert data["dry_run"] is True
    assert data["changed"] is False
    assert data["version"] == "3.44.2"
    assert data["prefix"] == str(sandbox.prefix)
    assert data["profile_file"] == str(sandbox.profile)
    assert data["pythons"] == [PYTHON]
    assert data["source"]["url"] == mirror.url + "/2023/sqlite-autoconf-3440200.tar.gz"
    assert data["source"]["checksum"].startswith(("sha256:", "sha3_256:"))
    steps = {step["name"]: step for step in data["steps"]}
    for name in ("fetch", "extract", "configure", "make", "stage", "install", "profile", "verify"):
        assert name in steps, sorted(steps)
    commands = [command for step in data["steps"] for command in step["commands"]]
    # As root, every command of the download runs as the build user, and the plan says so.
    wrapper = build_user_prefix()
    configure = [c[len(wrapper) :] for c in commands if c.startswith(wrapper + "./configure ")]
    assert configure and configure[0] == "./configure --help", commands
    configure = configure[1:]
    assert len(configure) == 1, commands
    assert configure[0].startswith(f"./configure --prefix={sandbox.prefix} ")
    assert "--enable-threadsafe" in configure[0]
    assert wrapper + "make -j2" in steps["make"]["commands"]
    assert steps["stage"]["commands"][0].startswith(wrapper + "make install DESTDIR=")
    assert all(
        isinstance(step["description"], str) and step["description"] for step in data["steps"]
    )


def test_dry_run_latest_does_not_read_the_download_page(sandbox: Sandbox, mirror: Mirror) -> None:
    mirror.add_download_page([("3.44.2", "2023/sqlite-autoconf-3440200.tar.gz", 1, "a" * 64)])
    before = sandbox.snapshot()
    args = ["install", "--dry-run", "--json", "--version", "latest", "--mirror", mirror.url]
    args += ["--python", PYTHON, *sandbox.place_args()]
    run = sandbox.run(args)
    proc = run.proc

    assert proc.returncode == 0, run.describe()
    assert mirror.requests == []
    assert sandbox.snapshot() == before
    data = json.loads(proc.stdout)
    assert data["source"]["url"] == mirror.url + "/download.html"


# --- usage and checksum errors ---------------------------------------------------------------

# (extra arguments, exit code, words the message must contain); {tarball} is a real file.
ERROR_CASES = [
    (["--version", "3.24"], 2, ["--version", "3.24"]),
    (["--version", "latest-ish"], 2, ["--version", "latest-ish"]),
    (["--version", ""], 2, ["--version", "invalid SQLite version"]),
    (["--jobs", "0"], 2, ["--jobs", "0"]),
    (["--url", "ftp://x/y.tar.gz"], 2, ["--url", "ftp://x/y.tar.gz", "http"]),
    (["--url", "file:///x"], 2, ["--url", "file:///x", "--tarball"]),
    (
        ["--tarball", "{tarball}", "--url", "http://127.0.0.1:9/sqlite-autoconf-3440200.tar.gz"],
        2,
        ["--tarball", "--url", "mutually exclusive"],
    ),
    (["--no-profile"], 2, ["--profile-file", "--no-profile", "mutually exclusive"]),
    (["--prefix-root", "/tmp/elsewhere"], 2, ["--prefix and --prefix-root are mutually exclusive"]),
    (
        ["--prefix-root", "/tmp/elsewhere", "--dry-run"],
        2,
        ["--prefix", "--prefix-root", "exclusive"],
    ),
    (["--python", "/nonexistent"], 2, ["--python", "/nonexistent", "no such executable"]),
    (["--python", "/bin/true"], 2, ["--python", "/bin/true", "not a python"]),
    (["--version", "3.99.0"], 2, ["3.99.0", "unknown"]),
    (["--version", "3.44.2", "--sha3-256", "abc"], 4, ["--sha3-256", "64 hex"]),
    (["--version", "3.25.0"], 4, ["3.25.0", "no known checksum", "--sha3-256"]),
    (["--version", "3.52.0"], 2, ["3.52.0", "withdrawn", "--allow-withdrawn"]),
]


@pytest.mark.parametrize(
    "extra, code, words", ERROR_CASES, ids=[" ".join(case[0]) or "empty" for case in ERROR_CASES]
)
def test_bad_requests_fail_early_with_a_clear_message(
    sandbox: Sandbox, mirror: Mirror, extra: List[str], code: int, words: List[str]
) -> None:
    """Not a dry run: each error must stop the tool before any download or write."""
    before = sandbox.snapshot()
    extra = [arg.format(tarball=sandbox.tarball) for arg in extra]
    args = ["install", "--mirror", mirror.url, "--python", PYTHON, *sandbox.place_args(), *extra]
    run = sandbox.run(args)
    proc = run.proc

    assert proc.returncode == code, run.describe()
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    assert "rror" in proc.stderr  # "Error:" from click, "error:" from the tool
    for word in words:
        assert word in proc.stderr, run.describe()
    assert proc.stdout == ""
    assert mirror.requests == []
    assert sandbox.snapshot() == before


def test_bad_request_with_json_prints_one_error_object(sandbox: Sandbox, mirror: Mirror) -> None:
    args = ["install", "--json", "--mirror", mirror.url, "--version", "3.25.0", "--python", PYTHON]
    run = sandbox.run(args + sandbox.place_args())
    proc = run.proc

    assert proc.returncode == 4, run.describe()
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    assert data["exit_code"] == 4
    assert "--sha3-256" in data["hint"]
    assert mirror.requests == []


def test_a_usage_error_clicks_finds_is_still_one_json_object_with_json(sandbox: Sandbox) -> None:
    """Click's own checks (here: a --tarball that does not exist) answer a --json caller with
    the same one JSON object as the tool's own errors: exit 2, the message, the fix."""
    run = sandbox.run(["install", "--tarball", "/nonexistent.tar.gz", "--json"])
    proc = run.proc
    assert proc.returncode == 2, run.describe()
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["exit_code"] == 2
    assert "/nonexistent.tar.gz" in data["error"] and "does not exist" in data["error"]
    assert data["hint"] == "see `sqlite-provision install --help`"
    assert "Error:" in proc.stderr
    plain = sandbox.run(["install", "--tarball", "/nonexistent.tar.gz"]).proc
    assert plain.returncode == 2 and plain.stdout == ""


# --- help and versions -----------------------------------------------------------------------


COMMANDS = {"install", "build", "verify", "rollback", "uninstall", "status", "versions"}


@pytest.mark.parametrize("command", [[], ["install"], ["verify"], ["status"], ["versions"]])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_has_examples(sandbox: Sandbox, command: List[str], flag: str) -> None:
    run = sandbox.run([*command, flag])
    proc = run.proc

    assert proc.returncode == 0, run.describe()
    assert "Usage:" in proc.stdout
    # The examples are the lines of the "Examples:" block, not any line naming the program (the
    # Usage line does, for every command).
    lines = proc.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    assert len(starts) == 1, run.describe()
    examples = []
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            break
        examples.append(line.split())
    assert examples, run.describe()
    assert all(words[0] == "sqlite-provision" for words in examples), run.describe()
    if command:
        assert any(words[1] == command[0] for words in examples), run.describe()
    else:  # the top-level help shows several commands, each one that exists
        subcommands = {words[1] for words in examples}
        assert len(subcommands) >= 3 and subcommands <= COMMANDS, run.describe()


def test_versions_json_marks_the_withdrawn_release(sandbox: Sandbox) -> None:
    run = sandbox.run(["versions", "--json"])
    proc = run.proc

    assert proc.returncode == 0, run.describe()
    data = json.loads(proc.stdout)
    assert (data["ok"], data["changed"], data["exit_code"]) == (True, False, 0)
    rows = {row["version"]: row for row in data["releases"]}
    assert rows["3.52.0"]["withdrawn"] is True
    assert rows["3.52.0"]["default"] is False
    assert rows["3.44.2"]["withdrawn"] is False
    defaults = [version for version, row in rows.items() if row["default"]]
    assert len(defaults) == 1
    assert rows[defaults[0]]["withdrawn"] is False
    assert [v for v, row in rows.items() if row["withdrawn"]] == ["3.52.0"]


def test_versions_text_marks_the_withdrawn_release(sandbox: Sandbox) -> None:
    run = sandbox.run(["versions"])
    proc = run.proc

    assert proc.returncode == 0, run.describe()
    line = next(line for line in proc.stdout.splitlines() if line.startswith("3.52.0 "))
    assert "WITHDRAWN" in line
