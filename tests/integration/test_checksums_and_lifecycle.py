"""Layer 5: the real CLI on the real tarballs, through each launcher (`python -m
sqlite_provision`, and the shipped pyz on CPython 3.6 and 3.13). Local tarballs whose checksum
does not match are refused before anything is unpacked or written; the withdrawn release and
the system library's ENABLE_UPDATE_DELETE_LIMIT are each said once; and, on one host with two
real versions installed side by side (the session's artifacts of 3.44.2 and 3.52.0, real
builds made once through the pyz, installed with `install --artifact`), every command: status,
verify, a re-run, a failed rollback, a failed `install --force`, a rollback, the refused
removal of `current`, `uninstall --all`, and `uninstall --all` again with nothing installed.

The host is a temporary root: the prefix root, /etc/profile.d, the systemd directory, an env
file, TMPDIR (where the build directory goes), the cache and the log. Other packages' files
sit beside ours, and must survive everything. The tests on the installed host run in file order
(one host per launcher): the failed rollback and the failed re-install leave it exactly as it
was (they assert it), and `uninstall --all` comes last.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

from sqlite_provision.source.catalog import default_release
from support.artifacts import Artifact
from support.clirun import PYTHON, Run, check_plan_ran, newest_log, run_cli, tool_env
from support.launchers import Launcher
from support.mirror import Mirror
from support.snapshot import diff, snapshot

pytestmark = pytest.mark.integration

TARBALL_3442 = "sqlite-autoconf-3440200.tar.gz"
FOREIGN = {  # other packages' files, relative to the host's root
    "etc/profile.d/other-package.sh": "export OTHER_PACKAGE=1\n",
    "etc/systemd/system/other.service": "[Service]\nExecStart=/bin/true\n",
    "etc/sysconfig/other": "OTHER=1\n",
}


class Host:
    """A temporary root laid out like a host."""

    def __init__(self, root: Path, launcher: Launcher) -> None:
        self.launcher = launcher
        self.root = root
        self.prefix_root = root / "opt" / "sqlite"
        self.profile = root / "etc" / "profile.d" / "sqlite-provision.sh"
        self.csh = root / "etc" / "profile.d" / "sqlite-provision.csh"
        self.systemd = root / "etc" / "systemd" / "system"
        self.drop_in = self.systemd / "myapp.service.d" / "sqlite-provision.conf"
        self.env_file = root / "etc" / "sysconfig" / "sqlite-provision"
        self.record = self.prefix_root / ".sqlite-provision-activation.json"
        self.tmp = root / "tmp"
        self.state = root / "state"
        self.tmp.mkdir(parents=True)
        for name, text in FOREIGN.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        self.env = tool_env(self.state)
        self.env.update(
            TMPDIR=str(self.tmp),
            SQLITE_PROVISION_TEST_SYSTEMD_DIR=str(self.systemd),
            SQLITE_PROVISION_TEST_LD_SO_CONF_DIR=str(root / "etc" / "ld.so.conf.d"),
        )

    @property
    def cache(self) -> Path:
        return self.state / "cache"

    def places(self) -> List[str]:
        return ["--prefix-root", str(self.prefix_root), "--profile-file", str(self.profile)]

    def run(self, *args: str) -> Run:
        """The tool with args, through this host's launcher."""
        return run_cli(args, self.env, command=self.launcher.argv)

    def install(self, *extra: str, python: str = PYTHON) -> Run:
        return self.run("install", *self.places(), "--python", python, "--json", *extra)

    def watched(self) -> List[Path]:
        return [self.root / "opt", self.root / "etc"]

    def build_dirs(self) -> List[str]:
        return sorted(p.name for p in self.tmp.glob("sqlite-provision-build-*"))

    def tree(self) -> Set[str]:
        """Every path under the root but the tool's own state (cache, log, lock) and TMPDIR."""
        found = set()
        for dirpath, dirnames, filenames in os.walk(str(self.root)):
            for name in dirnames + filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), str(self.root))
                if rel.split(os.sep)[0] not in ("state", "tmp"):
                    found.add(rel)
        return found


def ok(run: Run) -> Dict[str, Any]:
    assert run.proc.returncode == 0, run.describe()
    return run.data


# --- local tarballs whose checksum does not match (item: --tarball FILE) ---------------------


