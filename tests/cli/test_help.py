"""Layer 4: `--help` of build, rollback and uninstall, as a user runs it (through each launcher:
the module, and the pyz on CPython 3.6 and 3.13): exit 0, nothing on stderr, and an
"Examples:" block whose lines are commands of that very subcommand."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from support.clirun import pyz_cache, run_cli
from support.launchers import Launcher


def help_text(
    args: List[str], tmp_path: Path, launcher: Launcher
) -> subprocess.CompletedProcess[str]:
    env: Dict[str, str] = {
        k: v for k, v in os.environ.items() if not k.startswith("SQLITE_PROVISION_")
    }
    # --help writes nothing of the tool's own, but the pyz unpacks itself into its cache: the
    # session's, never the machine's /var/cache/sqlite-provision.
    env.update(HOME=str(tmp_path), TMPDIR=str(tmp_path), SQLITE_PROVISION_PYZ_CACHE=pyz_cache())
    return run_cli(args, env, timeout=60, command=launcher.argv).proc


def examples(stdout: str) -> List[str]:
    """The lines of the "Examples:" block (up to the next blank line), stripped; comment lines
    (starting with #) left out."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    assert len(starts) == 1, f"one Examples: block expected in:\n{stdout}"
    block = []
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            break
        block.append(line.strip())
    return [line for line in block if not line.startswith("#")]


# The subcommand, and an option its examples must show (the one that makes the command useful).
COMMANDS = {
    "build": "--artifact",
    "rollback": "--json",
    "uninstall": "--all",
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_shows_the_commands_examples(
    tmp_path: Path, launcher: Launcher, command: str, flag: str
) -> None:
    proc = help_text([command, flag], tmp_path, launcher)

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith(f"Usage: sqlite-provision {command} [OPTIONS]")
    shown = examples(proc.stdout)
    own = [line for line in shown if line.split()[:2] == ["sqlite-provision", command]]
    assert own, f"no example of `sqlite-provision {command}` in {shown}"
    assert any(COMMANDS[command] in line for line in own), own
    assert all(line.startswith("sqlite-provision ") for line in shown), shown


def test_uninstall_help_names_its_version_argument(tmp_path: Path, launcher: Launcher) -> None:
    proc = help_text(["uninstall", "--help"], tmp_path, launcher)
    assert proc.returncode == 0
    assert "Usage: sqlite-provision uninstall [OPTIONS] [VERSION]..." in proc.stdout
    assert "sqlite-provision uninstall 3.44.2" in examples(proc.stdout)
