"""Building dist/sqlite-provision.pyz for the tests, as scripts/build-pyz does it (the pinned
downloads are kept in build/pyz-downloads between runs)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from support import REPO_ROOT

DOWNLOADS = REPO_ROOT / "build" / "pyz-downloads"


def build_pyz(checkout: Path, out: Path) -> Path:
    """Run checkout's scripts/build-pyz into `out`; check what it prints and writes."""
    result = subprocess.run(
        [sys.executable, str(checkout / "scripts" / "build-pyz"), "--out", str(out),
         "--downloads", str(DOWNLOADS)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    pyz = out / "sqlite-provision.pyz"
    printed = result.stdout.split()[0]
    assert printed == hashlib.sha256(pyz.read_bytes()).hexdigest()
    assert (out / "sqlite-provision.pyz.sha256").read_text() == f"{printed}  {pyz.name}\n"
    return pyz
