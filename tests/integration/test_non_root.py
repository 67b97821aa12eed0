"""A user without root, after root has run the tool: they install into their own home and bind
their own venv, with every default of the tool's own (cache, log, lock) per user and no
SQLITE_PROVISION_* variable set; their venv's python then loads the new SQLite in an empty
environment. The summary says the truth about their snippet: nothing reads it yet.

The user is `nobody` (through setpriv) with a home of its own in a directory every user can
reach; the tool is the session's pyz on Debian's /usr/bin/python3.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from support import need
from support.clirun import tool_env
from support.faults import world_dir
from support.mirror import Mirror
from support.users import in_namespace

VERSION = "3.44.2"
ROOT_LOCK = Path("/run/lock/sqlite-provision.lock")


def test_a_user_installs_and_binds_their_own_venv_after_root_ran_the_tool(
    pyz: Path, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    need(os.path.isdir("/run/lock"), "/run/lock")
    had_root_lock = ROOT_LOCK.exists()
    base = world_dir("sqlite-provision-user-")
    try:
        # Root runs the tool with its default lock: a rollback with nothing to roll back takes
        # the lock, then stops (exit 3). The lock file is root's from then on.
        env = {
            k: v
            for k, v in tool_env(tmp_path / "root").items()
            if k != "SQLITE_PROVISION_LOCK_FILE"
        }
        root = subprocess.run(["python3", str(pyz), "rollback", "--prefix-root",
                               str(tmp_path / "opt"), "--profile-file", str(tmp_path / "p.sh")],
                              env=env, capture_output=True, text=True, check=False)  # fmt: skip
        assert root.returncode == 3, root.stderr
        assert ROOT_LOCK.exists() and ROOT_LOCK.stat().st_uid == 0

        home = base / "home"
        home.mkdir()
        shutil.copy(str(pyz), str(base / "sqlite-provision.pyz"))
        os.chmod(str(base / "sqlite-provision.pyz"), 0o755)
        subprocess.run(["chown", "-R", "nobody", str(home)], check=True)
        user_env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "CFLAGS": "-O0"}

        def as_user(*argv: str) -> subprocess.CompletedProcess[str]:
            return in_namespace(list(argv), env=user_env, nobody=True, timeout=600)

        venv = home / "venv"
        assert as_user("/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)).returncode == 0
        tool = ["/usr/bin/python3", str(base / "sqlite-provision.pyz")]
        args = ["install", "--mirror", sqlite_mirror.url, "--version", VERSION, "--prefix-root",
                str(home / "opt"), "--profile-file", str(home / ".sqlite.sh"), "--venv", str(venv),
                "--python", "/usr/bin/python3"]  # fmt: skip
        first = as_user(*tool, *args, "--json")
        assert first.returncode == 0, first.stderr
        data = json.loads(first.stdout)
        assert data["changed"] is True and data["version"] == VERSION

        # Every default of the tool's own is the user's.
        assert (home / ".cache" / "sqlite-provision").is_dir()
        state = home / ".local" / "state" / "sqlite-provision"
        assert (state / "sqlite-provision.lock").is_file()
        assert Path(data["log_file"]).parent == state
        owners = {p.stat().st_uid for p in [home / "opt", state, venv / "pyvenv.cfg"]}
        assert owners == {65534}, owners

        loads = as_user(str(venv / "bin" / "python"), "-c",
                        "import sqlite3; print(sqlite3.sqlite_version)")  # fmt: skip
        assert loads.returncode == 0, loads.stderr
        assert loads.stdout.strip().splitlines()[-1] == VERSION

        again = as_user(*tool, *args)
        assert again.returncode == 0, again.stderr
        assert f"nothing reads {home / '.sqlite.sh'} yet" in again.stdout, again.stdout
        assert "new login shells get it" not in again.stdout
    finally:
        shutil.rmtree(str(base), ignore_errors=True)
        if not had_root_lock:
            ROOT_LOCK.unlink()
