"""SELinux, on a look-alike where `selinuxenabled` says yes (support/selinux_host.py: Debian's own
matchpathcon and semanage against a copy of a real policy store; restorecon real but a no-op on
this kernel), installing the session's real 3.44.2 artifact: the commands and their order in the
dry run and the log, the equivalence rule added and deleted for a root under /srv (and a rule
that was there before left alone), the undo of a failing restorecon, status reading a label;
and, on this host without SELinux, a plan and a log with nothing new."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from support.artifacts import Artifact
from support.clirun import PYTHON, Run, check_plan_ran, injected, newest_log, run_cli, tool_env
from support.launchers import Launcher, launcher_named, module_launcher
from support.rhel import RHEL9_OS_RELEASE
from support.selinux_host import FAILING_RESTORECON, SELinuxHost, setfiles

pytestmark = pytest.mark.integration

RECORD = ".sqlite-provision-activation.json"


class Site:
    """One look-alike host of a test: its state, its SELinux, the places the tool writes."""

    def __init__(
        self, tmp_path: Path, root: str, artifact: Artifact, launcher: Optional[Launcher] = None
    ) -> None:
        self.state = tmp_path
        self.launcher = launcher or module_launcher()
        self.selinux = SELinuxHost(tmp_path)
        self.root = root
        self.env = self.selinux.env(tool_env(tmp_path))
        self.artifact = artifact
        self.profile = tmp_path / "etc" / "profile.d" / "sqlite-provision.sh"
        self.env_file = tmp_path / "etc" / "sysconfig" / "sqlite"

    def cli(self, *args: str) -> Run:
        command = self.selinux.command(list(self.launcher.argv))
        return run_cli(list(args), self.env, command=command)

    def install(self, *extra: str) -> Run:
        return self.cli("install", "--prefix-root", self.root, "--profile-file", str(self.profile),
                        "--env-file", str(self.env_file), "--python", PYTHON, "--artifact",
                        str(self.artifact.path), "--json", *extra)  # fmt: skip

    def inside(self, *argv: str) -> str:
        done = subprocess.run(self.selinux.command(argv), capture_output=True, text=True,
                              env=self.env, timeout=120, check=True)  # fmt: skip
        return done.stdout

    def rules(self) -> List[str]:
        return [line for line in self.inside("semanage", "fcontext", "-l", "-C", "-n").splitlines()
                if " = " in line]  # fmt: skip

    def record(self) -> Dict[str, object]:
        return dict(json.loads(self.selinux.outside(f"{self.root}/{RECORD}").read_text()))


@pytest.fixture
def artifact(artifacts: Dict[str, Artifact]) -> Artifact:
    return artifacts["3.44.2"]


@pytest.mark.parametrize("launcher_name", ["module", "pyz-3.6"])
def test_a_root_under_srv_gets_the_equivalence_and_uninstall_deletes_it(
    tmp_path: Path, artifact: Artifact, launcher_name: str, pyz: Path
) -> None:
    """Through `python -m sqlite_provision`, and the shipped pyz on CPython 3.6 (RHEL 8's)."""
    site = Site(tmp_path, "/srv/sqlite", artifact, launcher_named(launcher_name, lambda: pyz))
    library = "/srv/sqlite/3.44.2/lib/libsqlite3.so.0"
    assert site.inside("matchpathcon", "-n", library).split(":")[2] == "var_t"

    plan = site.install("--dry-run")
    assert plan.proc.returncode == 0, plan.describe()
    names = [step["name"] for step in plan.data["steps"]]
    at = names.index("install")
    assert names[at : at + 4] == ["install", "add-equivalence", "relabel", "link-current"]
    assert plan.data["steps"][at + 1]["commands"] == ["semanage fcontext -a -e /usr /srv/sqlite"]
    assert plan.data["steps"][at + 2]["commands"] == ["restorecon -RF /srv/sqlite/3.44.2"]
    assert site.rules() == []  # the dry run added nothing

    run = site.install()
    assert run.proc.returncode == 0, run.describe()
    check_plan_ran(plan.data, newest_log(tmp_path / "log", "install"), ran=names)
    assert site.rules() == ["/srv/sqlite = /usr"]
    assert site.inside("matchpathcon", "-n", library).split(":")[2] == "lib_t"
    rule = site.record()["selinux_equivalence"]
    assert rule == {"path": "/srv/sqlite", "equal": "/usr", "added_by": "sqlite-provision"}
    logged = newest_log(tmp_path / "log", "install").read_text()
    assert f"$ restorecon -F {site.profile}" in logged
    assert f"$ restorecon -F {site.env_file}" in logged

    gone = site.cli("uninstall", "--all", "--prefix-root", "/srv/sqlite", "--profile-file",
                    str(site.profile), "--json")  # fmt: skip
    assert gone.proc.returncode == 0, gone.describe()
    assert (
        "$ semanage fcontext -d /srv/sqlite"
        in newest_log(tmp_path / "log", "uninstall").read_text()
    )
    assert site.rules() == []


def test_a_rule_that_was_there_is_recorded_and_left_alone(
    tmp_path: Path, artifact: Artifact
) -> None:
    site = Site(tmp_path, "/srv/sqlite", artifact)
    site.inside("semanage", "fcontext", "-a", "-e", "/usr", "/srv/sqlite")
    run = site.install()
    assert run.proc.returncode == 0, run.describe()
    assert "semanage fcontext -a" not in newest_log(tmp_path / "log", "install").read_text()
    assert site.record()["selinux_equivalence"] == {
        "path": "/srv/sqlite", "equal": "/usr", "added_by": "pre-existing"
    }  # fmt: skip
    gone = site.cli("uninstall", "--all", "--prefix-root", "/srv/sqlite", "--profile-file",
                    str(site.profile), "--json")  # fmt: skip
    assert gone.proc.returncode == 0, gone.describe()
    assert site.rules() == ["/srv/sqlite = /usr"]


def test_a_failing_restorecon_leaves_the_host_as_it_was(tmp_path: Path, artifact: Artifact) -> None:
    site = Site(tmp_path, "/srv/sqlite", artifact)
    site.selinux.put_tool("restorecon", FAILING_RESTORECON)
    run = site.install()
    assert run.proc.returncode == 5, run.describe()
    assert "restorecon" in run.proc.stderr
    assert site.rules() == []  # the rule it added was deleted
    assert os.listdir(str(tmp_path / "srv")) == []  # no version, no link, no record
    assert not site.profile.exists() and not site.env_file.exists()


def test_status_reads_the_label_and_warns_until_the_policy_default_is_back(
    tmp_path: Path, artifact: Artifact
) -> None:
    """The default root (/opt/sqlite: lib_t by the policy, no rule). A library that arrives with
    tmp_t (a tree built under /tmp and moved) is what status warns of; restorecon relabels
    nothing on this kernel, setfiles with the same policy does, and then status is quiet."""
    site = Site(tmp_path, "/opt/sqlite", artifact)
    run = site.install()
    assert run.proc.returncode == 0, run.describe()
    log = newest_log(tmp_path / "log", "install").read_text()
    assert "$ restorecon -RF /opt/sqlite/3.44.2" in log and "semanage fcontext -a" not in log
    assert "selinux_equivalence" not in site.record()
    real = os.path.realpath(str(site.selinux.outside("/opt/sqlite/3.44.2/lib/libsqlite3.so.0")))
    os.setxattr(real, "security.selinux", b"unconfined_u:object_r:tmp_t:s0\0")

    status = site.cli("status", "--prefix-root", "/opt/sqlite", "--profile-file",
                      str(site.profile), "--json")  # fmt: skip
    assert status.proc.returncode == 0, status.describe()
    assert status.data["installed"][0]["selinux_type"] == "tmp_t"
    warnings = status.data["selinux"]["warnings"]
    assert len(warnings) == 1 and "tmp_t" in warnings[0] and "lib_t" in warnings[0]
    text = site.cli("status", "--prefix-root", "/opt/sqlite", "--profile-file", str(site.profile))
    assert "  3.44.2 SELinux type: tmp_t" in text.proc.stdout.splitlines(), text.describe()
    assert f"warning: {warnings[0]}" in text.proc.stdout.splitlines(), text.describe()

    policy = "/etc/selinux/default/contexts/files/file_contexts"
    site.inside(setfiles(), "-F", policy, "/opt/sqlite/3.44.2")
    status = site.cli("status", "--prefix-root", "/opt/sqlite", "--profile-file",
                      str(site.profile), "--json")  # fmt: skip
    assert status.data["installed"][0]["selinux_type"] == "lib_t"
    assert status.data["selinux"]["warnings"] == []


def test_no_selinux_on_an_enabled_host_warns_and_relabels_nothing(
    tmp_path: Path, artifact: Artifact
) -> None:
    site = Site(tmp_path, "/srv/sqlite", artifact)
    run = site.install("--no-selinux")
    assert run.proc.returncode == 0, run.describe()
    assert "SELinux is enabled and --no-selinux was given" in run.proc.stderr
    log = newest_log(tmp_path / "log", "install").read_text()
    assert "$ restorecon" not in log and "$ semanage fcontext -a" not in log
    assert site.rules() == [] and "selinux_equivalence" not in site.record()


def test_no_selinux_here_changes_nothing(tmp_path: Path, artifact: Artifact) -> None:
    """This host (no selinuxfs): the same plan with and without --no-selinux, no SELinux command
    in the log, no new message; status says nothing of SELinux."""
    env = tool_env(tmp_path)
    root, profile = tmp_path / "opt" / "sqlite", tmp_path / "profile.d" / "sqlite-provision.sh"
    args = ["install", "--prefix-root", str(root), "--profile-file", str(profile), "--python",
            PYTHON, "--artifact", str(artifact.path), "--json"]  # fmt: skip
    plan = run_cli([*args, "--dry-run"], env)
    assert plan.data == run_cli([*args, "--dry-run", "--no-selinux"], env).data
    run = run_cli(args, env)
    assert run.proc.returncode == 0, run.describe()
    assert "SELinux" not in run.proc.stderr and "--no-selinux" not in run.proc.stderr
    log = newest_log(tmp_path / "log", "install").read_text()
    for word in ("selinuxenabled", "restorecon", "semanage", "matchpathcon"):
        assert word not in log
    check_plan_ran(plan.data, newest_log(tmp_path / "log", "install"))
    status = run_cli(["status", "--prefix-root", str(root), "--profile-file", str(profile),
                      "--json"], env)  # fmt: skip
    assert "selinux" not in status.data and "selinux_type" not in status.data["installed"][0]


def rhel_site(tmp_path: Path, root: str, artifact: Artifact, hidden: List[str]) -> Site:
    """A site whose OS is RHEL 9.4 (its os-release, by the tests' launcher) with the real dnf
    as yum, where `hidden` tools are missing."""
    site = Site(tmp_path, root, artifact)
    site.selinux = SELinuxHost(tmp_path, hidden=hidden)
    os_root = tmp_path / "os-root"
    (os_root / "etc").mkdir(parents=True)
    (os_root / "etc" / "os-release").write_text(RHEL9_OS_RELEASE)
    (site.selinux.bin / "yum").symlink_to("/usr/bin/dnf")
    site.env["SQLITE_PROVISION_TEST_OS_ROOT"] = str(os_root)
    return site


def cli_injected(site: Site, *args: str) -> Run:
    command = site.selinux.command(injected([PYTHON, "-m", "sqlite_provision"], site.env))
    return run_cli(list(args), site.env, command=command, as_shipped=True)


def install_args(site: Site, *extra: str) -> List[str]:
    return ["install", "--prefix-root", site.root, "--profile-file", str(site.profile), "--python",
            PYTHON, "--artifact", str(site.artifact.path), "--json", *extra]  # fmt: skip


@pytest.mark.parametrize(
    "root, hidden, package",
    [("/opt/sqlite", ["restorecon"], "policycoreutils"),
     ("/srv/sqlite", ["semanage"], "policycoreutils-python-utils")],
)  # fmt: skip
def test_a_missing_tool_is_exit_3_naming_its_package_or_installed_with_yum(
    tmp_path: Path, artifact: Artifact, root: str, hidden: List[str], package: str
) -> None:
    """semanage is needed only where a rule is (under /srv, not /opt)."""
    site = rhel_site(tmp_path, root, artifact, hidden)
    refused = cli_injected(site, *install_args(site, "--no-install-deps"))
    assert refused.proc.returncode == 3, refused.describe()
    assert f"({package}) is missing and --no-install-deps was given" in refused.proc.stderr
    assert f"yum install -y {package}" in refused.proc.stderr
    assert os.listdir(str(tmp_path / root.split("/")[1])) == [] and not site.profile.exists()

    plan = cli_injected(site, *install_args(site, "--dry-run"))
    assert plan.proc.returncode == 0, plan.describe()
    names = [step["name"] for step in plan.data["steps"]]
    assert names.index("install-selinux-tools") < names.index("install")
    assert plan.data["steps"][names.index("install-selinux-tools")]["commands"] == [
        f"yum install -y {package}"
    ]
