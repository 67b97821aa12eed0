"""Compiler and make wrappers that record every call (its name, its uid, its arguments) and then
run the real tool, or fail: put first on PATH, they show whether, and as whom, a run compiled."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Tuple

NAMES = ("gcc", "cc", "c89", "c99", "make", "x86_64-linux-gnu-gcc")

Call = Tuple[str, int, str]  # (name, uid, arguments)


def recording_wrappers(directory: Path, record: Path, run_real: bool = True) -> str:
    """Write the wrappers into `directory`; return a PATH with them first. The record file is
    made writable for everyone (a build may run as another user)."""
    directory.mkdir(parents=True, exist_ok=True)
    record.touch()
    record.chmod(0o666)
    for name in NAMES:
        real = shutil.which(name)
        target = f'exec "{real}" "$@"' if real and run_real else "exit 1"
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\necho "{name} $(id -u) $*" >> "{record}"\n{target}\n')
        wrapper.chmod(0o755)
    directory.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def calls(record: Path) -> List[Call]:
    found = []
    if record.exists():
        for line in record.read_text().splitlines():
            name, uid, args = [*line.split(" ", 2), "", ""][:3]
            found.append((name, int(uid), args))
    return found
