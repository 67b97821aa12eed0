"""`install --venv`: a bound venv's pythons load the new SQLite with any environment or none,
and nothing else changes: not the system python, not the interpreter dnf runs on.

One real install of 3.44.2 binds two venvs, one of Debian's /usr/bin/python3 (the interpreter
/usr/bin/dnf names) and one of pyenv's CPython 3.6.15 (RHEL 7/8's python3), in a directory
every user can reach. A process started before the install must then show among the stale
processes. The last test removes the library behind the venvs (python falls back, silently),
then uninstalls everything and finds each venv byte-identical to what it was before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from support import need
from support.clirun import PYTHON, Run, run_cli, tool_env
from support.faults import world_dir
from support.interpreters import interpreter
from support.mirror import Mirror
from support.snapshot import Entry, diff, snapshot
from support.users import as_nobody

VERSION = "3.44.2"
SHOW = "import sqlite3, sys; print(sqlite3.sqlite_version)"
SYSTEM_PYTHON = "/usr/bin/python3"


def system_version() -> str:
    out = subprocess.run([SYSTEM_PYTHON, "-c", SHOW], env={}, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return out.strip()


@dataclass
class Bound:
    base: Path
    venvs: Dict[str, Path]  # "debian" / "py36" -> venv dir
    py36: Path  # the CPython 3.6 prefix (under /root: revealed to nobody)
    before: Dict[str, Entry]  # the venvs before the install
    install: Run
    waiting: subprocess.Popen[str]  # started before the install, on the system library
    args: List[str]
    env: Dict[str, str]

    def run(self, *args: str) -> Run:
        return run_cli([*args], self.env)


@pytest.fixture(scope="module")
def bound(sqlite_mirror: Mirror) -> Iterator[Bound]:
    need(os.path.exists(SYSTEM_PYTHON), f"{SYSTEM_PYTHON} (the interpreter dnf runs on)")
    py36 = interpreter("3.6")
    need(py36, "pyenv's CPython 3.6 (RHEL 7/8's python3)")
    base = world_dir("sqlite-provision-venvs-")
    venvs = {"debian": base / "venv-debian", "py36": base / "venv-py36"}
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venvs["debian"])], check=True)
    subprocess.run([str(py36), "-m", "venv", str(venvs["py36"])], check=True)
    for path in [base, *base.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    before = snapshot(venvs.values())
    waiting = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", "import sqlite3, sys; sqlite3.connect(':memory:'); "
         "print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert waiting.stdout is not None and waiting.stdout.readline().strip() == "ready"
    env = tool_env(base / "state")
    args = ["--prefix-root", str(base / "opt"), "--profile-file", str(base / "profile.sh"),
            "--python", PYTHON]  # fmt: skip
    install = run_cli(
        ["install", "--mirror", sqlite_mirror.url, "--version", VERSION, "--json", *args,
         "--venv", str(venvs["debian"]), "--venv", str(venvs["py36"])],
        env,
    )  # fmt: skip
    try:
        yield Bound(base, venvs, Path(str(py36)).parent.parent, before, install, waiting, args,
                    env)  # fmt: skip
    finally:
        waiting.kill()
        waiting.wait()
        shutil.rmtree(str(base), ignore_errors=True)


def loads(python: Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """`env -i PYTHON -c ...`: a service's, cron's or sudo's python has no LD_LIBRARY_PATH."""
    return subprocess.run([str(python), "-c", SHOW], env={}, capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_the_install_binds_and_verifies_each_venv_in_an_empty_environment(bound: Bound) -> None:
    assert bound.install.proc.returncode == 0, bound.install.describe()
    data = bound.install.data
    rows = {row["python"]: row for row in data["verified"]}
    for venv in bound.venvs.values():
        row = rows[str(venv / "bin" / "python")]
        assert row["ok"] is True and row["sqlite_version"] == VERSION, row
        assert row["reached"] == "bound venv, empty environment"
    assert rows[PYTHON]["reached"].startswith("login shell: sources ")
    written = [s for s in data["steps"] if s["name"] == "venv"]
    assert len(written) == 2 and all(s["status"] == "ok" for s in written), written


@pytest.mark.parametrize("name", ["debian", "py36"])
def test_a_bound_python_loads_it_with_no_environment(bound: Bound, name: str) -> None:
    proc = loads(bound.venvs[name] / "bin" / "python")
    assert (proc.stdout.strip(), proc.stderr) == (VERSION, "")


@pytest.mark.parametrize("name", ["debian", "py36"])
def test_a_bound_python_loads_it_as_another_user(bound: Bound, name: str) -> None:
    proc = as_nobody([str(bound.venvs[name] / "bin" / "python"), "-c", SHOW],
                     reveal=[bound.py36])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == VERSION


def test_pythons_outside_the_venvs_keep_the_system_library(bound: Bound) -> None:
    proc = subprocess.run([SYSTEM_PYTHON, "-c", SHOW], env={}, capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert proc.stdout.strip() == system_version() != VERSION


def test_the_interpreter_dnf_runs_on_keeps_the_system_library(bound: Bound) -> None:
    """The debian venv was made from the interpreter /usr/bin/dnf names in its #! line: that
    interpreter, started as dnf starts it, never reads the venv's site-packages."""
    dnf = shutil.which("dnf")
    need(dnf, "dnf is installed (apt-get install dnf)")
    shebang = Path(str(dnf)).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    interpreter_argv = shebang[2:].split()
    assert os.path.realpath(interpreter_argv[0]) == os.path.realpath(SYSTEM_PYTHON), shebang
    home = (bound.venvs["debian"] / "pyvenv.cfg").read_text()
    assert os.path.dirname(os.path.realpath(SYSTEM_PYTHON)) in home or "/usr/bin" in home, home
    proc = subprocess.run([*interpreter_argv, "-c", SHOW], env={}, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert proc.stdout.strip() == system_version() != VERSION
    assert subprocess.run([str(dnf), "--version"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, check=False).returncode == 0  # fmt: skip


def test_a_process_started_before_is_listed_as_stale(bound: Bound) -> None:
    listed = [p["pid"] for p in bound.install.data["stale_processes"]]
    assert bound.waiting.pid in listed
    status = bound.run("status", "--json", *bound.args)
    assert status.proc.returncode == 0, status.describe()
    rows = {p["pid"]: p for p in status.data["stale_processes"]}
    assert bound.waiting.pid in rows, status.data["stale_processes"]
    row = rows[bound.waiting.pid]
    assert "sqlite3.connect" in row["command"]
    assert "libsqlite3" in row["library"] and str(bound.base) not in row["library"]


def test_status_and_verify_see_each_venv_bound(bound: Bound) -> None:
    venv_args = [a for v in bound.venvs.values() for a in ("--venv", str(v))]
    status = bound.run("status", "--json", *bound.args, *venv_args)
    assert status.proc.returncode == 0, status.describe()
    assert [v["bound"] for v in status.data["venvs"]] == [True, True], status.data["venvs"]
    verify = bound.run("verify", "--json", *bound.args, *venv_args)
    assert verify.proc.returncode == 0, verify.describe()
    assert (
        sum(r["reached"] == "bound venv, empty environment" for r in verify.data["verified"]) == 2
    )


def test_without_the_library_python_starts_as_usual_then_uninstall_restores_the_venvs(
    bound: Bound,
) -> None:
    """Last: the library behind the venvs goes away (python falls back to the system library,
    with nothing on stderr, and status says the venv is not bound and why); then uninstall --all
    leaves each venv exactly as it was before the install."""
    current = bound.base / "opt" / "current"
    target = os.readlink(str(current))
    current.unlink()
    try:
        for venv in bound.venvs.values():
            proc = loads(venv / "bin" / "python")
            assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, system_version(), "")
        status = bound.run("status", "--json", *bound.args, "--venv", str(bound.venvs["debian"]))
        [row] = status.data["venvs"]
        assert row["bound"] is False and "does not exist" in row["reason"], row
    finally:
        current.symlink_to(target)
    removed = bound.run("uninstall", "--all", "--json", "--prefix-root", str(bound.base / "opt"),
                        "--profile-file", str(bound.base / "profile.sh"))  # fmt: skip
    assert removed.proc.returncode == 0, removed.describe()
    assert (
        sum(p.endswith("sqlite-provision-hook.pth") for p in removed.data["removed_activation"])
        == 2
    )
    assert diff(bound.before, snapshot(bound.venvs.values())) == {}


def test_a_directory_that_is_not_a_venv_is_refused(sqlite_mirror: Mirror, tmp_path: Path) -> None:
    plain = tmp_path / "not-a-venv"
    (plain / "lib").mkdir(parents=True)
    run = run_cli(["install", "--dry-run", "--mirror", sqlite_mirror.url, "--prefix-root",
                   str(tmp_path / "opt"), "--profile-file", str(tmp_path / "p.sh"), "--python",
                   PYTHON, "--venv", str(plain)], tool_env(tmp_path / "state"))  # fmt: skip
    assert run.proc.returncode == 2, run.describe()
    assert "not a virtual environment" in run.proc.stderr and "pyvenv.cfg" in run.proc.stderr
    assert list(plain.rglob("*")) == [plain / "lib"]
