"""The README's table "Who sees the new library", checked cell by cell against what really loads.

One real install of 3.44.2 writes every activation at once: the profile snippet, a bound venv,
a systemd drop-in, an env file and an ld.so.conf.d file (the last three in directories of the
test). Then each kind of process of the table is started as it really starts, with only one
activation in force, and asked which SQLite it loads:

- a login shell: `bash -l`, in a private mount namespace whose /etc/profile.d holds the snippet;
- a systemd service: systemd's environment for a service (its PATH), plus what the drop-in's
  `Environment=` or the unit's `EnvironmentFile=` adds;
- a cron job: cron's environment (HOME, LOGNAME, PATH=/usr/bin:/bin, SHELL) and `sh -c`;
- sudo: the real sudo, called from a shell that sourced the snippet;
- an empty environment (`env -i`), and another user (nobody, through setpriv);
- the host's package tools: the interpreter /usr/bin/dnf runs on, started as from a login shell.

--ld-so-conf is put in force for real: in a private mount namespace, /etc/ld.so.cache is
replaced by one that `ldconfig -X -C` built from the tool's ld.so.conf.d file first, then the
system's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from support import REPO_ROOT, need
from support.clirun import PYTHON, run_cli, tool_env
from support.faults import world_dir
from support.mirror import Mirror
from support.users import in_namespace

VERSION = "3.44.2"
SHOW = "import sqlite3; print(sqlite3.sqlite_version)"
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
CRON_ENV = {"HOME": "/root", "LOGNAME": "root", "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"}
COLUMNS = ("profile", "venv", "unit", "env-file", "ld-so-conf")


@dataclass
class World:
    base: Path
    profile: Path
    profile_d: Path  # an /etc/profile.d with the snippet, bound over the real one
    venv_python: Path
    dropin: Path
    env_file: Path
    ld_cache: Path  # an /etc/ld.so.cache with the tool's directory first

    def dropin_env(self) -> Dict[str, str]:
        text = self.dropin.read_text()
        return dict(re.findall(r"^Environment=(\w+)=(.*)$", text, re.M))

    def env_file_env(self) -> Dict[str, str]:
        return dict(re.findall(r"^(\w+)=(.*)$", self.env_file.read_text(), re.M))


def readme_table() -> Dict[str, Dict[str, str]]:
    """row -> column -> yes/no, from the README's table (footnote marks dropped)."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Who sees the new library", 1)[1].split("\n\n|", 1)[1]
    lines = ("|" + section).split("\n\n", 1)[0].splitlines()
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = {col: re.sub(r"[^a-z]", "", cell) for col, cell in zip(COLUMNS, cells[1:])}
    return rows


