"""Layer 5: every command's --json is one object with the envelope `ok`, `changed` and
`exit_code`, whose exit code is the process's, through each launcher (`python -m
sqlite_provision`, and the shipped pyz on CPython 3.6 and 3.13 with its pinned click 8.0.4).

One host per launcher goes through every command in turn, each with --dry-run where it has one:
`versions`, `status`, failures before anything is installed (a usage error of the tool's and one
of click's, a refused rollback, a download that fails, a verify that fails), then the session's
two real builds installed with `install --artifact`, a re-run, `verify`, a rollback and two
uninstalls. The table says the exit code and `changed` each must give. `build` runs for real in
the session's `artifacts` fixture (its JSON read through the same envelope check,
support/clirun.py); here its dry run and a failed build. The locale is C with no LANG: the pyz
on 3.6 must answer all the same (click 8.0 refuses an ASCII locale unless the tool sees to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from support.artifacts import Artifact
from support.clirun import PYTHON, Run, check_envelope, run_cli, tool_env
from support.launchers import Launcher
from support.mirror import Mirror

pytestmark = pytest.mark.integration

# (what, arguments, exit code, changed); {places} is --prefix-root and --profile-file,
# {a3442}/{a3520} the session's artifacts, {mirror} an empty mirror (every download is a 404).
STEPS: List[Tuple[str, List[str], int, bool]] = [
    ("versions", ["versions"], 0, False),
    ("status, nothing installed", ["status", "{places}", "--python", PYTHON], 0, False),
    ("uninstall naming nothing", ["uninstall", "{places}"], 2, False),
    ("an option click does not know", ["status", "--frobnicate"], 2, False),
    ("rollback, nothing installed", ["rollback", "{places}", "--python", PYTHON], 3, False),
    ("rollback --dry-run, nothing installed", ["rollback", "--dry-run", "{places}"], 3, False),
    ("install, a download that fails", ["install", "--version", "3.44.2", "--mirror", "{mirror}",
                                        "{places}", "--python", PYTHON], 4, False),
    ("build, a download that fails", ["build", "--version", "3.44.2", "--mirror", "{mirror}",
                                      "--artifact", "{root}/out.tar.gz"], 4, False),
    ("build --dry-run", ["build", "--dry-run", "--version", "3.44.2", "--mirror", "{mirror}",
                         "--artifact", "{root}/out.tar.gz"], 0, False),
    ("verify, nothing installed", ["verify", "{places}", "--python", PYTHON], 6, False),
    ("install --dry-run", ["install", "--dry-run", "--artifact", "{a3442}", "{places}",
                           "--python", PYTHON], 0, False),
    ("install 3.44.2", ["install", "--artifact", "{a3442}", "{places}", "--python", PYTHON],
     0, True),
    ("install 3.44.2 again", ["install", "--artifact", "{a3442}", "{places}", "--python",
                              PYTHON], 0, False),
    ("install 3.52.0", ["install", "--artifact", "{a3520}", "{places}", "--python", PYTHON],
     0, True),
    ("verify", ["verify", "{places}", "--python", PYTHON], 0, False),
    ("verify, too old", ["verify", "{places}", "--python", PYTHON, "--min-version", "3.99.0"],
     6, False),
    ("status", ["status", "{places}", "--python", PYTHON], 0, False),
    ("rollback --dry-run", ["rollback", "--dry-run", "{places}", "--python", PYTHON], 0, False),
    ("rollback", ["rollback", "{places}", "--python", PYTHON], 0, True),
    ("uninstall current", ["uninstall", "3.44.2", "{places}"], 3, False),
    ("uninstall --dry-run", ["uninstall", "3.52.0", "--dry-run", "{places}"], 0, False),
    ("uninstall 3.52.0", ["uninstall", "3.52.0", "{places}"], 0, True),
    ("uninstall --all --dry-run", ["uninstall", "--all", "--dry-run", "{places}"], 0, False),
    ("uninstall --all", ["uninstall", "--all", "{places}"], 0, True),
    ("uninstall --all, nothing left", ["uninstall", "--all", "{places}"], 0, False),
]  # fmt: skip


@pytest.fixture(scope="module")
def empty_mirror() -> Iterator[Mirror]:
    with Mirror() as served:
        yield served


def c_locale(env: Dict[str, str]) -> Dict[str, str]:
    """The environment of cron or `env -i`: no LANG, no LC_*, the C locale."""
    kept = {k: v for k, v in env.items() if not k.startswith(("LC_", "LANG"))}
    return dict(kept, LC_ALL="C")


def test_every_command_answers_one_envelope(
    launcher: Launcher,
    artifacts: Dict[str, Artifact],
    empty_mirror: Mirror,
    tmp_path: Path,
) -> None:
    root = tmp_path / "host"
    (root / "tmp").mkdir(parents=True)
    env = c_locale(tool_env(root / "state"))
    env.update(
        TMPDIR=str(root / "tmp"),
        HOME=str(root / "home"),
        SQLITE_PROVISION_TEST_SYSTEMD_DIR=str(root / "etc" / "systemd" / "system"),
        SQLITE_PROVISION_TEST_LD_SO_CONF_DIR=str(root / "etc" / "ld.so.conf.d"),
    )
    values = {
        "root": str(root),
        "mirror": empty_mirror.url,
        "a3442": str(artifacts["3.44.2"].path),
        "a3520": str(artifacts["3.52.0"].path),
    }
    wrong: List[str] = []
    codes = set()
    for what, args, code, changed in STEPS:
        argv: List[str] = []
        for arg in args:
            if arg == "{places}":
                argv += ["--prefix-root", f"{root}/opt", "--profile-file", f"{root}/p.sh"]
            else:
                argv.append(arg.format(**values))
        run = run_cli([*argv, "--json"], env, timeout=300, command=launcher.argv)
        problem = judged(run, code, changed)
        if problem:
            wrong.append(f"{what}: {problem}\n{run.describe()}")
        codes.add(code)
    assert wrong == [], f"{launcher.name}:\n" + "\n".join(wrong)
    assert codes == {0, 2, 3, 4, 6}


def judged(run: Run, code: int, changed: bool) -> str:
    """What is wrong with a run that should exit `code` having `changed` the host, if anything."""
    if run.proc.returncode != code:
        return f"exit {run.proc.returncode}, expected {code}"
    if "Traceback" in run.proc.stderr:
        return "a traceback"
    data = run.data  # exactly one JSON object, with the envelope (check_envelope)
    check_envelope(data, code)
    if data["changed"] is not changed:
        return f"changed is {data['changed']}, expected {changed}"
    return ""
