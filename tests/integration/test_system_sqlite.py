"""The look-alike hosts' system libraries (support/system_sqlite.py): RHEL 7's 3.7.17 and RHEL 8's
3.26.0 build with their spec flags, and the host pythons of those releases load them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import unavailable
from support.interpreters import interpreter
from support.system_sqlite import RELEASES, build_system_sqlite


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_built_with_the_spec_flags_and_loaded_by_python36(version: str, tmp_path: Path) -> None:
    library = build_system_sqlite(version, tmp_path / "sys")
    assert library.is_file() and os.path.realpath(library).endswith(".so.0.8.6")
    python = interpreter("3.6") or unavailable("no CPython 3.6 under pyenv")
    seen = subprocess.run(
        [python, "-c", "import sqlite3; print(sqlite3.sqlite_version)"],
        env={"LD_LIBRARY_PATH": str(library.parent), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == version
