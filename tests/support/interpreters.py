"""The real CPython interpreters these machines have under pyenv (2.7, 3.6, 3.7, ...), found by
version, never through pyenv's shims (which refuse versions that are not selected)."""

from __future__ import annotations

import glob
import os
import shutil
from typing import List, Optional


def pyenv_root() -> str:
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def interpreter(minor: str) -> Optional[str]:
    """The newest pyenv CPython `minor` (e.g. "3.6") as bin/pythonX.Y, else one on PATH."""
    found = sorted(
        glob.glob(os.path.join(pyenv_root(), "versions", f"{minor}.*", "bin", f"python{minor}"))
    )
    if found:
        return found[-1]
    on_path = shutil.which(f"python{minor}")
    return on_path if on_path and "shims" not in on_path else None


def old_pythons() -> List[str]:
    """The oldest pythons the verification must serve: 2.7 and 3.6 (RHEL 8's platform-python)."""
    return [p for p in (interpreter("2.7"), interpreter("3.6")) if p]


def need_interpreter(minor: str) -> str:
    """pyenv's CPython `minor`; skip without it, and fail under CI=true (a supported host
    python must be tested)."""
    from support import unavailable

    found = interpreter(minor)
    if found is None:
        unavailable(f"no CPython {minor} under pyenv ({minor} is a supported host python)")
    return found
