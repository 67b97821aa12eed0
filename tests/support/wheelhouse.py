"""The tool as users get it: its wheel built from this checkout, with its dependencies and pip,
as a folder that `pip install --no-index --find-links DIR sqlite-provision` installs offline.
Built once per pytest session for each python, and shared by the pseudo-RHEL, Ansible and
cloud-init tests.
"""

# Dict/Optional rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List

from support import REPO_ROOT

_built: Dict[str, Path] = {}
_lock = threading.Lock()


def _run(argv: List[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            "{} exited {}:\n{}{}".format(" ".join(argv), proc.returncode, proc.stdout, proc.stderr)
        )


def wheelhouse(base: Path, python: str = sys.executable) -> Path:
    """base/wheels-N: the tool's wheel and every wheel it needs, for `python` (which need not
    have pip: it runs pip from pip's own wheel, which pip supports). Built once per session for
    each kind of interpreter (pythons of the same version and platform share one)."""
    key = _interpreter(python)
    with _lock:
        if key in _built:
            return _built[key]
        directory = base / f"wheels-{len(_built)}"
        boot = base / f"pip-{len(_built)}"
        _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(boot), "pip"])
        pip = pip_wheel(boot)
        _run(
            [
                python,
                str(pip / "pip"),
                "wheel",
                "-q",
                "--disable-pip-version-check",
                "-w",
                str(directory),
                str(REPO_ROOT),
                "pip",
            ]
        )
        if not list(directory.glob("sqlite_provision-*.whl")):
            raise RuntimeError(f"pip wheel made no sqlite_provision wheel in {directory}")
        _built[key] = directory
        return directory


def _interpreter(python: str) -> str:
    """What decides which wheels fit: implementation, version and platform."""
    probe = "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())"
    proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def pip_wheel(directory: Path) -> Path:
    found = sorted(directory.glob("pip-*.whl"))
    if not found:
        raise RuntimeError(f"no pip wheel in {directory}")
    return found[-1]


def tool_wheel(directory: Path) -> Path:
    return sorted(directory.glob("sqlite_provision-*.whl"))[-1]
