"""The Ansible example (examples/ansible/), run by the real ansible-playbook on this machine
(`-i localhost, -c local`), against the loopback mirror, a temporary prefix and profile file,
at CFLAGS=-O0.

One module fixture runs the playbook four times: the tool-install tag alone, then the whole
play twice, then `--check` against a fresh prefix. The tests read those runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

from sqlite_provision.host.build_user import find_build_user
from sqlite_provision.runner import Runner
from sqlite_provision.steps.rpm import PackRpm
from sqlite_provision.store.rpm import build_rpm, package_recipe
from support import REPO_ROOT, need_tool, unavailable
from support.interpreters import interpreter
from support.mirror import Mirror
from support.rpm_lookalike import build_user_dir
from support.wheelhouse import tool_wheel, wheelhouse

pytestmark = pytest.mark.integration

PLAYBOOK = REPO_ROOT / "examples" / "ansible" / "site.yml"
VERSION = "3.44.2"
RECAP = re.compile(r"^localhost\s+:\s+(.*)$", re.MULTILINE)


@dataclass
class Play:
    proc: subprocess.CompletedProcess  # type: ignore[type-arg]
    seconds: float

    @property
    def recap(self) -> Dict[str, int]:
        found = RECAP.findall(self.proc.stdout)
        assert found, self.describe()
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", found[-1])}

    def describe(self) -> str:
        p = self.proc
        return f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"


@dataclass
class Plays:
    base: Path
    pyz: Path
    python: str
    wheels: Path
    prefix: Path
    profile: Path
    check_prefix: Path
    check_profile: Path
    tool_only: Play
    first: Play
    second: Play
    check: Play


def ansible_playbook() -> str:
    beside = Path(sys.executable).absolute().parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        unavailable("ansible-playbook is not installed (pip install ansible-core)")
    return str(found)


def play(base: Path, extra_vars: Dict[str, object], wheels: Path, *args: str) -> Play:
    vars_file = base / f"vars-{time.monotonic_ns()}.json"
    vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SQLITE_PROVISION_", "ANSIBLE_")) and k != "LD_LIBRARY_PATH"
    }
    env.update(
        ANSIBLE_HOME=str(base / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(base / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        # The play's pip task installs the wheel; its dependencies come from the wheelhouse.
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    started = time.monotonic()
    proc = subprocess.run(
        [
            ansible_playbook(),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(PLAYBOOK),
            "-e",
            f"@{vars_file}",
            *args,
        ],
        env=env,
        cwd=str(base),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return Play(proc, time.monotonic() - started)


def host_python() -> str:
    found = interpreter("3.6")
    if found is None:
        unavailable("no CPython 3.6 under pyenv: the host python the role runs the pyz on")
    return str(found)


def playbook_vars(
    base: Path, pyz: Path, python: str, mirror: Mirror, prefix: Path, profile: Path
) -> Dict[str, object]:
    return {
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,  # we are root already, and there may be no sudo
        "sqlite_provision_pyz": str(pyz),
        "sqlite_provision_pyz_dest": str(base / "libexec" / "sqlite-provision.pyz"),
        "sqlite_provision_python": python,
        "sqlite_provision_install_args": [
            "--version",
            VERSION,
            "--mirror",
            mirror.url,
            "--prefix",
            str(prefix),
            "--profile-file",
            str(profile),
        ],
        "sqlite_provision_environment": {
            "CFLAGS": "-O0",
            "SQLITE_PROVISION_CACHE_DIR": str(base / "cache"),
            "SQLITE_PROVISION_LOG_DIR": str(base / "log"),
        },
        "app_python": sys.executable,
    }


@pytest.fixture(scope="module")
def plays(sqlite_mirror: Mirror, pyz: Path, tmp_path_factory: pytest.TempPathFactory) -> Plays:
    ansible_playbook()
    base = tmp_path_factory.mktemp("ansible")
    python = host_python()
    wheels = wheelhouse(tmp_path_factory.mktemp("wheelhouse"), sys.executable)
    (base / "libexec").mkdir()
    prefix, profile = base / "sqlite", base / "profile.d" / "sqlite-provision.sh"
    check_prefix, check_profile = base / "check-sqlite", base / "check-profile.sh"
    main = playbook_vars(base, pyz, python, sqlite_mirror, prefix, profile)
    app_venv = base / "app-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(app_venv)], check=True)
    main["sqlite_provision_venvs"] = [str(app_venv)]
    dry = playbook_vars(base, pyz, python, sqlite_mirror, check_prefix, check_profile)
    done = Plays(
        base=base,
        pyz=pyz,
        python=python,
        wheels=wheels,
        prefix=prefix,
        profile=profile,
        check_prefix=check_prefix,
        check_profile=check_profile,
        tool_only=play(base, main, wheels, "--tags", "sqlite_provision_tool"),
        first=play(base, main, wheels),
        second=play(base, main, wheels),
        check=play(base, dry, wheels, "--check"),
    )
    print(
        "ansible-playbook: "
        + ", ".join(
            f"{name} {getattr(done, name).seconds:.1f}s"
            for name in ("tool_only", "first", "second", "check")
        )
    )
    return done


def test_the_tool_tag_copies_the_pyz_and_checks_it(plays: Plays) -> None:
    run = plays.tool_only
    assert run.proc.returncode == 0, run.describe()
    assert run.recap["changed"] == 1 and run.recap["failed"] == 0, run.describe()
    copied = plays.base / "libexec" / "sqlite-provision.pyz"
    assert copied.read_bytes() == plays.pyz.read_bytes()
    assert copied.stat().st_mode & 0o777 == 0o755
    assert "Check the tool's sha256 on the host" in run.proc.stdout
    assert "Provision a current SQLite" not in run.proc.stdout  # the tag copies the tool only


def test_the_pip_method_installs_the_tool_into_its_venv(
    plays: Plays, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    pip = playbook_vars(plays.base, plays.pyz, sys.executable, sqlite_mirror,
                        tmp_path / "p", tmp_path / "p.sh")  # fmt: skip
    pip.update(sqlite_provision_method="pip", sqlite_provision_venv=str(tmp_path / "venv"),
               sqlite_provision_package=str(tool_wheel(plays.wheels)))  # fmt: skip
    run = play(plays.base, pip, plays.wheels, "--tags", "sqlite_provision_tool")
    assert run.proc.returncode == 0, run.describe()
    assert run.recap["changed"] == 1 and run.recap["failed"] == 0, run.describe()
    assert (tmp_path / "venv" / "bin" / "sqlite-provision").exists()


def test_a_pyz_altered_on_its_way_is_not_run(
    plays: Plays, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    """The .sha256 beside the controller's pyz is what the host's copy must match."""
    altered = tmp_path / "sqlite-provision.pyz"
    altered.write_bytes(plays.pyz.read_bytes() + b"\n# altered\n")
    shutil.copy(str(plays.pyz) + ".sha256", str(altered) + ".sha256")
    (tmp_path / "libexec").mkdir()
    bad = playbook_vars(tmp_path, altered, plays.python, sqlite_mirror,
                        tmp_path / "p", tmp_path / "p.sh")  # fmt: skip
    run = play(plays.base, bad, plays.wheels)
    assert run.proc.returncode != 0, run.describe()
    assert run.recap["failed"] == 1, run.describe()
    assert "Check the tool's sha256 on the host" in run.proc.stdout
    assert "Provision a current SQLite" not in run.proc.stdout
    assert not (tmp_path / "p").exists()


def test_first_run_provisions_and_reports_changed(plays: Plays) -> None:
    run = plays.first
    assert run.proc.returncode == 0, run.describe()
    assert run.recap["changed"] == 1 and run.recap["failed"] == 0, run.describe()
    assert f"SQLite {VERSION} in {plays.prefix} (installed now)" in run.proc.stdout
    # The later task, given LD_LIBRARY_PATH through `environment:`, loads the new SQLite.
    assert f"loads SQLite {VERSION}" in run.proc.stdout, run.describe()
    assert (plays.prefix / "lib").is_dir()
    assert plays.profile.is_file()
    # The venv the play bound loads it with no environment at all.
    bound = subprocess.run([str(plays.base / "app-venv" / "bin" / "python"), "-c",
                            "import sqlite3; print(sqlite3.sqlite_version)"], env={},
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert bound.stdout.strip() == VERSION


def test_second_run_changes_nothing(plays: Plays) -> None:
    run = plays.second
    assert run.proc.returncode == 0, run.describe()
    assert run.recap["changed"] == 0 and run.recap["failed"] == 0, run.describe()
    assert "(already installed)" in run.proc.stdout


def test_check_mode_is_a_dry_run_and_changes_nothing(plays: Plays) -> None:
    run = plays.check
    assert run.proc.returncode == 0, run.describe()
    assert run.recap["failed"] == 0, run.describe()
    assert f"would install SQLite {VERSION} into {plays.check_prefix}" in run.proc.stdout
    assert not plays.check_prefix.exists()
    assert not plays.check_profile.exists()


def test_a_failing_install_fails_the_task(
    plays: Plays, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    """A non-zero exit (here 2: an unknown version) fails the play; the JSON still parses."""
    bad = playbook_vars(plays.base, plays.pyz, plays.python, sqlite_mirror,
                        tmp_path / "p", tmp_path / "p.sh")  # fmt: skip
    args: List[str] = list(bad["sqlite_provision_install_args"])  # type: ignore[call-overload]
    args[1] = "3.0.99"
    bad["sqlite_provision_install_args"] = args
    run = play(plays.base, bad, plays.wheels)
    assert run.proc.returncode != 0, run.describe()
    assert run.recap["failed"] == 1, run.describe()
    assert "Provision a current SQLite" in run.proc.stdout
    assert not (tmp_path / "p").exists()


def pack_installed_tree(installed: Path, prefix: Path, out: Path) -> Path:
    """The play's installed tree packed by store/rpm.py as `build --rpm` packs a staged one, for
    `prefix`: an RPM and its .sha256, as the role finds them on a host."""
    need_tool("rpmbuild")
    with build_user_dir() as work:
        tree = work / "tree"
        shutil.copytree(str(installed), str(tree), symlinks=True)
        pack = PackRpm(out, prefix, os.uname().machine, work / "rpm")
        metadata = pack.metadata(tree)
        recipe = package_recipe(metadata, prefix=str(prefix))
        user = find_build_user(None, os.geteuid())
        built = build_rpm(Runner(os.environ), tree, recipe, metadata, out, work / "rpm", user)
    return built.rpm


def test_the_role_takes_an_rpm_file_or_a_package_name_and_check_mode_dry_runs_them(
    plays: Plays, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    """sqlite_provision_rpm -> `install --rpm FILE --no-install-deps`, sqlite_provision_rpm_package
    -> `install --rpm-package NAME --no-install-deps`, each rendered by the real ansible-playbook
    under --check, where the tool runs them with --dry-run (its plan: dnf or yum installs it, rpm
    -V checks it) and nothing is installed. (A real run needs a RHEL rpm database: the role runs
    the same argv without --dry-run; install --rpm and --rpm-package themselves run for real on
    the look-alikes, tests/integration/test_rpm.py.)"""
    prefix, profile = tmp_path / "rpm-sqlite", tmp_path / "rpm-profile.sh"
    rpm = pack_installed_tree(plays.prefix, prefix, tmp_path / "rpms")
    name = f"sqlite-provision-sqlite{VERSION.replace('.', '_')}"
    for key, value, option in (("sqlite_provision_rpm", str(rpm), "--rpm"),
                               ("sqlite_provision_rpm_package", name, "--rpm-package")):  # fmt: skip
        given = playbook_vars(plays.base, plays.pyz, plays.python, sqlite_mirror, prefix, profile)
        given["sqlite_provision_install_args"] = ["--prefix", str(prefix), "--profile-file",
                                                  str(profile)]  # fmt: skip
        given[key] = value
        run = play(plays.base, given, plays.wheels, "--check", "-v")
        assert run.proc.returncode == 0 and run.recap["failed"] == 0, run.describe()
        rendered = json.dumps(["install", "--json", option, value, "--no-install-deps"])[1:-1]
        assert rendered in run.proc.stdout, run.describe()
        assert '"--dry-run"]' in run.proc.stdout, run.describe()
        assert f"would install SQLite {VERSION} into {prefix}" in run.proc.stdout, run.describe()
        assert not prefix.exists() and not profile.exists()
    missing = playbook_vars(plays.base, plays.pyz, plays.python, sqlite_mirror, prefix, profile)
    missing["sqlite_provision_rpm"] = str(tmp_path / "not-shipped.rpm")
    run = play(plays.base, missing, plays.wheels, "--check")
    assert run.proc.returncode == 0, run.describe()
    assert "would receive not-shipped.rpm and install it" in run.proc.stdout, run.describe()
