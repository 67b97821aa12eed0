"""The cloud-init example (examples/cloud-init/user-data.yaml): Debian's cloud-init validates
it offline, and its sqlite-provision command line, as written, is accepted by the CLI (run in
--dry-run, with test paths appended)."""

# Dict/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from support import REPO_ROOT, unavailable
from support.clirun import run_cli
from support.mirror import Mirror

USER_DATA = REPO_ROOT / "examples" / "cloud-init" / "user-data.yaml"


def cloud_init() -> str:
    found = shutil.which("cloud-init")
    if found is None:
        unavailable("cloud-init is not installed (apt-get install cloud-init)")
    return str(found)


def schema(path: Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        [cloud_init(), "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def user_data() -> Dict[str, Any]:
    import yaml  # cloud-init's own dependency; PyYAML may be missing from the test venv

    return dict(yaml.safe_load(USER_DATA.read_text(encoding="utf-8")))


def runcmd_argv(entry: Any) -> List[str]:
    """A runcmd entry as argv: a list is run as is, a string by sh."""
    return [str(part) for part in entry] if isinstance(entry, list) else shlex.split(entry)


def provision_commands() -> List[List[str]]:
    """The runcmd entries that run the tool: python3 PATH.pyz install ..."""
    commands = [runcmd_argv(entry) for entry in user_data()["runcmd"]]
    return [
        argv
        for argv in commands
        if len(argv) > 2
        and argv[0] == "python3"
        and argv[1].endswith(".pyz")
        and argv[2] == "install"
    ]


def test_user_data_is_valid_cloud_config() -> None:
    assert USER_DATA.read_text(encoding="utf-8").startswith("#cloud-config\n")
    proc = schema(USER_DATA)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid cloud-config" in proc.stdout


def test_the_validator_rejects_a_broken_runcmd(tmp_path: Path) -> None:
    broken = tmp_path / "user-data.yaml"
    broken.write_text("#cloud-config\nruncmd: 5\n", encoding="utf-8")
    proc = schema(broken)
    assert proc.returncode != 0, proc.stdout + proc.stderr


def test_runcmd_fetches_the_pyz_checks_it_then_runs_it_with_json() -> None:
    pytest.importorskip("yaml")
    commands = [runcmd_argv(entry) for entry in user_data()["runcmd"]]
    [provision] = provision_commands()
    pyz = provision[1]
    fetch = next(i for i, argv in enumerate(commands) if argv[0] == "curl" and pyz in argv)
    check = next(i for i, argv in enumerate(commands) if "sha256sum" in " ".join(argv))
    assert fetch < check < commands.index(provision)
    assert "--fail" in commands[fetch]
    assert provision[2] == "install" and "--json" in provision
    sums = [f for f in user_data()["write_files"] if f["path"] == pyz + ".sha256"]
    assert len(sums) == 1 and sums[0]["content"].split()[1] == Path(pyz).name


@pytest.mark.parametrize("right", [True, False], ids=["right-sum", "placeholder-sum"])
def test_the_check_removes_an_unverified_pyz(pyz: Path, tmp_path: Path, right: bool) -> None:
    """runcmd goes on after a failed entry: a pyz that fails its check is removed, so the next
    entry has nothing to run (fail closed); one that passes is kept."""
    pytest.importorskip("yaml")
    [check] = [
        runcmd_argv(e) for e in user_data()["runcmd"] if "sha256sum" in " ".join(map(str, e))
    ]
    [sums] = [f for f in user_data()["write_files"] if f["path"].endswith(".sha256")]
    directory = Path(sums["path"]).parent
    here = tmp_path / "libexec"
    here.mkdir()
    shutil.copy(str(pyz), str(here / "sqlite-provision.pyz"))
    content = sums["content"]
    if right:
        content = (pyz.parent / "sqlite-provision.pyz.sha256").read_text()
    (here / "sqlite-provision.pyz.sha256").write_text(content)
    script = check[2].replace(str(directory), str(here))
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert (proc.returncode == 0) is right, proc.stderr
    assert (here / "sqlite-provision.pyz").exists() is right


def test_its_command_line_is_accepted_in_dry_run(pyz: Path, mirror: Mirror, tmp_path: Path) -> None:
    """The command line as written, run by the pyz the example ships."""
    pytest.importorskip("yaml")
    [provision] = provision_commands()
    args = [*provision[2:], "--prefix", str(tmp_path / "prefix")]
    args += ["--profile-file", str(tmp_path / "p.sh"), "--mirror", mirror.url, "--dry-run"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLITE_PROVISION_")}
    env.update(
        SQLITE_PROVISION_CACHE_DIR=str(tmp_path / "cache"),
        SQLITE_PROVISION_LOG_DIR=str(tmp_path / "log"),
    )
    proc = run_cli(args, env, timeout=120, command=[sys.executable, str(pyz)]).proc
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["dry_run"] is True
    assert [step["name"] for step in plan["steps"]][:2] == ["fetch", "install-compiler"]
    assert not (tmp_path / "prefix").exists() and not (tmp_path / "p.sh").exists()
    assert mirror.count() == 0  # --dry-run touches no network
