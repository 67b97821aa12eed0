"""The fleet tier (marker `fleet`): examples/ansible/fleet.yml, run by the real ansible-playbook
against three pseudo-RHEL 9 podman containers (tests/support/pseudo_rhel_image.py), each its own
root with its own /opt, /etc/profile.d and python3, no compiler and no network, reached through
the real `containers.podman.podman` connection plugin (tests/support/fleet.py).

The controller (this machine, as root: the tool builds as `nobody`) builds the artifact once from
the shared 3.44.2 tarball at CFLAGS=-O0, into a cache; every target gets the pyz, the artifact and
its .sha256 and installs it with `install --artifact --no-install-deps` on its own python3 (one
on the image's CPython 3.6, as on RHEL 7 and 8). One module fixture runs the play twice; the tests
read those runs, then run it again: under --check, with a build that cannot be done, with one
target's copy of the artifact corrupted, and rolling (serial 1, max_fail_percentage 0) into a
target with a wrong .sha256; last, a group built on a builder container instead of the controller.

The session prints one line (tests/integration/conftest.py):
`fleet: N targets, built B time(s), run 1 changed=C1, run 2 changed=C2, compilers on targets: K,
per-target install S s` (S: the median wall time of the tool's install on a target, run 1).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from support import unavailable
from support.fleet import (
    FLEET,
    Containers,
    Play,
    ansible_env,
    ansible_playbook,
    delta_seconds,
    podman_collection,
    run_playbook,
    write_inventory,
)
from support.pseudo_rhel_image import cache_dir

pytestmark = pytest.mark.fleet

VERSION = "3.44.2"
TARGETS = 3
GROUP = "sqlite_provision_fleet_RedHat9_x86_64"  # the pseudo-RHEL image: RHEL 9.4, x86_64
COMPILER_PROBE = (
    "command -v gcc || command -v cc || command -v make || rpm -q gcc || rpm -q make || true"
)
APP_VENV = "/opt/app/venv"
MIN_VERSION = "3.40.0"
LOGIN_SQLITE = "bash -lc 'python3 -c \"import sqlite3; print(sqlite3.sqlite_version)\"'"


@dataclass
class Fleet:
    base: Path
    containers: Containers
    inventory: Path
    env: Dict[str, str]
    extra_vars: Dict[str, object]
    build_logs: Path
    first: Play
    second: Play
    builds_after_first: int
    builds_after_second: int

    @property
    def names(self) -> List[str]:
        return self.containers.names

    def play(self, *args: str, **extra: object) -> Play:
        return run_playbook(self.inventory, {**self.extra_vars, **extra}, self.env, self.base,
                            *args)  # fmt: skip

    def builds(self) -> int:
        return count_builds(self.build_logs)


def count_builds(logs: Path) -> int:
    """How many times the tool built: one log per run of `build` (a dry run writes none)."""
    return len(list(logs.glob("build-*.log")))


def changed_targets(play: Play, names: List[str]) -> int:
    recap = play.recap
    return sum(1 for name in names if recap[name]["changed"] > 0)


@pytest.fixture(scope="module")
def fleet(
    podman_env: Dict[str, str],
    pseudo_rhel_image: Dict[str, str],
    shared_tarballs: Dict[str, Dict[str, object]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    if VERSION not in shared_tarballs:
        unavailable(f"no {VERSION} tarball among the shared tarballs")
    ansible_playbook()
    base = tmp_path_factory.mktemp("fleet")
    env = ansible_env(podman_env, podman_collection(cache_dir()), base)
    names = [f"sqlite-fleet-{os.getpid()}-{n}" for n in range(1, TARGETS + 1)]
    hosts: Dict[str, Dict[str, object]] = {name: {} for name in names}
    # The first target runs the tool on the image's CPython 3.6 (RHEL 7/8's python3); the last
    # has an application venv for the play to bind (--venv).
    hosts[names[0]]["sqlite_provision_python"] = pseudo_rhel_image["tool_python"]
    hosts[names[-1]]["sqlite_provision_venvs"] = [APP_VENV]
    inventory = write_inventory(base / "inventory.json", {"fleet_targets": hosts})
    build_tmp = base / "build-tmp"  # TMPDIR of the build, which `nobody` must pass through
    build_tmp.mkdir()
    build_tmp.chmod(0o755)
    build_logs = base / "build-log"
    extra_vars: Dict[str, object] = {
        "sqlite_provision_pyz": pseudo_rhel_image["pyz"],
        "sqlite_provision_fleet_version": VERSION,
        "sqlite_provision_fleet_build_args": ["--tarball", str(shared_tarballs[VERSION]["path"])],
        "sqlite_provision_fleet_build_environment": {
            "CFLAGS": "-O0",
            "TMPDIR": str(build_tmp),
            "SQLITE_PROVISION_LOG_DIR": str(build_logs),
            "SQLITE_PROVISION_CACHE_DIR": str(base / "tool-cache"),
        },
        "sqlite_provision_fleet_cache": str(base / "artifacts"),
        "sqlite_provision_install_args": ["--min-version", MIN_VERSION],
    }
    with Containers(podman_env, pseudo_rhel_image["image"], names) as containers:
        venv = containers.sh(names[-1], f"python3 -m venv --without-pip {APP_VENV}")
        assert venv.returncode == 0, venv.stderr
        first = run_playbook(inventory, extra_vars, env, base)
        builds_after_first = count_builds(build_logs)
        second = run_playbook(inventory, extra_vars, env, base)
        done = Fleet(base, containers, inventory, env, extra_vars, build_logs, first, second,
                     builds_after_first, count_builds(build_logs))  # fmt: skip
        FLEET.targets = TARGETS
        FLEET.builds = done.builds_after_second
        if first.proc.returncode == 0:
            FLEET.changed_first = changed_targets(first, names)
            installed = re.findall(r"installed now in (\S+)$", "\n".join(first.summary()), re.M)
            FLEET.install_seconds = [delta_seconds(seconds) for seconds in installed]
        if second.proc.returncode == 0:
            FLEET.changed_second = changed_targets(second, names)
        print(f"fleet.yml: run 1 {first.seconds:.1f}s, run 2 {second.seconds:.1f}s")
        yield done


def test_run_1_builds_once_and_changes_every_target(fleet: Fleet) -> None:
    run = fleet.first
    assert run.proc.returncode == 0, run.describe()
    recap = run.recap
    for name in fleet.names:
        assert recap[name]["failed"] == 0 and recap[name]["changed"] > 0, (name, recap)
    assert fleet.builds_after_first == 1, run.describe()
    shipped = run.task(
        "Ship the tool, the artifact and their .sha256 (one bundle, unpacked on the target)"
    )
    assert all(f"changed: [{name}]" in shipped for name in fleet.names), shipped
    summary = run.summary()
    assert any(
        line.startswith("artifact sqlite-3.44.2-x86_64-glibc") and "built now on localhost" in line
        for line in summary
    ), summary
    for name in fleet.names:
        line = next(line for line in summary if line.startswith(f"{name}: "))
        assert line.startswith(
            f"{name}: SQLite {VERSION}, /opt/sqlite/{VERSION}/lib/libsqlite3.so."
        ), line
        assert ", 0 stale process(es), installed now in " in line, line
    assert len(FLEET.install_seconds) == TARGETS, summary


def test_run_2_builds_nothing_and_changes_nothing(fleet: Fleet) -> None:
    run = fleet.second
    assert run.proc.returncode == 0, run.describe()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap
    assert fleet.builds_after_second == fleet.builds_after_first == 1
    summary = run.summary()
    assert any(line.endswith(f"for {GROUP}: from the cache") for line in summary), summary
    for name in fleet.names:
        assert any(
            line.startswith(f"{name}: SQLite {VERSION},") and "already installed" in line
            for line in summary
        ), summary
    artifacts = sorted(
        p.name for p in Path(str(fleet.extra_vars["sqlite_provision_fleet_cache"])).iterdir()
    )
    assert len([a for a in artifacts if a.endswith(".tar.gz")]) == 1, artifacts


def test_no_target_has_a_compiler(fleet: Fleet) -> None:
    """The image has none; the play installed none (`install --artifact --no-install-deps`)."""
    found = {}
    for name in fleet.names:
        probe = fleet.containers.sh(name, COMPILER_PROBE)
        assert probe.returncode == 0, probe.stderr
        assert "package gcc is not installed" in probe.stdout, probe.stdout  # the probe ran
        found[name] = [line for line in probe.stdout.splitlines() if line.startswith("/")]
    FLEET.compilers = sum(1 for paths in found.values() if paths)
    assert FLEET.compilers == 0, found


def test_a_login_shell_on_every_target_loads_the_new_sqlite(fleet: Fleet) -> None:
    for name in fleet.names:
        login = fleet.containers.sh(name, LOGIN_SQLITE)
        assert login.stdout.strip() == VERSION, (name, login.stdout, login.stderr)
        profile = fleet.containers.sh(name, "cat /etc/profile.d/sqlite-provision.sh")
        assert "/opt/sqlite/current/lib" in profile.stdout, profile.stdout


def test_the_role_options_reach_the_tool_on_the_targets(fleet: Fleet) -> None:
    """sqlite_provision_venvs (--venv) and sqlite_provision_install_args (--min-version) apply
    to the fleet's install as to site.yml's."""
    bound = fleet.containers.podman(
        "exec", fleet.names[-1], "env", "-i", f"{APP_VENV}/bin/python", "-c",
        "import sqlite3; print(sqlite3.sqlite_version)",
    )  # fmt: skip
    assert bound.stdout.strip() == VERSION, bound.stdout + bound.stderr
    for name in fleet.names:
        logs = fleet.containers.sh(name, "cat /var/log/sqlite-provision/install-*.log")
        assert f"loads SQLite >= {MIN_VERSION} from the prefix" in logs.stdout, name


def test_check_mode_builds_nothing_and_changes_nothing(fleet: Fleet) -> None:
    """--check with an empty cache: the build runs with --dry-run (no build, no artifact), and
    each target's install with --dry-run."""
    empty = fleet.base / "check-artifacts"
    before = fleet.builds()
    run = fleet.play("--check", sqlite_provision_fleet_cache=str(empty))
    assert run.proc.returncode == 0, run.describe()
    # Only the controller would change (its cache directory), as the run_once host's tasks
    # delegated to it say; no target would.
    changed = re.findall(r"^changed: \[(.*?)\]", run.proc.stdout, re.M)
    assert all(host.endswith(" -> localhost") for host in changed), changed
    assert fleet.builds() == before
    assert not empty.exists() or not any(empty.iterdir())
    summary = run.summary()
    assert any(line.endswith("would be built on localhost (--check)") for line in summary), summary
    for name in fleet.names:
        assert (
            f"{name}: would install SQLite {VERSION} into /opt/sqlite/{VERSION} (--check)"
            in summary
        ), summary


