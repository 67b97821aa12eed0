"""Running the real CLI in a subprocess, as the integration and fault tests do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import pytest

PYTHON = sys.executable


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def data(self) -> Dict[str, Any]:
        try:
            return dict(json.loads(self.proc.stdout))
        except ValueError:
            pytest.fail("stdout is not one JSON object:\n" + self.describe())

    def describe(self) -> str:
        p = self.proc
        return f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"

    def step(self, name: str) -> Dict[str, Any]:
        for step in self.data["steps"]:
            if step["name"] == name:
                return dict(step)
        pytest.fail(f"no step {name!r} in:\n" + self.describe())


def tool_env(state: Path, path: Optional[str] = None) -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SQLITE_PROVISION_") and k != "LD_LIBRARY_PATH"
    }
    env.update(
        SQLITE_PROVISION_CACHE_DIR=str(state / "cache"),
        SQLITE_PROVISION_LOG_DIR=str(state / "log"),
        SQLITE_PROVISION_LOCK_FILE=str(state / "lock"),
        CFLAGS="-O0",
    )
    if path is not None:
        env["PATH"] = path
    return env


def run_cli(args: Sequence[str], env: Dict[str, str], timeout: float = 300) -> Run:
    started = time.monotonic()
    proc = subprocess.run(
        [PYTHON, "-m", "sqlite_provision", *[str(a) for a in args]],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc, time.monotonic() - started)