@pytest.fixture(scope="module")
def world(sqlite_mirror: Mirror) -> Iterator[World]:
    need(shutil.which("sudo"), "sudo (apt-get install sudo)")
    need(shutil.which("ldconfig") or os.path.exists("/sbin/ldconfig"), "ldconfig")
    base = world_dir("sqlite-provision-who-")
    venv = base / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    profile_d = base / "profile.d"
    profile_d.mkdir()
    env = dict(tool_env(base / "state"), SQLITE_PROVISION_TEST_SYSTEMD_DIR=str(base / "systemd"),
               SQLITE_PROVISION_TEST_LD_SO_CONF_DIR=str(base / "ld.so.conf.d"))  # fmt: skip
    run = run_cli(
        ["install", "--mirror", sqlite_mirror.url, "--version", VERSION, "--json",
         "--prefix-root", str(base / "opt"), "--profile-file", str(profile_d / "sqlite.sh"),
         "--python", PYTHON, "--venv", str(venv), "--systemd-unit", "myapp",
         "--env-file", str(base / "sqlite.env"), "--ld-so-conf"],
        env,
    )  # fmt: skip
    assert run.proc.returncode == 0, run.describe()
    for path in [base, *base.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    conf = base / "ld.so.conf"
    conf.write_text(f"include {base}/ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf.d/*.conf\n")
    ld_cache = base / "ld.so.cache"
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    subprocess.run([ldconfig, "-X", "-C", str(ld_cache), "-f", str(conf)], check=True)
    try:
        yield World(base, profile_d / "sqlite.sh", profile_d, venv / "bin" / "python",
                    base / "systemd" / "myapp.service.d" / "sqlite-provision.conf",
                    base / "sqlite.env", ld_cache)  # fmt: skip
    finally:
        shutil.rmtree(str(base), ignore_errors=True)


# --- each kind of process, with one activation in force ---------------------------------------


def loaded(argv: List[str], env: Dict[str, str], world: World, column: str, **kw: object) -> str:
    """The SQLite version the command prints, run in a namespace where only --ld-so-conf's
    cache (for that column) is bound; the login shell binds its /etc/profile.d too."""
    binds: Dict[Path, Path] = dict(kw.pop("binds", {}) or {})  # type: ignore[call-overload]
    if column == "ld-so-conf":
        binds[Path("/etc/ld.so.cache")] = world.ld_cache
    proc = in_namespace(argv, env=env, binds=binds, **kw)  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def python_for(world: World, column: str) -> str:
    return str(world.venv_python) if column == "venv" else SYSTEM_PYTHON


def login_shell(world: World, column: str) -> str:
    binds = {Path("/etc/profile.d"): world.profile_d} if column == "profile" else {}
    return loaded(["bash", "-l", "-c", f'exec "{python_for(world, column)}" -c "{SHOW}"'],
                  {"HOME": "/root", "TERM": "dumb"}, world, column, binds=binds)  # fmt: skip


def systemd_service(world: World, column: str) -> str:
    env = {"PATH": SYSTEMD_PATH}
    if column == "unit":
        env.update(world.dropin_env())
    if column == "env-file":  # the unit says EnvironmentFile=FILE
        env.update(world.env_file_env())
    return loaded([python_for(world, column), "-c", SHOW], env, world, column)


def cron_job(world: World, column: str) -> str:
    command = f'exec "{python_for(world, column)}" -c "{SHOW}"'
    if column == "env-file":  # the job reads it, as the README says
        command = f'set -a; . "{world.env_file}"; set +a; {command}'
    return loaded(["/bin/sh", "-c", command], dict(CRON_ENV), world, column)


def sudo(world: World, column: str) -> str:
    """sudo, from a shell that has the snippet's LD_LIBRARY_PATH (and the env file's, and the
    unit's: whatever the caller had)."""
    caller = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    caller.update(world.dropin_env())
    command = f'. "{world.profile}"; exec sudo "{python_for(world, column)}" -c "{SHOW}"'
    return loaded(["/bin/sh", "-c", command], caller, world, column)


def empty_environment(world: World, column: str) -> str:
    return loaded([python_for(world, column), "-c", SHOW], {}, world, column)


def another_user(world: World, column: str) -> str:
    return loaded([python_for(world, column), "-c", SHOW], {}, world, column, nobody=True)


def package_tools(world: World, column: str) -> str:
    """The interpreter /usr/bin/dnf names, started as dnf is from a login shell; with a venv
    bound, dnf still runs on its own interpreter, not the venv's."""
    dnf = shutil.which("dnf")
    need(dnf, "dnf (apt-get install dnf)")
    interpreter = Path(str(dnf)).read_text(errors="replace").splitlines()[0][2:].split()
    command = f'exec {" ".join(interpreter)} -c "{SHOW}"'
    if column == "profile":
        command = f'. "{world.profile}"; {command}'
    return loaded(["/bin/sh", "-c", command], {"PATH": "/usr/bin:/bin"}, world, column)


ROWS = {
    "a login shell (ssh, `su -`, `bash -l`)": login_shell,
    "a systemd service": systemd_service,
    "a cron job": cron_job,
    "`sudo`": sudo,
    "an empty environment (`env -i`)": empty_environment,
    "another user's process": another_user,
    "the host's package tools (dnf, yum, rpm)": package_tools,
}


def test_the_readme_table_has_every_row_and_column() -> None:
    table = readme_table()
    assert list(table) == list(ROWS)
    assert all(set(cells) == set(COLUMNS) for cells in table.values()), table
    assert all(v in ("yes", "no") for cells in table.values() for v in cells.values()), table


@pytest.mark.parametrize("row", list(ROWS))
def test_each_cell_is_what_really_loads(world: World, row: str) -> None:
    expected = readme_table()[row]
    system = loaded([SYSTEM_PYTHON, "-c", SHOW], {}, world, "none")
    assert system != VERSION
    seen: Dict[str, str] = {}
    for column in COLUMNS:
        version = ROWS[row](world, column)
        assert version in (VERSION, system), (row, column, version)
        seen[column] = "yes" if version == VERSION else "no"
    assert seen == expected, f"README row {row!r} says {expected}, processes show {seen}"