def test_a_failed_build_stops_the_play_before_any_target(fleet: Fleet) -> None:
    """The build runs once, on the first target's turn: when it cannot be done (here its
    tarball is missing), every target stops there, with the tool's message, and none is
    touched."""
    before = {name: fleet.containers.sh(name, "ls -l --full-time /opt/sqlite").stdout
              for name in fleet.names}  # fmt: skip
    run = fleet.play(
        sqlite_provision_fleet_build_args=[
            "--tarball",
            str(fleet.base / "missing" / "sqlite.tar.gz"),
        ],
        sqlite_provision_fleet_cache=str(fleet.base / "failed-build-artifacts"),
    )
    assert run.proc.returncode != 0, run.describe()
    failures = [line for name in fleet.names for line in run.failures(name)]
    assert len(failures) == 1, run.describe()
    assert "sqlite-provision build --dry-run exited 2 on localhost: " in failures[0], failures
    assert "sqlite.tar.gz' does not exist" in failures[0], failures
    assert "Ship the tool, the artifact and their .sha256" not in run.proc.stdout
    assert "Provision a current SQLite" not in run.proc.stdout
    after = {name: fleet.containers.sh(name, "ls -l --full-time /opt/sqlite").stdout
             for name in fleet.names}  # fmt: skip
    assert after == before