def assert_refused_before_extracting(host: Host, run: Run, tarball: Path) -> None:
    """Exit 4 naming the checksum, the fetch step failed and nothing after it ran: no build
    directory in TMPDIR, no prefix root, no profile, nothing in the cache."""
    assert run.proc.returncode == 4, run.describe()
    assert "checksum" in run.proc.stderr.lower()
    assert tarball.name in run.proc.stderr
    data = run.data
    assert data["ok"] is False and data["exit_code"] == 4
    assert "checksum" in data["error"].lower()
    assert run.step("fetch")["status"] == "failed"
    assert run.step("extract")["status"] == "not-run"
    assert {s["status"] for s in data["steps"][1:]} <= {"not-run", "skipped"}
    assert host.build_dirs() == []
    assert list(host.tmp.iterdir()) == []
    assert not host.prefix_root.exists()
    assert not host.profile.exists() and not host.csh.exists()
    assert not host.cache.exists() or list(host.cache.rglob("*")) == []
    assert host.tree() == {os.path.dirname(n) for n in FOREIGN} | set(FOREIGN) | {
        "etc", "etc/systemd"
    }  # fmt: skip


def test_a_tarball_named_like_a_release_holding_another_is_refused(
    shared_tarballs: Dict[str, Any], tmp_path: Path, launcher: Launcher
) -> None:
    """sqlite-autoconf-3440200.tar.gz is checked against the catalog's 3.44.2 hash, whatever
    the file holds: here the real 3.52.0 tarball under 3.44.2's name."""
    host = Host(tmp_path / "host", launcher)
    tarball = tmp_path / "downloads" / TARBALL_3442
    tarball.parent.mkdir()
    shutil.copyfile(str(shared_tarballs["3.52.0"]["path"]), str(tarball))

    run = host.install("--tarball", str(tarball))

    assert_refused_before_extracting(host, run, tarball)
    assert "checksum mismatch" in run.proc.stderr
    really = shared_tarballs["3.52.0"]  # the digest found is the one of what the file holds
    assert really["sha256"] in run.proc.stderr or really["sha3_256"] in run.proc.stderr


def test_the_real_tarball_with_a_wrong_sha256_is_refused(
    shared_tarballs: Dict[str, Any], tmp_path: Path, launcher: Launcher
) -> None:
    """--sha256 overrides the catalog: a wrong one refuses even the genuine 3.44.2 tarball."""
    host = Host(tmp_path / "host", launcher)
    tarball = Path(shared_tarballs["3.44.2"]["path"])
    wrong = shared_tarballs["3.52.0"]["sha256"]

    run = host.install("--tarball", str(tarball), "--sha256", wrong)

    assert_refused_before_extracting(host, run, tarball)
    assert f"expected SHA-256 {wrong}" in run.proc.stderr
    assert shared_tarballs["3.44.2"]["sha256"] in run.proc.stderr


# --- one message, said once -----------------------------------------------------------------


def test_the_withdrawn_release_is_called_withdrawn_once(
    sqlite_mirror: Mirror, tmp_path: Path, launcher: Launcher
) -> None:
    """The refusal says "withdrawn" once, still names --allow-withdrawn and the release to use
    instead, and the catalog's reason, without its own repetitions of the word."""
    host = Host(tmp_path / "host", launcher)
    before = sqlite_mirror.count()

    run = host.install("--mirror", sqlite_mirror.url, "--version", "3.52.0")
    text = host.run("install", *host.places(), "--python", PYTHON, "--version", "3.52.0")

    for refused in (run, text):
        assert refused.proc.returncode == 2, refused.describe()
    err = text.proc.stderr
    assert len(re.findall(r"(?<![-\w])withdrawn", err, re.IGNORECASE)) == 1, err
    assert err.count("--allow-withdrawn") == 1, err
    assert default_release().version in err
    assert "backwards-compatibility" in err  # the reason from the catalog's note
    data = run.data
    said = data["error"] + " " + data["hint"]
    assert len(re.findall(r"(?<![-\w])withdrawn", said, re.IGNORECASE)) == 1, said
    assert "--allow-withdrawn" in data["hint"]
    assert sqlite_mirror.count() == before
    assert not host.prefix_root.exists()


