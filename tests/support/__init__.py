"""What the tests share: the loopback mirror, running the CLI, snapshots of the host, the RHEL
look-alikes, the fault matrix's host, and the wheelhouse. Not tests themselves.

Here too the one rule for what a test lacks: it skips, but under CI=true, where every test must
run (.ci/run installs what they need), it fails."""

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
TESTS_DIR = REPO_ROOT / "tests"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """A missing tool, interpreter, file or capability: skip, but fail under CI=true."""
    if in_ci():
        pytest.fail(reason + " (CI=true: this test must not skip; .ci/run must provide it)")
    pytest.skip(reason)


def need(thing: object, what: str) -> None:
    if not thing:
        unavailable(what)


def need_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        unavailable(f"{name} is not installed")
    return found
