"""How a test starts the tool: a launcher is the argv in front of the tool's arguments.

- `module`: `python -m sqlite_provision` from the dev venv (the tree's source, the venv's
  newest click): what the suite has always run.
- `script`: the console script pip installed (`sqlite-provision` beside the venv's python).
- `pyz-3.6`, `pyz-3.13`: the built dist/sqlite-provision.pyz (scripts/build-pyz, with the pinned
  click 8.0.4, jinja2 3.0.3, requests 2.27.1) run by pyenv's CPython 3.6 and 3.13, as hosts run
  it with their own python3 (RHEL 7/8's 3.6; the newest CPython).

`LAUNCHERS` is what the CLI and lifecycle tests are parametrized over (the `launcher` fixture in
tests/conftest.py): every command, its exit codes and its JSON, through each."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Tuple

from support import unavailable
from support.interpreters import need_interpreter

LAUNCHERS = ("module", "pyz-3.6", "pyz-3.13")
PYZ_PYTHONS = ("3.6", "3.13")


@dataclass(frozen=True)
class Launcher:
    name: str
    argv: Tuple[str, ...]
    python: str  # the interpreter the tool itself runs on

    @property
    def is_pyz(self) -> bool:
        return self.name.startswith("pyz-")


def module_launcher() -> Launcher:
    return Launcher("module", (sys.executable, "-m", "sqlite_provision"), sys.executable)


def script_launcher() -> Launcher:
    """The installed console script (scripts/test installs the project into .venv)."""
    script = Path(sys.executable).parent / "sqlite-provision"
    if not script.is_file():
        unavailable(f"{script} is missing: install the project (pip install -e .)")
    return Launcher("script", (str(script),), sys.executable)


def pyz_launcher(pyz: Path, minor: str) -> Launcher:
    python = need_interpreter(minor)
    return Launcher(f"pyz-{minor}", (python, str(pyz)), python)


def launcher_named(name: str, pyz: Callable[[], Path]) -> Launcher:
    """The launcher `name`; `pyz` builds (or returns the session's) pyz, only when needed."""
    if name == "module":
        return module_launcher()
    if name == "script":
        return script_launcher()
    if name.startswith("pyz-"):
        return pyz_launcher(pyz(), name[len("pyz-") :])
    raise ValueError(f"unknown launcher {name!r}")
