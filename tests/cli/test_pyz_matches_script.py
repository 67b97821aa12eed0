"""Layer 4: the installed console script and the shipped pyz (on CPython 3.6 and 3.13, with the
pinned click 8.0.4, jinja2 3.0.3 and requests 2.27.1) answer the same command line alike: the
same exit code, and, with --json, one JSON object with the same keys at every level.

Each case runs in a fresh temporary root with nothing installed: successes, the tool's own
usage errors, click's usage errors, refusals and failures. The exit code each case must give is
in the table too, so that three launchers failing alike cannot pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

from support.clirun import PYTHON, Run, run_cli, tool_env
from support.launchers import Launcher, pyz_launcher, script_launcher
from support.mirror import Mirror

# (name, arguments, exit code); in the arguments {root} is the case's empty host root (a
# --prefix-root, --profile-file pair is {places}), {mirror} an empty loopback mirror (every
# download is a 404).
CASES: List[Tuple[str, List[str], int]] = [
    ("versions", ["versions", "--json"], 0),
    ("versions-text", ["versions"], 0),
    ("version-flag", ["--version"], 0),
    ("install-dry-run", ["install", "--dry-run", "--json", "--version", "3.44.2",
                         "--mirror", "{mirror}", "{places}", "--python", PYTHON], 0),
    ("build-dry-run", ["build", "--dry-run", "--json", "--version", "3.44.2", "--mirror",
                       "{mirror}", "--artifact", "{root}/out.tar.gz"], 0),
    ("status", ["status", "--json", "{places}", "--python", PYTHON], 0),
    ("uninstall-all-empty", ["uninstall", "--all", "--json", "{places}"], 0),
    ("uninstall-version-and-all", ["uninstall", "3.44.2", "--all", "--json", "{places}"], 2),
    ("uninstall-nothing", ["uninstall", "--json", "{places}"], 2),
    ("uninstall-not-installed", ["uninstall", "3.44.2", "--json", "{places}"], 3),
    ("rollback-nothing", ["rollback", "--json", "{places}", "--python", PYTHON], 3),
    ("verify-nothing", ["verify", "--json", "{places}", "--python", PYTHON], 6),
    ("unknown-command", ["frobnicate", "--json"], 2),
    ("unknown-option", ["install", "--frobnicate", "--json"], 2),
    ("jobs-zero", ["install", "--jobs", "0", "--json"], 2),
    ("no-such-tarball", ["install", "--tarball", "/nonexistent.tar.gz", "--json"], 2),
    ("bad-version", ["install", "--version", "3.24", "--json", "{places}"], 2),
    ("conflict-text", ["install", "--no-profile", "--profile-file", "{root}/p.sh"], 2),
    ("withdrawn", ["install", "--version", "3.52.0", "--json", "{places}", "--python", PYTHON], 2),
    ("no-checksum", ["install", "--version", "3.25.0", "--json", "{places}", "--python", PYTHON],
     4),
    ("download-404", ["install", "--version", "3.44.2", "--mirror", "{mirror}", "--json",
                      "{places}", "--python", PYTHON], 4),
]  # fmt: skip


def key_paths(value: Any, at: str = "") -> Set[str]:
    """Every key of a JSON value with its path: {"a": [{"b": 1}]} -> {"a", "a[].b"}."""
    found: Set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(at + key)
            found |= key_paths(item, f"{at}{key}.")
    elif isinstance(value, list):
        for item in value:
            found |= key_paths(item, at.rstrip(".") + "[].")
    return found


def run_case(args: List[str], launcher: Launcher, base: Path, mirror: Mirror) -> Run:
    root = base / launcher.name
    (root / "tmp").mkdir(parents=True)
    argv: List[str] = []
    for arg in args:
        if arg == "{places}":
            argv += ["--prefix-root", f"{root}/opt", "--profile-file", f"{root}/p.sh"]
        else:
            argv.append(arg.format(root=root, mirror=mirror.url))
    env = dict(tool_env(root / "state"), HOME=str(root / "home"), TMPDIR=str(root / "tmp"))
    return run_cli(argv, env, timeout=120, command=launcher.argv)


def json_of(run: Run) -> Optional[Dict[str, Any]]:
    """The one JSON object on stdout with --json, else None (and stdout must not be JSON)."""
    if "--json" not in run.proc.args:
        return None
    value = json.loads(run.proc.stdout)
    assert isinstance(value, dict), run.describe()
    return value


@pytest.fixture(scope="module")
def launchers(pyz: Path) -> List[Launcher]:
    return [script_launcher(), pyz_launcher(pyz, "3.6"), pyz_launcher(pyz, "3.13")]


@pytest.mark.parametrize("args, code", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_pyz_answers_like_the_installed_script(
    launchers: List[Launcher], mirror: Mirror, tmp_path: Path, args: List[str], code: int
) -> None:
    runs = {launcher.name: run_case(args, launcher, tmp_path, mirror) for launcher in launchers}
    script = runs.pop("script")
    assert script.proc.returncode == code, script.describe()
    assert "Traceback" not in script.proc.stderr, script.describe()
    expected = json_of(script)
    if expected is not None:  # the envelope: every --json answer, success or failure
        assert expected["ok"] is (code == 0) and expected["exit_code"] == code, script.describe()
        assert isinstance(expected["changed"], bool), script.describe()
    for name, run in runs.items():
        assert run.proc.returncode == code, f"{name}: {run.describe()}"
        assert "Traceback" not in run.proc.stderr, f"{name}: {run.describe()}"
        got = json_of(run)
        if expected is None or got is None:
            assert (expected is None) == (got is None), name
            continue
        assert key_paths(got) == key_paths(expected), (
            f"{name}: JSON keys differ from the installed script's: only in the pyz "
            f"{sorted(key_paths(got) - key_paths(expected))}, only in the script "
            f"{sorted(key_paths(expected) - key_paths(got))}"
        )
        assert got["exit_code"] == code, name
    if code != 0:
        assert expected is None or expected["ok"] is False
