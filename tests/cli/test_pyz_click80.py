"""Layer 4, a regression: `uninstall --all` through the shipped pyz, under the click it pins
(scripts/pyz.lock: click 8.0.4, the last for Python 3.6), on CPython 3.6 and 3.13.

Click 8.0 reports a variadic argument that was not given (uninstall's `VERSION...`) as given on
the command line, with an empty tuple. The suite ran the newest click only, so `uninstall --all`
exited 2 ("VERSION and --all are mutually exclusive") on every host that runs the pyz, unseen.
These tests first prove that the pyz's click still behaves that way (else they would prove
nothing), then that the tool's answers are right under it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from support import REPO_ROOT
from support.clirun import Run, run_cli, tool_env
from support.launchers import PYZ_PYTHONS, Launcher, pyz_launcher

LOCK = REPO_ROOT / "scripts" / "pyz.lock"

# A command shaped like `uninstall`, run with the pyz's own vendored click: prints the version
# of click and where `--all` alone leaves the variadic argument (its value and its source).
PROBE = """\
import sys
sys.path.insert(0, sys.argv[1] + "/_vendor")
import click

@click.command()
@click.argument("versions", nargs=-1)
@click.option("--all", "remove_all", is_flag=True)
@click.pass_context
def uninstall(ctx, versions, remove_all):
    print(click.__version__, repr(versions), ctx.get_parameter_source("versions").name)

uninstall(["--all"])
"""


def locked_click() -> str:
    found = re.search(r"^click==(\S+) ", LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, f"{LOCK} pins no click"
    return found.group(1)


@pytest.fixture(scope="module", params=PYZ_PYTHONS, ids=[f"pyz-{m}" for m in PYZ_PYTHONS])
def launcher(request: pytest.FixtureRequest, pyz: Path) -> Launcher:
    return pyz_launcher(pyz, request.param)


def run(launcher: Launcher, tmp_path: Path, *args: str) -> Run:
    env: Dict[str, str] = tool_env(tmp_path / "state")
    env.update(HOME=str(tmp_path / "home"))
    places: List[str] = ["--prefix-root", str(tmp_path / "opt"),
                         "--profile-file", str(tmp_path / "p.sh")]  # fmt: skip
    return run_cli([*args, *places], env, timeout=120, command=launcher.argv)


def test_the_pyz_click_is_the_pinned_one_and_reports_an_absent_variadic_as_given(
    launcher: Launcher, pyz: Path
) -> None:
    # The probe runs click itself, whose 8.0 check refuses an ASCII locale (the tool switches
    # that check off, test_an_ascii_locale_...): give it a UTF-8 one.
    env = dict(os.environ, LC_ALL="C.UTF-8")
    proc = subprocess.run([launcher.python, "-c", PROBE, str(pyz)], capture_output=True,
                          text=True, timeout=60, check=False, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    version, value, source = proc.stdout.split()
    assert version == locked_click()
    assert value == "()"
    assert source == "COMMANDLINE", (
        f"click {version} no longer reports an absent VERSION... as given: this regression "
        "test no longer runs under the click that had the defect; adapt or retire it"
    )


def test_uninstall_all_with_nothing_installed_exits_0(launcher: Launcher, tmp_path: Path) -> None:
    done = run(launcher, tmp_path, "uninstall", "--all", "--json")
    assert done.proc.returncode == 0, done.describe()
    data = done.data
    assert data["ok"] is True and data["changed"] is False
    assert data["removed_versions"] == [] and data["removed_activation"] == []
    assert "mutually exclusive" not in done.proc.stderr
    text = run(launcher, tmp_path, "uninstall", "--all")
    assert text.proc.returncode == 0, text.describe()
    assert not (tmp_path / "opt").exists() and not (tmp_path / "p.sh").exists()


def test_a_version_and_all_are_still_refused(launcher: Launcher, tmp_path: Path) -> None:
    refused = run(launcher, tmp_path, "uninstall", "3.44.2", "--all")
    assert refused.proc.returncode == 2, refused.describe()
    assert "VERSION and --all are mutually exclusive" in refused.proc.stderr
    assert refused.proc.stdout == ""
    as_json = run(launcher, tmp_path, "uninstall", "3.44.2", "--all", "--json")
    assert as_json.proc.returncode == 2, as_json.describe()
    data = json.loads(as_json.proc.stdout)
    assert data["ok"] is False and data["exit_code"] == 2
    assert "mutually exclusive" in data["error"]


def test_uninstall_with_neither_a_version_nor_all_is_a_usage_error(
    launcher: Launcher, tmp_path: Path
) -> None:
    """The other side of the same fix: an absent VERSION... is absent, so a bare `uninstall`
    has nothing to remove and says so (exit 2), under click 8.0 as under the newest."""
    bare = run(launcher, tmp_path, "uninstall", "--json")
    assert bare.proc.returncode == 2, bare.describe()
    assert bare.data["exit_code"] == 2


@pytest.mark.parametrize("locale", ["C", "POSIX", None], ids=["LC_ALL=C", "LC_ALL=POSIX", "unset"])
def test_an_ascii_locale_is_no_obstacle(launcher: Launcher, tmp_path: Path, locale: str) -> None:
    """cron, cloud-init and `env -i` start the tool with no locale, or C: Python 3.6 then
    reports ASCII, and click 8.0 refused to run at all (exit 1, "internal error: RuntimeError:
    Click will abort further execution"). The tool runs, and what it says arrives whole."""
    env: Dict[str, str] = tool_env(tmp_path / "state")
    env = {
        k: v for k, v in env.items() if k not in ("LANG", "LANGUAGE") and not k.startswith("LC_")
    }
    if locale is not None:
        env["LC_ALL"] = locale
    listed = run_cli(["versions", "--json"], env, timeout=120, command=launcher.argv)
    assert listed.proc.returncode == 0, listed.describe()
    assert "Click will abort" not in listed.proc.stderr
    assert "3.44.2" in listed.proc.stdout
    # A message that carries what the user typed, bytes outside ASCII included: exit 2, said.
    odd = run_cli(["install", "--dry-run", "--prefix-root", "/tmp/pr\u00f6v"], env, timeout=120,
                  command=launcher.argv)  # fmt: skip
    assert odd.proc.returncode == 2, odd.describe()
    assert "--prefix-root" in odd.proc.stderr and "internal error" not in odd.proc.stderr
