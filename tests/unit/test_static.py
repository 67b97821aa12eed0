"""Static guards: no shell=True anywhere, no function in src/ over 60 lines, the tool's Python
3.6 floor, and the probe script on the oldest pythons it must serve (RHEL 8's platform-python
3.6, and 2.7). The one door to subprocess and to requests is in test_layout.py."""

from __future__ import annotations

import ast
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


MAX_FUNCTION_LINES = 60


def long_functions(source: str, max_lines: int) -> list[tuple[str, int, int]]:
    """(name, first line, length) of each function, nested ones included, whose `def` line to
    its last line spans more than `max_lines` lines (decorators not counted)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > max_lines:
                found.append((node.name, node.lineno, length))
    return found


def test_long_functions_counts_from_def_to_last_line() -> None:
    source = "@decorator\ndef f():\n" + "    x = 1\n" * 60 + "\ndef g():\n    pass\n"
    assert long_functions(source, 60) == [("f", 2, 61)]
    assert long_functions(source, 61) == []


def test_no_function_in_src_over_60_lines() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name} has {length} lines"
        for path in sorted((ROOT / "src").rglob("*.py"))
        for name, line, length in long_functions(
            path.read_text(encoding="utf-8"), MAX_FUNCTION_LINES
        )
    ]
    assert offenders == [], "split these into helpers with one job each:\n" + "\n".join(offenders)


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
