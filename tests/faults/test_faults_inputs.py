"""Bad input to every install option: exit 2 (usage), or 4 for a hash, with a message that
names the option and says what it wants; no HTTP request, nothing written: no lock file, no
log (bad input stops before the lock, docs/ARCHITECTURE.md).

Each case is the valid base command line with one option replaced or added; click keeps the
last value of a single-valued option, so an appended `--version 3.24` replaces the base's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

import pytest

from support.clirun import run_cli
from support.faults import PYTHON, TARBALL_3442, FaultHost, expect
from support.mirror import Mirror

# (id, extra args, exit code, phrases on stderr); {tarball}, {notpython} and {tmp} are filled in.
BAD: List[Tuple[str, List[str], int, List[str]]] = [
    ("version 3.24", ["--version", "3.24"], 2, ["--version", "'3.24'", "3.X.Y"]),
    ("version 3.99.0", ["--version", "3.99.0"], 2, ["unknown SQLite version 3.99.0",
                                                    "sqlite-provision versions"]),
    ("version latest-ish", ["--version", "latest-ish"], 2, ["--version", "'latest-ish'"]),
    ("version empty", ["--version", ""], 2, ["--version", "invalid SQLite version ''"]),
    ("version withdrawn", ["--version", "3.52.0"], 2, ["withdrawn", "--allow-withdrawn"]),
    ("min-version 3", ["--min-version", "3"], 2, ["--min-version", "3.X.Y"]),
    ("min-version latest", ["--min-version", "latest"], 2, ["--min-version", "3.35.0"]),
    ("sha256 too short", ["--sha256", "abc123"], 4, ["--sha256", "64 hex", "got 6"]),
    ("sha256 too long", ["--sha256", "a" * 65], 4, ["--sha256", "64 hex", "got 65"]),
    ("sha256 empty", ["--sha256", ""], 4, ["--sha256", "64 hex", "got 0"]),
    ("sha3-256 not hex", ["--sha3-256", "g" * 64], 4, ["--sha3-256", "not all hexadecimal"]),
    ("sha3-256 with spaces", ["--sha3-256", "ab cd" * 13], 4, ["--sha3-256", "64 hex"]),
    ("url file://", ["--url", f"file:///tmp/{TARBALL_3442}"], 2, ["--url", "file://",
                                                                  "--tarball FILE"]),
    ("url ftp://", ["--url", f"ftp://127.0.0.1/{TARBALL_3442}"], 2, ["--url", "ftp://"]),
    ("url without host", ["--url", "http:///x.tar.gz"], 2, ["--url", "http:///x.tar.gz"]),
    ("mirror file://", ["--mirror", "file:///srv/sqlite"], 2, ["--mirror", "file://"]),
    ("url with version latest", ["--url", f"http://127.0.0.1:9/{TARBALL_3442}", "--version",
                                 "latest"], 2, ["--version latest", "--url", "--version X.Y.Z"]),
    ("tarball missing", ["--tarball", "/nonexistent/" + TARBALL_3442], 2,
     ["--tarball", "does not exist"]),
    ("tarball and url", ["--tarball", "{tarball}", "--url", f"http://127.0.0.1:9/{TARBALL_3442}"],
     2, ["--tarball and --url are mutually exclusive"]),
    ("jobs 0", ["--jobs", "0"], 2, ["--jobs", "0 is not in the range x>=1"]),
    ("jobs -1", ["--jobs", "-1"], 2, ["--jobs", "x>=1"]),
    ("jobs text", ["--jobs", "many"], 2, ["--jobs", "'many'"]),
    ("lock-timeout -1", ["--lock-timeout", "-1"], 2, ["--lock-timeout", "x>=0"]),
    ("compat rhel7", ["--compat", "rhel7"], 2, ["--compat", "'host', 'rhel', 'none'"]),
    ("enable BOGUS", ["--enable", "BOGUS"], 2, ["--enable", "'BOGUS'", "known options"]),
    ("systemd-unit ../x", ["--systemd-unit", "../x"], 2, ["--systemd-unit", "not a unit name"]),
    ("prefix-root with a space", ["--prefix-root", "{tmp}/opt dir"], 2,
     ["--prefix-root", "letters, digits"]),
    ("profile-file with ;", ["--profile-file", "{tmp}/p;rm.sh"], 2,
     ["--profile-file", "letters, digits"]),
    ("env-file with $", ["--env-file", "{tmp}/$HOME.env"], 2, ["--env-file", "letters, digits"]),
    ("profile-file and no-profile", ["--profile-file", "{tmp}/a.sh", "--no-profile"], 2,
     ["--profile-file and --no-profile are mutually exclusive"]),
    ("prefix and prefix-root", ["--prefix", "{tmp}/p"], 2,
     ["--prefix and --prefix-root are mutually exclusive"]),
    ("python missing", ["--python", "/nonexistent/python3"], 2,
     ["--python /nonexistent/python3", "no such executable"]),
    ("python empty", ["--python", ""], 2, ["--python", "no such executable"]),
    ("python not a python", ["--python", "{notpython}"], 2,
     ["is not a python interpreter", "full path of a python"]),
    ("artifact and version", ["--artifact", "{tarball}"], 2,
     ["--artifact and --version are mutually exclusive"]),
]  # fmt: skip

# Click's own messages (option parsing) carry the fix in the message itself, with no `fix:`;
# so does the tool's message for an unknown version.
FIX_INLINE = {
    "version 3.99.0",
    "version 3.24", "version latest-ish", "version empty", "min-version 3", "min-version latest",
    "url file://", "url ftp://", "url without host", "mirror file://", "tarball missing",
    "jobs 0", "jobs -1", "jobs text", "lock-timeout -1", "compat rhel7",
}  # fmt: skip


@pytest.mark.parametrize("name, extra, code, phrases", BAD, ids=[case[0] for case in BAD])
def test_bad_input(
    host: FaultHost,
    mirror: Mirror,
    tmp_path: Path,
    name: str,
    extra: List[str],
    code: int,
    phrases: List[str],
) -> None:
    tarball = tmp_path / TARBALL_3442
    tarball.write_bytes(b"never read: the options are refused first\n")
    notpython = tmp_path / "not-python"
    notpython.write_text("#!/bin/sh\necho 'hello, I am not a python'\n")
    notpython.chmod(0o755)
    fill = {"tarball": str(tarball), "notpython": str(notpython), "tmp": str(tmp_path)}
    extra = [arg.format(**fill) for arg in extra]
    base = ["install", "--prefix-root", str(host.prefix_root), "--profile-file",
            str(host.profile), "--mirror", mirror.url, "--version", "3.44.2", "--json"]  # fmt: skip
    if "--python" not in extra:
        base += ["--python", PYTHON]
    if "--artifact" in extra:
        base.remove("--mirror")
        base.remove(mirror.url)
    with host.fault(f"bad input: {name}") as case:
        run = run_cli(base + extra, host.env(), timeout=60)
    expect(run, code, *phrases, fix=name not in FIX_INLINE)
    assert "rror" in run.proc.stderr  # "Error:" from click, "error:" from the tool
    assert mirror.requests == []
    assert host.cache_files() == []
    assert case.changes == {}, case.describe()
    # Bad input stops before the lock (docs/ARCHITECTURE.md): no lock file, no log.
    assert not os.path.lexists(str(host.lock))
    assert not host.log.exists() or sorted(os.listdir(str(host.log))) == []