def test_a_corrupted_artifact_fails_only_its_target(fleet: Fleet) -> None:
    """One byte of one target's copy of the artifact flipped; the play installs again what the
    targets hold (--skip-tags sqlite_provision_ship): that target fails with the tool's checksum
    message and keeps its install (installed already, the tool still checks the copy it is
    given), the others succeed with nothing to do."""
    bad, good = fleet.names[-1], fleet.names[:-1]  # the last: the summary must still come
    flip = (
        "import glob; p = glob.glob('/var/cache/sqlite-provision-fleet/sqlite-*.tar.gz')[0]; "
        "b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 1; open(p, 'wb').write(bytes(b))"
    )
    corrupted = fleet.containers.podman("exec", bad, "python3", "-c", flip)
    assert corrupted.returncode == 0, corrupted.stderr
    run = fleet.play("--skip-tags", "sqlite_provision_ship")
    assert run.proc.returncode != 0, run.describe()
    recap = run.recap
    assert recap[bad]["failed"] == 1, recap
    for name in good:
        assert recap[name]["failed"] == 0 and recap[name]["changed"] == 0, recap
    failures = run.failures(bad)
    assert len(failures) == 1, run.describe()
    assert "sqlite-provision install exited 4: checksum mismatch" in failures[0], failures
    assert "(hint: copy the artifact again" in failures[0], failures
    assert not any(run.failures(name) for name in good), run.describe()
    summary = run.summary()
    assert any(line.startswith(f"{bad}: FAILED (exit 4): checksum mismatch") for line in summary), (
        summary
    )
    # Refused before anything changed: the target still loads the version it had.
    login = fleet.containers.sh(bad, LOGIN_SQLITE)
    assert login.stdout.strip() == VERSION, login.stdout + login.stderr