# --- the tests' variables are not the tool's ------------------------------------------------

CRASH_AT = "SQLITE_PROVISION_TEST_CRASH_AT"


def test_the_shipped_tool_ignores_the_crash_variable(
    artifacts: Dict[str, Artifact], launcher: Launcher, tmp_path: Path
) -> None:
    """SQLITE_PROVISION_TEST_CRASH_AT names a crash point every install passes (`after:install`,
    the new build in its prefix, `current` not yet switched). Through the tests' launcher
    (support/launch.py), which registers a crash hook, the run dies there; the shipped tool
    (the pyz as hosts run it, or `python -m sqlite_provision`) with the same variable set runs
    to the end and installs."""
    crash = {CRASH_AT: "after:install"}
    killed = Host(tmp_path / "killed", launcher)
    args = ["--artifact", str(artifacts["3.44.2"].path)]
    run = run_cli(["install", *killed.places(), "--python", PYTHON, "--json", *args],
                  dict(killed.env, **crash), command=launcher.argv)  # fmt: skip
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    assert (killed.prefix_root / "3.44.2").is_dir()
    assert not (killed.prefix_root / "current").exists()

    shipped = Host(tmp_path / "shipped", launcher)
    env = {k: v for k, v in shipped.env.items() if not k.startswith("SQLITE_PROVISION_TEST_")}
    run = run_cli(["install", *shipped.places(), "--python", PYTHON, "--json", *args],
                  dict(env, **crash), command=launcher.argv, as_shipped=True)  # fmt: skip
    assert ok(run)["version"] == "3.44.2", run.describe()
    assert run.step("install")["status"] == "ok" and run.step("verify")["status"] == "ok"
    assert os.readlink(str(shipped.prefix_root / "current")) == "3.44.2"


# --- the installed host: 3.44.2, then 3.52.0 --------------------------------------------------


class Installed(Host):
    artifacts: Dict[str, Artifact]
    first: Run  # 3.44.2
    second: Run  # 3.52.0, now `current`
    planted: Path  # a file someone put inside 3.52.0's prefix

    def activation(self) -> List[str]:
        return ["--systemd-unit", "myapp", "--env-file", str(self.env_file)]

    def artifact(self, version: str) -> str:
        return str(self.artifacts[version].path)


