"""Virtual environments to bind (`--venv DIR`): where their site-packages is, and whether a
python of theirs, started with no environment at all, loads the provisioned library.

A venv's site-packages is read only by pythons started from that venv, never by the base
interpreter it was made from (the one dnf runs on): a hook there reaches the venv alone.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlite_provision.errors import UsageError
from sqlite_provision.runner import Runner

HOOK_NAME = "sqlite-provision-hook.pth"
# Runs on Python 2.7 and 3.6+: where this python installs pure modules (the venv's own).
SITE_SCRIPT = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


@dataclass(frozen=True)
class Venv:
    path: Path
    python: Path  # DIR/bin/python
    site_packages: Path

    @property
    def hook(self) -> Path:
        return self.site_packages / HOOK_NAME


def not_a_venv(path: Path, why: str) -> UsageError:
    return UsageError(
        f"--venv {path} is not a virtual environment: {why}",
        hint="pass the directory `python3 -m venv` (or virtualenv) created, the one holding "
        "pyvenv.cfg; the tool never writes into a base interpreter's own site-packages",
    )


def read_venv(runner: Runner, path: Path) -> Venv:
    """The venv at `path`, or exit 2: it must hold pyvenv.cfg and a python whose site-packages
    lies inside it."""
    if not (path / "pyvenv.cfg").is_file():
        raise not_a_venv(path, "no pyvenv.cfg")
    python = path / "bin" / "python"
    if not os.access(str(python), os.X_OK):
        raise not_a_venv(path, "no bin/python")
    answer = runner.capture([str(python), "-c", SITE_SCRIPT], env={}, timeout=60)
    site = Path(answer.stdout.strip()) if answer.returncode == 0 else None
    if site is None or not str(site).startswith(str(path).rstrip("/") + "/"):
        raise not_a_venv(path, f"its python reports site-packages {site or answer.stderr.strip()}")
    return Venv(path, python, site)


def hook_target(hook: Path) -> Optional[str]:
    """The library a hook file preloads (its `LIBRARY = ...` comment line), or None."""
    try:
        for line in hook.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("# library: "):
                return line[len("# library: ") :].strip()
    except OSError:
        return None
    return None