def test_a_builder_host_builds_for_its_group(
    fleet: Fleet, podman_env: Dict[str, str], pseudo_rhel_image: Dict[str, str]
) -> None:
    """A group whose hosts name a builder (sqlite_provision_fleet_builder) gets its artifact built
    there, not on the controller: the builder installs gcc and make itself (yum, as root), the
    artifact is fetched into the controller's cache, and the target still has no compiler. This
    target has no tar either: its files come by `copy` (sqlite_provision_fleet_ship). A second
    run takes the artifact from the cache and builds nothing."""
    builder, target = f"sqlite-fleet-{os.getpid()}-builder", f"sqlite-fleet-{os.getpid()}-4"
    base = fleet.base / "builder"
    base.mkdir()
    inventory = write_inventory(
        base / "inventory.json",
        {
            "fleet_targets": {
                target: {
                    "sqlite_provision_fleet_builder": builder,
                    "sqlite_provision_fleet_ship": "copy",
                }
            },
            "builders": {builder: {}},
        },
    )
    cache = base / "artifacts"
    tarball = Path(str(fleet.extra_vars["sqlite_provision_fleet_build_args"][1]))  # type: ignore[index]
    extra_vars: Dict[str, object] = {
        **fleet.extra_vars,
        "sqlite_provision_fleet_hosts": "fleet_targets",  # the builder is no target
        "sqlite_provision_fleet_build_args": ["--tarball", f"/root/{tarball.name}"],
        "sqlite_provision_fleet_build_environment": {"CFLAGS": "-O0"},
        "sqlite_provision_fleet_cache": str(cache),
    }
    with Containers(podman_env, pseudo_rhel_image["image"], [builder, target]) as containers:
        copied = containers.podman("cp", str(tarball), f"{builder}:/root/{tarball.name}")
        assert copied.returncode == 0, copied.stderr
        no_tar = containers.sh(target, "rm -f /usr/bin/tar /bin/tar; ! command -v tar")
        assert no_tar.returncode == 0, no_tar.stdout
        first = run_playbook(inventory, extra_vars, fleet.env, base)
        assert first.proc.returncode == 0, first.describe()
        summary = first.summary()
        assert any(f"built now on {builder} (" in line for line in summary), summary
        assert any(line.startswith(f"{target}: SQLite {VERSION},") for line in summary), summary
        shipped = first.task("Ship the tool, the artifact and their .sha256 (copied one by one)")
        assert shipped.count(f"changed: [{target}] => (item=") == 4, first.describe()
        assert fleet.builds() == fleet.builds_after_second  # not on the controller
        assert len(list(cache.glob("sqlite-*.tar.gz"))) == 1, sorted(cache.iterdir())
        assert containers.sh(builder, "rpm -q gcc make").returncode == 0  # the builder's own
        probe = containers.sh(target, COMPILER_PROBE)
        assert not [line for line in probe.stdout.splitlines() if line.startswith("/")], probe
        login = containers.sh(target, LOGIN_SQLITE)
        assert login.stdout.strip() == VERSION, login.stdout + login.stderr
        second = run_playbook(inventory, extra_vars, fleet.env, base)
        assert second.proc.returncode == 0, second.describe()
        assert all(counts["changed"] == 0 for counts in second.recap.values()), second.recap
        assert any(line.endswith("from the cache") for line in second.summary()), second.summary()


def test_a_rolling_run_stops_at_the_first_batch_with_a_failure(fleet: Fleet) -> None:
    """serial 1 and max_fail_percentage 0 (the README's rolling example, in small): the first
    target is done, the second has a wrong .sha256 and fails, and the third is never reached."""
    first, bad, last = fleet.names
    wrong_sum = (
        "import glob; p = glob.glob('/var/cache/sqlite-provision-fleet/sqlite-*.tar.gz')[0]; "
        "open(p + '.sha256', 'w').write('0' * 64 + '  ' + p.rsplit('/', 1)[1] + '\\n')"
    )
    wrong = fleet.containers.podman("exec", bad, "python3", "-c", wrong_sum)
    assert wrong.returncode == 0, wrong.stderr
    run = fleet.play(
        "--skip-tags", "sqlite_provision_ship",
        sqlite_provision_fleet_serial=1,
        sqlite_provision_fleet_max_fail_percentage=0,
    )  # fmt: skip
    assert run.proc.returncode != 0, run.describe()
    provisioned = run.task("Provision a current SQLite")
    assert f"ok: [{first}]" in provisioned, provisioned  # installed already: nothing to do
    assert len(run.failures(bad)) == 1 and "checksum mismatch" in run.failures(bad)[0]
    assert f"[{last}]" not in provisioned, provisioned
    assert "The fleet, host by host" not in run.proc.stdout  # stopped: no summary