@pytest.fixture(scope="module")
def host(
    artifacts: Dict[str, Artifact], launcher: Launcher, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """One host per launcher, with the session's two real builds installed through it: 3.44.2,
    then 3.52.0 (`current`; `previous` is 3.44.2), each with a systemd drop-in and an env file
    beside the snippet."""
    installed = Installed(tmp_path_factory.mktemp("lifecycle"), launcher)
    installed.artifacts = artifacts
    installed.first = installed.install("--artifact", installed.artifact("3.44.2"),
                                        *installed.activation())  # fmt: skip
    ok(installed.first)
    installed.second = installed.install("--artifact", installed.artifact("3.52.0"),
                                         *installed.activation())  # fmt: skip
    ok(installed.second)
    installed.planted = installed.prefix_root / "3.52.0" / "lib" / "planted-by-someone.txt"
    installed.planted.write_text("not ours\n")
    assert os.readlink(str(installed.prefix_root / "current")) == "3.52.0"
    assert os.readlink(str(installed.prefix_root / "previous")) == "3.44.2"
    return installed


def test_the_update_delete_limit_warning_is_said_once(host: Installed) -> None:
    """This machine's libsqlite3 has ENABLE_UPDATE_DELETE_LIMIT, which no sqlite-autoconf build
    can have: one warning on stderr per install, and not again in the abi step's detail (which
    stderr shows too)."""
    for run in (host.first, host.second):
        err = run.proc.stderr
        if "ENABLE_UPDATE_DELETE_LIMIT" not in err:
            pytest.fail("the system library lacks ENABLE_UPDATE_DELETE_LIMIT here:\n" + err)
        assert err.count("ENABLE_UPDATE_DELETE_LIMIT") == 1, err
        warning = [line for line in err.splitlines() if "ENABLE_UPDATE_DELETE_LIMIT" in line]
        assert warning[0].startswith("warning: "), warning
        assert "DELETE ... LIMIT" in warning[0]
        assert "ENABLE_UPDATE_DELETE_LIMIT" not in run.step("abi-gate")["detail"]
        assert run.step("abi-gate")["status"] == "ok"
        # ... and a machine reading --json finds it once, in "warnings".
        said = [w for w in run.data["warnings"] if "ENABLE_UPDATE_DELETE_LIMIT" in w]
        assert len(said) == 1, run.data["warnings"]


def test_status_and_verify_see_both_versions_and_current(host: Installed) -> None:
    status = ok(host.run("status", *host.places(), "--python", PYTHON, "--json"))
    assert status["current"] == "3.52.0"
    assert sorted(row["version"] for row in status["installed"]) == ["3.44.2", "3.52.0"]
    assert status["profile_file"] == {"path": str(host.profile), "present": True, "managed": True}
    [python] = status["pythons_with_profile"]
    assert python["sqlite_version"] == "3.52.0" and python["ok"] is True, python

    verified = ok(host.run("verify", *host.places(), "--python", PYTHON, "--json"))
    assert verified["ok"] is True and verified["version"] == "3.52.0"
    assert {v["sqlite_version"] for v in verified["verified"]} == {"3.52.0"}
    failed = host.run("verify", *host.places(), "--python", PYTHON, "--min-version", "3.99.0",
                      "--json")  # fmt: skip
    assert failed.proc.returncode == 6, failed.describe()
    assert failed.data["ok"] is False and failed.data["exit_code"] == 6


def test_a_rerun_of_the_current_version_changes_nothing(host: Installed) -> None:
    before = snapshot(host.watched())

    again = ok(host.install("--artifact", host.artifact("3.52.0"), *host.activation()))

    assert again["changed"] is False
    assert diff(before, snapshot(host.watched())) == {}


def test_a_rollback_that_fails_verification_switches_current_back(host: Installed) -> None:
    before = snapshot(host.watched())

    run = host.run("rollback", *host.places(), "--python", PYTHON, "--min-version", "3.50.0",
                   "--json")  # fmt: skip

    assert run.proc.returncode == 6, run.describe()
    assert "rollback to 3.44.2 failed verification" in run.proc.stderr
    assert "older than the required 3.50.0" in run.proc.stderr
    assert "`current` was left at 3.52.0" in run.proc.stderr
    assert os.readlink(str(host.prefix_root / "current")) == "3.52.0"
    assert os.readlink(str(host.prefix_root / "previous")) == "3.44.2"
    assert diff(before, snapshot(host.watched())) == {}


def test_a_failed_force_reinstall_brings_the_old_build_back(host: Installed) -> None:
    """`install --force` of 3.44.2 unpacks it again and renames the new tree into the prefix
    (the old one waits as .3.44.2.previous); the verification then fails: the old build comes
    back byte for byte, and neither the backup nor the staging directory is left."""
    # A python that passes the interpreter check and the system probe, and whose sqlite3
    # import fails once the new library is on its LD_LIBRARY_PATH.
    python = host.state / "bin" / "python-failing-under-the-new-library"
    python.parent.mkdir(exist_ok=True)
    python.write_text(
        "#!/bin/sh\n"
        f'case ":$LD_LIBRARY_PATH:" in *"{host.prefix_root}/"*)\n'
        '  echo "ImportError: libsqlite3.so.0: undefined symbol: injected_by_the_test" >&2\n'
        "  exit 1;;\n"
        "esac\n"
        f'exec "{PYTHON}" "$@"\n'
    )
    python.chmod(0o755)
    prefix = host.prefix_root / "3.44.2"
    before = snapshot(host.watched())

    run = host.install("--artifact", host.artifact("3.44.2"), "--force", *host.activation(),
                       python=str(python))  # fmt: skip

    assert run.proc.returncode == 6, run.describe()
    assert "injected_by_the_test" in run.proc.stderr
    assert run.step("unpack-artifact")["status"] == "ok"  # a new tree, not the installed one
    assert run.step("install")["detail"] == f"replaced the previous build in {prefix}"
    assert run.step("link-current")["status"] == "ok"  # `current` was switched to 3.44.2, then back
    assert run.step("verify")["status"] == "failed"
    assert diff(before, snapshot(host.watched())) == {}
    assert not os.path.lexists(str(host.prefix_root / ".3.44.2.previous"))
    assert not os.path.lexists(str(host.prefix_root / ".sqlite-provision-stage-3.44.2"))
    assert sorted(p.name for p in host.prefix_root.iterdir() if p.name.startswith(".")) == [
        host.record.name
    ]
    assert host.build_dirs() == []


def test_a_rollback_switches_current_to_the_previous_version(host: Installed) -> None:
    """`rollback --dry-run --json` changes nothing and shows the commands the rollback then
    runs (its log records them, step by step)."""
    before = snapshot(host.watched())
    plan = ok(host.run("rollback", *host.places(), "--python", PYTHON, "--dry-run", "--json"))
    assert diff(before, snapshot(host.watched())) == {}
    assert [s["name"] for s in plan["steps"]] == ["switch-to-previous", "verify"]
    assert plan["version"] == "3.44.2" and plan["dry_run"] is True

    back = ok(host.run("rollback", *host.places(), "--python", PYTHON, "--json"))

    assert back["version"] == "3.44.2"
    assert os.readlink(str(host.prefix_root / "current")) == "3.44.2"
    assert {v["sqlite_version"] for v in back["verified"]} == {"3.44.2"}
    check_plan_ran(plan, newest_log(host.state / "log", "rollback"))


def test_the_current_version_is_not_removed_alone(host: Installed) -> None:
    before = snapshot(host.watched())

    refused = host.run("uninstall", "3.44.2", *host.places(), "--json")

    assert refused.proc.returncode == 3, refused.describe()
    assert "current" in refused.data["error"]
    assert diff(before, snapshot(host.watched())) == {}


def test_uninstall_all_removes_what_the_installs_wrote_and_nothing_else(host: Installed) -> None:
    """Last: every version, `current` and `previous`, the snippet and its csh twin, the drop-in,
    the env file and the activation record go; other packages' files and a file planted in a
    prefix stay."""
    ours = [host.profile, host.csh, host.drop_in, host.env_file, host.record]
    for path in ours:
        assert path.is_file(), path
    before = snapshot(host.watched())
    plan = ok(host.run("uninstall", "--all", *host.places(), "--dry-run", "--json"))
    assert diff(before, snapshot(host.watched())) == {}
    assert {"remove-link", "deactivate", "record", "remove-version"} <= {
        s["name"] for s in plan["steps"]
    }

    run = host.run("uninstall", "--all", *host.places(), "--json")
    check_plan_ran(plan, newest_log(host.state / "log", "uninstall"))

    result = ok(run)
    assert sorted(result["removed_versions"]) == ["3.44.2", "3.52.0"]
    assert result["kept_foreign"] == [str(host.planted)]
    assert set(result["removed_activation"]) >= {
        str(p) for p in [host.profile, host.csh, host.drop_in, host.env_file]
    }
    for path in ours:
        assert not os.path.lexists(str(path)), path
    for link in ("current", "previous"):
        assert not os.path.lexists(str(host.prefix_root / link)), link
    assert not host.drop_in.parent.exists()
    for name, text in FOREIGN.items():
        assert (host.root / name).read_text() == text
    assert host.planted.read_text() == "not ours\n"
    planted = os.path.relpath(str(host.planted), str(host.root))
    assert host.tree() == set(FOREIGN) | {
        "etc", "etc/profile.d", "etc/systemd", "etc/systemd/system", "etc/sysconfig",
        "opt", "opt/sqlite", "opt/sqlite/3.52.0", "opt/sqlite/3.52.0/lib", planted,
    }  # fmt: skip


def test_uninstall_all_again_is_a_no_op_and_a_version_with_all_is_refused(host: Installed) -> None:
    """After the last test: nothing is installed. `uninstall --all` again exits 0 and changes
    nothing (click 8.0, the pyz's, once reported the empty VERSION... as given: exit 2); a
    VERSION with --all is still a usage error."""
    before = snapshot(host.watched())

    again = ok(host.run("uninstall", "--all", *host.places(), "--json"))
    both = host.run("uninstall", "3.44.2", "--all", *host.places(), "--json")

    assert again["changed"] is False and again["removed_versions"] == []
    assert both.proc.returncode == 2, both.describe()
    assert "VERSION and --all are mutually exclusive" in both.data["error"]
    assert diff(before, snapshot(host.watched())) == {}
