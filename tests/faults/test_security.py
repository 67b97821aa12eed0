"""Security checks: no shell=True in the tool, ruff's bandit rules (S) clean, and every file a
real install wrote has an explicit mode. The install is the seed's, run under umask 077: a
mode that came from the umask would show up as 0600/0700 here."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from support import unavailable
from support.faults import REPO_ROOT, TARBALL_3442, Seed

SRC = REPO_ROOT / "src"


def test_no_shell_true_in_src() -> None:
    offenders = [
        f"{path}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"shell\s*=\s*True", line)
    ]
    assert offenders == []


def ruff() -> List[str]:
    found = shutil.which("ruff")
    if found:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True)
    if probe.returncode == 0:
        return [sys.executable, "-m", "ruff"]
    unavailable("ruff is not installed")
    return []


def test_ruff_bandit_rules_are_clean() -> None:
    proc = subprocess.run(
        [*ruff(), "check", "--select", "S", "--no-cache", "--output-format", "concise", str(SRC)],
        capture_output=True, text=True, check=False, cwd=str(REPO_ROOT),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


@pytest.mark.integration
def test_every_file_the_install_wrote_has_an_explicit_mode(seed: Seed) -> None:
    assert seed.run.proc.returncode == 0, seed.run.describe()
    host = seed.host
    log = Path(seed.run.data["log_file"])
    expected: Dict[Path, int] = {
        host.profile: 0o644,
        host.csh: 0o644,
        host.systemd / "myapp.service.d": 0o755,
        host.systemd / "myapp.service.d" / "sqlite-provision.conf": 0o644,
        host.prefix_root: 0o755,
        host.prefix_root / "3.44.2": 0o755,
        host.prefix_root / "3.44.2" / "sqlite-provision-manifest.json": 0o644,
        host.prefix_root / ".sqlite-provision-activation.json": 0o644,
        host.cache / TARBALL_3442: 0o644,
        log: 0o640,
        log.parent: 0o755,
        host.lock: 0o644,
    }
    wrong = {str(p): oct(mode(p)) for p, want in expected.items() if mode(p) != want}
    wanted = {str(p): oct(m) for p, m in expected.items()}
    assert wrong == {}, f"modes differ from {wanted}"

    # Everything installed in the prefix is readable by all and writable by root alone:
    # a umask-derived mode would leave users on the old library, or let them swap it.
    for path in [host.prefix_root / "3.44.2", *(host.prefix_root / "3.44.2").rglob("*")]:
        if path.is_symlink():
            continue
        bits = mode(path)
        assert bits & 0o022 == 0, f"{path} is group/world-writable: {oct(bits)}"
        assert bits & 0o004, f"{path} is not world-readable: {oct(bits)}"
        if path.is_dir():
            assert bits & 0o001, f"{path} is not world-searchable: {oct(bits)}"

    if os.geteuid() == 0:
        for path in (host.profile, host.csh):
            info = os.stat(str(path))
            assert (info.st_uid, info.st_gid) == (0, 0), f"{path} is not owned by root"
    # The profile snippet is sourced by every login shell: 0644, root's, and a regular file.
    assert stat.S_ISREG(os.lstat(str(host.profile)).st_mode)
