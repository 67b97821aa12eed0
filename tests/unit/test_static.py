"""Static guards: no shell=True anywhere, the tool's Python 3.6 floor, and the probe script on
the oldest pythons it must serve (RHEL 8's platform-python 3.6, and 2.7). The one door to
subprocess and to requests is in test_layout.py."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sqlite_provision.host.pythons import PROBE_SCRIPT
from sqlite_provision.runner import clean_env
from support import REPO_ROOT, need
from support.interpreters import old_pythons

ROOT = REPO_ROOT


def test_no_shell_true_anywhere() -> None:
    offenders = []
    for path in list((ROOT / "src").rglob("*.py")) + list((ROOT / "scripts").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"shell\s*=\s*True", line):
                offenders.append(f"{path}:{number}: {line.strip()}")
    assert offenders == []


def test_tool_runs_on_python_36() -> None:
    vermin = shutil.which("vermin")
    need(vermin, "vermin is missing")
    result = subprocess.run(
        [str(vermin), "--no-tips", "--violations", "--target=3.6-", "--eval-annotations",
         "--backport", "dataclasses", str(ROOT / "src" / "sqlite_provision")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("minor", ["2.7", "3.6"])
def test_probe_script_runs_on_old_pythons(minor: str) -> None:
    pythons = [p for p in old_pythons() if p.endswith(minor)]
    need(pythons, f"a python{minor} (pyenv) is missing")
    result = subprocess.run(
        [pythons[0], "-c", PROBE_SCRIPT], capture_output=True, text=True, env=clean_env(os.environ),
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["python_version"].startswith(minor)
    assert re.match(r"^3\.\d+\.\d+$", data["sqlite_version"])
    # Its _sqlite3 is linked to a shared libsqlite3, and the probe sees which one is mapped.
    assert data["library"] and "libsqlite3" in data["library"]
    assert "THREADSAFE=1" in data["compile_options"]
    assert sys.executable != pythons[0]


@pytest.mark.integration
def test_the_tool_installs_and_plans_on_python_37(tmp_path: Path) -> None:
    """Beyond vermin: pip resolves the dependencies for 3.7 (Amazon Linux 2) and the CLI runs."""
    candidates = glob.glob(os.path.expanduser("~/.pyenv/versions/3.7*/bin/python3.7"))
    need(candidates, "a python3.7 (pyenv) is missing")
    venv = tmp_path / "venv"
    subprocess.run([candidates[0], "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True,
                   capture_output=True, text=True)  # fmt: skip
    env = dict(os.environ, SQLITE_PROVISION_LOCK_FILE=str(tmp_path / "lock"))
    result = subprocess.run(
        [str(venv / "bin" / "sqlite-provision"), "install", "--dry-run", "--json",
         "--prefix-root", str(tmp_path / "opt"), "--profile-file", str(tmp_path / "p.sh"),
         "--python", sys.executable],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["version"] == "3.53.4"
    assert not (tmp_path / "opt").exists()
