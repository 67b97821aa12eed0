"""sqlite-provision.pyz (scripts/build-pyz): one file, no .so, the same bytes from two clean
clones, and the whole tool under the host's own python3 from 3.6 on, with none of the tool's
dependencies installed: a real build and install on pyenv's CPython 3.6.15 in an empty
environment, `changed: false` on the second run, and `versions --json` on 3.7 and 3.13.

Building needs PyPI (the pinned wheels are kept in build/pyz-downloads between runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from support import REPO_ROOT, unavailable
from support.interpreters import interpreter
from support.mirror import Mirror
from support.pyz import build_pyz


def need_python(minor: str) -> str:
    found = interpreter(minor)
    if found is None:
        unavailable(f"no CPython {minor} under pyenv ({minor} is a supported host python)")
    return found


def run_pyz(python: str, pyz: Path, args: List[str], env: Dict[str, str]) -> Dict[str, object]:
    result = subprocess.run([python, str(pyz), *args], env=env, capture_output=True, text=True,
                            timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(result.stdout)) if args[-1] == "--json" else {}


def test_one_file_with_everything_and_no_compiled_module(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    names = zipfile.ZipFile(str(pyz)).namelist()
    assert [n for n in names if n.endswith((".so", ".pyd", ".dylib"))] == []
    assert "__main__.py" in names
    for needed in ("sqlite_provision/data/releases.csv", "sqlite_provision/templates/profile.sh.j2",
                   "_vendor/click/__init__.py", "_vendor/requests/__init__.py",
                   "_vendor/jinja2/__init__.py", "_vendor/markupsafe/_native.py",
                   "_vendor/distro/__init__.py", "_vendor36/dataclasses.py"):  # fmt: skip
        assert needed in names, needed
    # The 3.6 backport must never shadow the standard module on 3.7+.
    assert "_vendor/dataclasses.py" not in names


def test_two_clean_clones_build_the_same_bytes(pyz: Path, tmp_path: Path) -> None:
    digests = []
    for name in ("a", "b"):
        clone = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        built = build_pyz(clone, tmp_path / f"dist-{name}")
        digests.append(hashlib.sha256(built.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_version_names_the_commit(pyz: Path, tmp_path: Path) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=str(REPO_ROOT),
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    env = {**os.environ, "SQLITE_PROVISION_CACHE_DIR": str(tmp_path)}  # not the machine's cache
    out = subprocess.run([sys.executable, str(pyz), "--version"], capture_output=True, text=True,
                         check=True, env=env).stdout  # fmt: skip
    assert out.startswith("sqlite-provision 0.1.0 (commit ")
    assert commit in out


@pytest.mark.parametrize("minor", ["3.7", "3.13"])
def test_versions_json_on_other_pythons(pyz: Path, minor: str, tmp_path: Path) -> None:
    python = need_python(minor)
    env = {"PATH": "/usr/bin:/bin", "SQLITE_PROVISION_CACHE_DIR": str(tmp_path)}
    rows = subprocess.run([python, str(pyz), "versions", "--json"], capture_output=True,
                          text=True, check=True, env=env).stdout  # fmt: skip
    data = json.loads(rows)["releases"]
    assert data[0]["version"] == "3.53.4" and data[0]["default"] is True


def test_install_under_python36_in_an_empty_environment(
    pyz: Path, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    """RHEL 7/8's case: the host's own python3 is 3.6 and has none of the tool's dependencies."""
    python = need_python("3.6")
    bare = subprocess.run([python, "-c", "import click"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert bare.returncode != 0, "this python has click: the test would prove nothing"
    state = tmp_path / "state"
    env = {
        "PATH": "/usr/bin:/bin",  # env -i PATH=/usr/bin:/bin, and where the run's files go:
        "SQLITE_PROVISION_CACHE_DIR": str(state / "cache"),
        "SQLITE_PROVISION_LOG_DIR": str(state / "log"),
        "SQLITE_PROVISION_LOCK_FILE": str(state / "lock"),
        "CFLAGS": "-O0",
    }
    args = ["install", "--mirror", sqlite_mirror.url, "--version", "3.44.2",
            "--prefix-root", str(tmp_path / "opt"), "--profile-file", str(tmp_path / "p.sh"),
            "--python", python, "--json"]  # fmt: skip
    first = run_pyz(python, pyz, args, env)
    assert first["changed"] is True and first["version"] == "3.44.2"
    verified = first["verified"]
    assert isinstance(verified, list) and verified[0]["python_version"].startswith("3.6.")
    assert verified[0]["sqlite_version"] == "3.44.2" and verified[0]["ok"] is True
    second = run_pyz(python, pyz, args, env)
    assert second["changed"] is False


def test_pip_installs_the_project_on_python36_with_pip_21(tmp_path: Path) -> None:
    """pip 9 (RHEL 7/8) cannot build a pyproject.toml project; pip 21.3.1, the last for 3.6,
    can, and the console script then runs."""
    python = need_python("3.6")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    # The index alone, as on a host: this machine's pip configuration points elsewhere too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "pip==21.3.1"], env=env, check=True, timeout=300)
    result = subprocess.run([*pip, "install", "-q", str(REPO_ROOT)], env=env,
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = subprocess.run([str(venv / "bin" / "sqlite-provision"), "install", "--dry-run",
                          "--json", "--prefix-root", str(tmp_path / "opt"), "--profile-file",
                          str(tmp_path / "p.sh"), "--python", python],
                         env={**env, "SQLITE_PROVISION_LOCK_FILE": str(tmp_path / "lock")},
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == "3.53.4"
    assert not (tmp_path / "opt").exists()
