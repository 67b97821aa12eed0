"""Running the real CLI in a subprocess, as the integration and fault tests do."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from support.launch import INJECTED

PYTHON = sys.executable
LAUNCH = Path(__file__).resolve().parent / "launch.py"


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def data(self) -> Dict[str, Any]:
        """The one JSON object of a --json run, whose envelope says what the process did."""
        try:
            data = dict(json.loads(self.proc.stdout))
        except ValueError:
            pytest.fail("stdout is not one JSON object:\n" + self.describe())
        check_envelope(data, self.proc.returncode, self.describe())
        return data

    def describe(self) -> str:
        p = self.proc
        return f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"

    def step(self, name: str) -> Dict[str, Any]:
        for step in self.data["steps"]:
            if step["name"] == name:
                return dict(step)
        pytest.fail(f"no step {name!r} in:\n" + self.describe())


def check_envelope(data: Dict[str, Any], returncode: int, describe: str = "") -> None:
    """Every --json answer: `ok`, `changed` and `exit_code`, which is the process's exit
    code; a failure changed nothing and says why in `error`."""
    assert {"ok", "changed", "exit_code", "error"} <= set(data), describe
    assert data["exit_code"] == returncode, describe
    assert data["ok"] is (returncode == 0), describe
    assert isinstance(data["changed"], bool), describe
    if not data["ok"]:
        assert data["changed"] is False and isinstance(data["error"], str), describe


_PYZ_CACHE: List[str] = []


def pyz_cache() -> str:
    """One bytecode cache of the pyz for the whole session (src/sqlite_provision/pyz_boot.py),
    outside every test's state directory: a run through the pyz unpacks it once, not once per
    test, and the checks that a dry run or a refusal writes nothing under the state directory
    keep their meaning. Made 0700 under the sticky /tmp, so the boot trusts it."""
    if not _PYZ_CACHE:
        _PYZ_CACHE.append(tempfile.mkdtemp(prefix="sqlite-provision-test-pyz-"))
        atexit.register(shutil.rmtree, _PYZ_CACHE[0], True)
    return _PYZ_CACHE[0]


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
        SQLITE_PROVISION_PYZ_CACHE=pyz_cache(),
        CFLAGS="-O0",
    )
    if path is not None:
        env["PATH"] = path
    return env


def injected(argv: Sequence[str], env: Dict[str, str]) -> List[str]:
    """argv, started so that the tool gets what `env` injects (SQLITE_PROVISION_TEST_*: a crash
    point, the host's places, a fetch policy): through the tests' launcher (support/launch.py),
    since the shipped tool reads none of those variables. `python -m sqlite_provision ...` and
    `python PYZ ...` can go through it; another command with injected variables is an error in
    the test (the tool would ignore them, and write to the real places)."""
    argv = [str(a) for a in argv]
    names = sorted(name for name in INJECTED if name in env)
    if not names:
        return argv
    if argv[1:3] == ["-m", "sqlite_provision"]:
        return [argv[0], str(LAUNCH), *argv[3:]]
    if len(argv) > 1 and argv[1].endswith(".pyz"):
        return [argv[0], str(LAUNCH), "--pyz", argv[1], *argv[2:]]
    raise AssertionError(f"{', '.join(names)} cannot be given to {argv[:2]}: only the launcher "
                         "(python -m sqlite_provision, python PYZ) takes them")  # fmt: skip


def run_cli(
    args: Sequence[str],
    env: Dict[str, str],
    timeout: float = 300,
    *,
    command: Optional[Sequence[str]] = None,
    umask: Optional[int] = None,
    as_shipped: bool = False,
) -> Run:
    """The tool with args, from `python -m sqlite_provision` or another command line (a
    launcher, another user), optionally under another umask. What `env` injects goes through
    the tests' launcher (`injected`), unless `as_shipped`: then the command runs as given, to
    show that the shipped tool ignores those variables."""
    argv = list(command) if command is not None else [PYTHON, "-m", "sqlite_provision"]
    argv += [str(a) for a in args]
    if not as_shipped:
        argv = injected(argv, env)
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )
    return Run(proc, time.monotonic() - started)


_STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")
_WHERE = re.compile(r"  \(in [^)]*\)$")


def logged_commands(log: Path) -> Dict[str, List[Tuple[str, Optional[int]]]]:
    """The commands a run's log records, by step (those before the first step under ""), each
    with the exit status logged after it. A command runs from its `$ ` to the next stamped line
    (a script given with -c keeps its own lines); its exit status is the next `exit status N`."""
    found: Dict[str, List[Tuple[str, Optional[int]]]] = {"": []}
    step = ""
    command: Optional[List[str]] = None
    for line in log.read_text(encoding="utf-8").splitlines():
        if not _STAMP.match(line):
            if command is not None:
                command.append(line)
            continue
        text = _STAMP.sub("", line)
        if command is not None:
            found[step].append((_WHERE.sub("", "\n".join(command)), None))
            command = None
        status = re.match(r"exit status (-?\d+)$", text)
        if status and found[step] and found[step][-1][1] is None:
            found[step][-1] = (found[step][-1][0], int(status.group(1)))
        elif text.startswith("== step "):
            step = text[len("== step ") :].split(":", 1)[0]
            found.setdefault(step, [])
        elif text.startswith("$ "):
            command = [text[len("$ ") :]]
    if command is not None:
        found[step].append((_WHERE.sub("", "\n".join(command)), None))
    return found


def check_plan_ran(plan: Dict[str, Any], log: Path, ran: Optional[Sequence[str]] = None) -> None:
    """What `--dry-run --json` printed is what the run did: for each step that ran (all of them,
    unless `ran` names them), its commands are the ones the run's log records, in order, each
    with exit status 0; and the log records no command of a step that the plan did not show.
    Steps of one name (two versions removed) are compared together, as the log groups them."""
    logged = logged_commands(log)
    names = [step["name"] for step in plan["steps"]]
    ran = names if ran is None else ran
    shown: Dict[str, List[str]] = {}
    for step in plan["steps"]:
        if step["name"] in ran:
            shown.setdefault(step["name"], []).extend(step["commands"])
    assert [name for name in logged if name] == [n for n in dict.fromkeys(names) if n in logged]
    for name, commands in shown.items():
        assert [command for command, _ in logged.get(name, [])] == commands, name
        assert all(status == 0 for _, status in logged.get(name, [])), logged[name]
    assert sum(len(v) for k, v in logged.items() if k) == sum(len(v) for v in shown.values())


def newest_log(log_dir: Path, command: str) -> Path:
    """The log file of the last run of `command` (its name starts with the command)."""
    found = sorted(log_dir.glob(f"{command}-*.log"), key=lambda p: p.stat().st_mtime)
    assert found, f"no {command} log in {log_dir}"
    return found[-1]
