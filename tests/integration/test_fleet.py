"""The fleet tier (marker `fleet`): examples/ansible/fleet.yml, run by the real ansible-playbook
against a mixed fleet of podman containers on the RHEL look-alikes with RHEL's own SQLite and
python3 (tests/support/look_alike_trees.py), reached through the real `containers.podman.podman`
connection plugin (tests/support/fleet.py):

| host        | look-alike | system SQLite | python3 (the tool's) | glibc | role                        |
|-------------|------------|---------------|----------------------|-------|-----------------------------|
| el9-1       | RHEL 9     | 3.34.1        | 3.9.2                | 2.31  | target, its group's builder |
| el9-2       | RHEL 9     | 3.34.1        | 3.9.2                | 2.31  | target                      |
| el8-1       | RHEL 8     | 3.26.0        | 3.6.15               | 2.36  | target, its group's builder |
| el7-1       | RHEL 7     | 3.7.17        | 3.6.15               | 2.36  | target, no tar (`copy`)     |
| el7-builder | RHEL 7     | 3.7.17        | 3.6.15               | 2.36  | builder container, no target|

Three groups, each built where fleet.yml puts it: RHEL 9 and 8 on their first host (the default:
the tool yum-installs gcc and make there), RHEL 7 on a builder container named in the inventory.
Only the builders reach the loopback mirror (--network=host); the other targets have no network
and no compiler. Each target installs with `install --artifact --no-install-deps` on its own
/usr/bin/python3 and binds an application venv (--venv). (The RHEL 7 and 8 look-alikes sit on a
Debian 12 base, glibc 2.36, the RHEL 9 one on Debian 11, glibc 2.31: the versions RHEL has are
lower, but the order is what matters to a fleet: one group's glibc is not another's.)

The module fixture first runs the play on the RHEL 9 targets with the controller as their builder
(glibc 2.36) and the same feature options as el9-1 resolves: the artifact is built and cached
with its floor, 2.34, and refused for the group (2.31) before any target changes. Then the whole
play twice: run 1 must not ship that cached artifact but rebuild on el9-1; run 2 builds nothing.
The tests read those runs, then run it again: under --check, with a build that cannot be done,
with one target's copy of the artifact corrupted, and last an upgrade to 3.52.0 in batches (a
canary, then two hosts, then the rest, max_fail_percentage 0) in which one host's verification
fails (its --min-version is above 3.52.0): the tool undoes that host alone, the rollout stops
before the last batch, and the summary names the hosts left on 3.44.2.

The session prints one line (tests/integration/conftest.py):
`fleet: N targets in G groups, built B time(s), run 1 changed=C1, run 2 changed=C2, compilers on
targets: K, per-target install S s` (B: the builds of run 1; K: targets that are not builders and
have a compiler; S: the median wall time of the tool's install on a target, run 1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from support.fleet import (
    FLEET,
    FLEET_PLAYBOOK,
    Containers,
    Play,
    Target,
    ansible_env,
    ansible_playbook,
    delta_seconds,
    podman_collection,
    run_playbook,
    write_inventory,
)
from support.look_alike_trees import look_alike_tree, tree_info
from support.mirror import Mirror
from support.pseudo_rhel_image import cache_dir

pytestmark = pytest.mark.fleet

VERSION = "3.44.2"
UPGRADE = "3.52.0"  # withdrawn upstream: the build needs --allow-withdrawn
ARCH = platform.machine()
TARGETS = ("el9-1", "el9-2", "el8-1", "el7-1")  # the inventory's order: the play's
BUILDER7 = "el7-builder"
LOOK_ALIKE = {"el9-1": "rhel9", "el9-2": "rhel9", "el8-1": "rhel8", "el7-1": "rhel7",
              BUILDER7: "rhel7"}  # fmt: skip
BUILDERS = {9: "el9-1", 8: "el8-1", 7: BUILDER7}  # major -> where its artifact is built
NETWORKED = set(BUILDERS.values())  # the builders download from the loopback mirror
SHIPPED_BY_COPY = "el7-1"  # no tar there
APP_VENV = "/opt/app/venv"
MIN_VERSION = "3.40.0"
FLEET_DIR = "/var/cache/sqlite-provision-fleet"
COMPILER_PROBE = (
    "command -v gcc || command -v cc || command -v make || rpm -q gcc || rpm -q make || true"
)
PROBE = "import sqlite3, sys; print(sqlite3.sqlite_version, sys.version.split()[0])"
LOGIN_PROBE = f"bash -lc 'python3 -c \"{PROBE}\"'"
UNTOUCHED = f"ls {FLEET_DIR} /opt/sqlite /etc/profile.d/sqlite-provision.sh 2>/dev/null || true"


def group(major: int) -> str:
    return f"sqlite_provision_fleet_RedHat{major}_{ARCH}"


def major_of(alias: str) -> int:
    return int(alias[2])


@dataclass
class Fleet:
    base: Path
    containers: Containers
    names: Dict[str, str]  # inventory name -> container
    env: Dict[str, str]
    extra_vars: Dict[str, object]
    mirror: Mirror
    info: Dict[str, Dict[str, Any]]  # inventory name -> its look-alike (tree_info)
    plays: Dict[str, Play] = field(default_factory=dict)  # "seed", "first", "second"
    seed_artifact: Path = Path()
    seed_sha256: str = ""
    tarball_requests: int = 0  # during run 1
    after_seed: Dict[str, str] = field(default_factory=dict)  # what the targets held then

    @property
    def seed(self) -> Play:
        return self.plays["seed"]

    @property
    def first(self) -> Play:
        return self.plays["first"]

    @property
    def second(self) -> Play:
        return self.plays["second"]

    @property
    def cache(self) -> Path:
        return Path(str(self.extra_vars["sqlite_provision_fleet_cache"]))

    def inventory(self, install_args: Dict[str, List[str]], name: str) -> Path:
        return write_fleet_inventory(self.base / name, self.names, self.info, install_args)

    def play(self, *args: str, inventory: str = "inventory.json", **extra: object) -> Play:
        return run_playbook(self.base / inventory, {**self.extra_vars, **extra}, self.env,
                            self.base, *args)  # fmt: skip

    def sh(self, alias: str, script: str) -> str:
        done = self.containers.sh(self.names[alias], script)
        assert done.returncode == 0, (alias, script, done.stdout, done.stderr)
        return done.stdout

    def login_probe(self, alias: str) -> List[str]:
        """[SQLite version, python version] of a login shell's python3 on `alias`."""
        return self.sh(alias, LOGIN_PROBE).split()


def write_fleet_inventory(
    path: Path, names: Dict[str, str], info: Dict[str, Dict[str, Any]],
    install_args: Dict[str, List[str]],
) -> Path:  # fmt: skip
    """The targets (group fleet_targets, in TARGETS' order) and the RHEL 7 builder (group
    builders); each host's install args from `install_args` (default: --min-version)."""

    def host(alias: str) -> Dict[str, object]:
        values: Dict[str, object] = {
            "ansible_host": names[alias],
            "ansible_python_interpreter": info[alias]["ansible_python"],
        }
        if alias in TARGETS:
            values["sqlite_provision_venvs"] = [APP_VENV]
            values["sqlite_provision_install_args"] = install_args.get(
                alias, ["--min-version", MIN_VERSION]
            )
        if major_of(alias) == 7 and alias != BUILDER7:
            values["sqlite_provision_fleet_builder"] = BUILDER7
        if alias == SHIPPED_BY_COPY:
            values["sqlite_provision_fleet_ship"] = "copy"
        return values

    return write_inventory(
        path,
        {"fleet_targets": {a: host(a) for a in TARGETS}, "builders": {BUILDER7: host(BUILDER7)}},
    )


def changed_targets(play: Play) -> int:
    recap = play.recap
    return sum(1 for name in TARGETS if recap[name]["changed"] > 0)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def host_library_options(containers: Containers, container: str, mirror: Mirror) -> List[str]:
    """The feature options that `build --dry-run` on `container` takes from its system library
    (on top of Red Hat's baseline): the same --enable list on the controller gives the same
    options, hence the same cache key but for the glibc floor."""
    plan = containers.podman(
        "exec", container, "python3", "/root/sqlite-provision.pyz", "build", "--dry-run",
        "--json", "--artifact", "/tmp/plan.tar.gz", "--version", VERSION, "--mirror", mirror.url,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stdout + plan.stderr
    features = json.loads(plan.stdout)["features"]
    return [f["option"] for f in features if f["origin"] != "rhel baseline"]


def seed_play(fleet: Fleet, enables: List[str]) -> Play:
    """The RHEL 9 targets with the controller as their builder: its artifact (floor 2.34) goes
    into the cache, and is refused for the group before any target changes."""
    tmp = fleet.base / "controller-tmp"  # the build runs as nobody: a directory it can pass
    tmp.mkdir(mode=0o755)
    build_args: List[str] = ["--mirror", fleet.mirror.url, "--compat", "rhel"]
    for option in enables:
        build_args += ["--enable", option]
    return fleet.play(
        sqlite_provision_fleet_hosts=f"{TARGETS[0]}:{TARGETS[1]}",
        sqlite_provision_fleet_builder="localhost",
        sqlite_provision_fleet_build_args=build_args,
        sqlite_provision_fleet_build_environment={
            "CFLAGS": "-O0",
            "TMPDIR": str(tmp),
            "SQLITE_PROVISION_LOG_DIR": str(fleet.base / "controller-log"),
            "SQLITE_PROVISION_CACHE_DIR": str(fleet.base / "controller-cache"),
            "SQLITE_PROVISION_LOCK_FILE": str(fleet.base / "controller.lock"),
        },
    )


def fleet_vars(pyz: Path, mirror: Mirror, cache: Path) -> Dict[str, object]:
    """The extra vars of every run: the targets, the tool, VERSION from the loopback mirror at
    -O0, and the controller's cache."""
    return {
        "sqlite_provision_fleet_hosts": "fleet_targets",  # the builder container is no target
        "sqlite_provision_pyz": str(pyz),
        "sqlite_provision_fleet_version": VERSION,
        "sqlite_provision_fleet_build_args": ["--mirror", mirror.url],
        "sqlite_provision_fleet_build_environment": {"CFLAGS": "-O0"},
        "sqlite_provision_fleet_cache": str(cache),
    }


@contextlib.contextmanager
def started_fleet(
    podman_env: Dict[str, str], base: Path, prefix: str, extra_vars: Dict[str, object],
    mirror: Mirror,
) -> Iterator[Tuple[Fleet, Dict[str, Path]]]:  # fmt: skip
    """The look-alike trees (made once) as the containers LOOK_ALIKE names (`prefix-PID-alias`),
    the inventory, the application venv on every target and no tar on SHIPPED_BY_COPY; the
    fleet and the trees, the containers removed afterwards."""
    env = ansible_env(podman_env, podman_collection(cache_dir()), base)
    trees = {name: look_alike_tree(name) for name in sorted(set(LOOK_ALIKE.values()))}
    info = {alias: tree_info(trees[name]) for alias, name in LOOK_ALIKE.items()}
    names = {alias: f"{prefix}-{os.getpid()}-{alias}" for alias in LOOK_ALIKE}
    targets = [Target(names[alias], trees[name], "host" if alias in NETWORKED else "none")
               for alias, name in LOOK_ALIKE.items()]  # fmt: skip
    with Containers(podman_env, targets) as containers:
        fleet = Fleet(base, containers, names, env, extra_vars, mirror, info)
        write_fleet_inventory(base / "inventory.json", names, info, {})
        for alias in TARGETS:
            fleet.sh(alias, f"python3 -m venv --without-pip {APP_VENV}")
        fleet.sh(SHIPPED_BY_COPY, "rm -f /usr/bin/tar /bin/tar; ! command -v tar")
        yield fleet, trees


@pytest.fixture(scope="module")
def fleet(
    podman_env: Dict[str, str],
    pyz: Path,
    sqlite_mirror: Mirror,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    ansible_playbook()
    started = time.monotonic()
    base = tmp_path_factory.mktemp("fleet")
    extra_vars = fleet_vars(pyz, sqlite_mirror, base / "artifacts")
    with started_fleet(podman_env, base, "sqlite-fleet", extra_vars, sqlite_mirror) as (fleet, _):
        sys.stderr.write(f"\nfleet: trees and containers {time.monotonic() - started:.1f}s\n")
        containers, names = fleet.containers, fleet.names
        copied = containers.podman("cp", str(pyz), f"{names['el9-1']}:/root/sqlite-provision.pyz")
        assert copied.returncode == 0, copied.stderr
        enables = host_library_options(containers, names["el9-1"], sqlite_mirror)
        fleet.plays["seed"] = seed_play(fleet, enables)
        fleet.after_seed = {alias: fleet.sh(alias, UNTOUCHED) for alias in TARGETS}
        seeded = sorted(fleet.cache.glob(f"sqlite-{VERSION}-{ARCH}-glibc*.tar.gz"))
        assert len(seeded) == 1, (seeded, fleet.seed.describe())
        fleet.seed_artifact, fleet.seed_sha256 = seeded[0], sha256(seeded[0])
        before = sqlite_mirror.count("/2023/")
        fleet.plays["first"] = fleet.play()
        fleet.tarball_requests = sqlite_mirror.count("/2023/") - before
        fleet.plays["second"] = fleet.play()
        tally(fleet)
        sys.stderr.write(
            f"fleet.yml: seed {fleet.seed.seconds:.1f}s, run 1 {fleet.first.seconds:.1f}s, "
            f"run 2 {fleet.second.seconds:.1f}s\n"
        )
        yield fleet


def tally(fleet: Fleet) -> None:
    FLEET.targets = len(TARGETS)
    FLEET.groups = len({major_of(alias) for alias in TARGETS})
    if fleet.first.proc.returncode == 0:
        summary = "\n".join(fleet.first.summary())
        FLEET.builds = len(re.findall(r"^artifact \S+ for \S+: built now on ", summary, re.M))
        FLEET.changed_first = changed_targets(fleet.first)
        installed = re.findall(r"installed now in (\S+)$", summary, re.M)
        FLEET.install_seconds = [delta_seconds(seconds) for seconds in installed]
    if fleet.second.proc.returncode == 0:
        FLEET.changed_second = changed_targets(fleet.second)


def artifact_line(summary: List[str], major: int) -> str:
    found = [line for line in summary if line.startswith("artifact ") and f" for {group(major)}:"
             in line]  # fmt: skip
    assert len(found) == 1, summary
    return found[0]


# --- the runs -------------------------------------------------------------------------------


def test_an_artifact_built_on_a_newer_glibc_is_refused_before_any_target(fleet: Fleet) -> None:
    """The controller (glibc 2.36) built the RHEL 9 group's artifact: it needs 2.34, the group
    has 2.31. The play stops there, with both versions in its message, before any target is
    touched; the artifact stays in the cache under its floor (a newer group may use it)."""
    run = fleet.seed
    assert run.proc.returncode != 0, run.describe()
    assert fleet.seed_artifact.name.startswith(f"sqlite-{VERSION}-{ARCH}-glibc2.34-")
    failures = [line for alias in TARGETS[:2] for line in run.failures(alias)]
    assert len(failures) == 1, run.describe()
    assert (
        f"the artifact built on localhost ({fleet.seed_artifact.name}) needs glibc 2.34, and the "
        f"hosts of {group(9)} have 2.31" in failures[0]
    ), failures
    assert (
        "Ship the tool" not in run.proc.stdout
        and "Provision a current SQLite" not in run.proc.stdout
    )
    assert fleet.after_seed == {alias: "" for alias in TARGETS}


def test_run_1_builds_once_per_group_on_its_builder_and_changes_every_target(fleet: Fleet) -> None:
    run = fleet.first
    assert run.proc.returncode == 0, run.describe()
    recap = run.recap
    for alias in TARGETS:
        assert recap[alias]["failed"] == 0 and recap[alias]["changed"] > 0, (alias, recap)
    assert BUILDER7 not in recap or recap[BUILDER7]["changed"] == 0, recap
    summary = run.summary()
    for major, builder in BUILDERS.items():
        line = artifact_line(summary, major)
        assert f": built now on {builder} (" in line, line
        logs = fleet.sh(builder, "ls /var/log/sqlite-provision/").split()
        assert len([log for log in logs if log.startswith("build-")]) == 1, (builder, logs)
    assert FLEET.builds == FLEET.groups == 3, summary
    assert fleet.tarball_requests == 3  # one download per build; no target fetched anything
    for alias in TARGETS:
        line = next(line for line in summary if line.startswith(f"{alias}: "))
        assert line.startswith(
            f"{alias}: SQLite {VERSION}, /opt/sqlite/{VERSION}/lib/libsqlite3.so."
        ), line
        assert ", 0 stale process(es), installed now in " in line, line
    assert len(FLEET.install_seconds) == len(TARGETS), summary
    copied = run.task("Ship the tool, the artifact and their .sha256 (copied one by one)")
    assert copied.count(f"changed: [{SHIPPED_BY_COPY}] => (item=") == 4, copied
    unpacked = run.task(
        "Ship the tool, the artifact and their .sha256 (one bundle, unpacked on the target)"
    )
    assert all(f"changed: [{alias}]" in unpacked for alias in TARGETS if alias != SHIPPED_BY_COPY)


def test_a_cached_artifact_whose_glibc_floor_is_too_high_is_rebuilt_for_the_group(
    fleet: Fleet,
) -> None:
    """Run 1 found the controller's artifact of the RHEL 9 group's key (same version, arch and
    options) with floor 2.34 in the cache: it refused it and built on el9-1; the RHEL 9 targets
    hold and run only the new one, whose floor is at most their 2.31."""
    line = artifact_line(fleet.first.summary(), 9)
    seed = fleet.seed_artifact.name
    digest = seed[: -len(".tar.gz")].rsplit("-", 1)[1]
    match = re.match(
        rf"artifact (sqlite-{VERSION}-{ARCH}-glibc([0-9.]+)-{digest})[.]tar[.]gz for ", line
    )
    assert match, (line, seed)
    floor = tuple(int(part) for part in match.group(2).split("."))
    assert floor <= (2, 31), line
    assert f"; not {seed} from the cache: it needs glibc 2.34, the group has 2.31" in line, line
    assert sha256(fleet.seed_artifact) == fleet.seed_sha256  # left as it was
    for alias in ("el9-1", "el9-2"):
        held = fleet.sh(alias, f"ls {FLEET_DIR}").split()
        assert f"{match.group(1)}.tar.gz" in held and seed not in held, (alias, held)
        metadata = fleet.sh(alias, f"tar -xzOf {FLEET_DIR}/{match.group(1)}.tar.gz metadata.json")
        assert json.loads(metadata)["glibc_min"] == match.group(2)
    assert seed not in fleet.first.proc.stdout.replace(f"; not {seed} from the cache", "")


def test_run_2_builds_nothing_and_changes_nothing(fleet: Fleet) -> None:
    run = fleet.second
    assert run.proc.returncode == 0, run.describe()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap
    summary = run.summary()
    for major in BUILDERS:
        assert artifact_line(summary, major).split(": ", 1)[1].startswith("from the cache"), summary
    for builder in BUILDERS.values():
        logs = fleet.sh(builder, "ls /var/log/sqlite-provision/").split()
        assert len([log for log in logs if log.startswith("build-")]) == 1, (builder, logs)
    for alias in TARGETS:
        assert any(line.startswith(f"{alias}: SQLite {VERSION},") and "already installed" in line
                   for line in summary), summary  # fmt: skip
    built = sorted(p.name for p in fleet.cache.glob("sqlite-*.tar.gz"))
    assert len(built) == 4, built  # one per group, and the controller's refused one


def test_only_builders_got_a_compiler(fleet: Fleet) -> None:
    """The look-alikes have none; the tool yum-installed gcc and make on the builders only."""
    found = {}
    for alias in (*TARGETS, BUILDER7):
        probe = fleet.sh(alias, COMPILER_PROBE)
        found[alias] = [line for line in probe.splitlines() if line.startswith("/")]
        if alias in NETWORKED:
            gcc = fleet.info[alias]["major"]
            assert fleet.sh(alias, "rpm -q gcc make").startswith("gcc-"), alias
            assert f".el{gcc}" in fleet.sh(alias, "rpm -q gcc"), alias
        else:
            assert "package gcc is not installed" in probe, (alias, probe)  # the probe ran
    FLEET.compilers = sum(1 for alias in TARGETS if alias not in NETWORKED and found[alias])
    assert FLEET.compilers == 0, found


def test_every_target_runs_the_tool_on_its_own_python3_and_its_login_shell_and_venv_load_it(
    fleet: Fleet, pyz: Path
) -> None:
    pyz_sum = sha256(pyz)
    for alias in TARGETS:
        python = str(fleet.info[alias]["python"])
        assert fleet.login_probe(alias) == [VERSION, python], alias
        bound = fleet.containers.podman(
            "exec", fleet.names[alias], "env", "-i", f"{APP_VENV}/bin/python", "-c", PROBE
        )
        assert bound.stdout.split() == [VERSION, python], (alias, bound.stdout, bound.stderr)
        plain = fleet.sh(alias, f'env -i /usr/bin/python3 -c "{PROBE}"').split()
        assert plain == [str(fleet.info[alias]["system_sqlite"]), python], alias
        # The pyz's bytecode cache is keyed by the python that ran it: only the target's own.
        tag = "cpython-" + "".join(python.split(".")[:2])
        assert fleet.sh(alias, "ls /var/cache/sqlite-provision/pyz").split() == [f"{pyz_sum}.{tag}"]
        log = fleet.sh(alias, "cat /var/log/sqlite-provision/install-*.log")
        assert f"loads SQLite >= {MIN_VERSION} from the prefix" in log, alias


def test_check_mode_builds_nothing_and_changes_nothing(fleet: Fleet) -> None:
    """--check with an empty cache: each group's build runs with --dry-run on its builder (no
    build, no artifact: its floor, hence its name, is not known), and each target says it would
    receive the artifact and install it."""
    empty = fleet.base / "check-artifacts"
    run = fleet.play("--check", sqlite_provision_fleet_cache=str(empty))
    assert run.proc.returncode == 0, run.describe()
    # Only the controller would change (its cache directory); no target, no builder would.
    changed = re.findall(r"^changed: \[(.*?)\]", run.proc.stdout, re.M)
    assert all(host.endswith(" -> localhost") for host in changed), changed
    assert not empty.exists() or not any(empty.iterdir())
    summary = run.summary()
    for major, builder in BUILDERS.items():
        assert artifact_line(summary, major).endswith(f"would be built on {builder} (--check)")
    for alias in TARGETS:
        assert f"{alias}: would receive the artifact and install it (--check)" in summary
    for builder in BUILDERS.values():
        logs = fleet.sh(builder, "ls /var/log/sqlite-provision/").split()
        assert len([log for log in logs if log.startswith("build-")]) == 1, (builder, logs)


def test_a_failed_build_stops_the_play_before_any_target(fleet: Fleet) -> None:
    """The builds run once, on the first target's turn: when one cannot be done (here its
    tarball is missing), every target stops there, with the tool's message, and none is
    touched."""
    before = {alias: fleet.sh(alias, "ls -l --full-time /opt/sqlite") for alias in TARGETS}
    run = fleet.play(
        sqlite_provision_fleet_build_args=["--tarball", "/missing/sqlite.tar.gz"],
        sqlite_provision_fleet_cache=str(fleet.base / "failed-build-artifacts"),
    )
    assert run.proc.returncode != 0, run.describe()
    failures = [line for alias in TARGETS for line in run.failures(alias)]
    assert len(failures) == 1, run.describe()
    first_group = BUILDERS[min(BUILDERS)]  # the groups are built in their names' order
    assert f"sqlite-provision build --dry-run exited 2 on {first_group}: " in failures[0], failures
    assert "sqlite.tar.gz' does not exist" in failures[0], failures
    assert "Ship the tool, the artifact" not in run.proc.stdout
    assert "Provision a current SQLite" not in run.proc.stdout
    assert {alias: fleet.sh(alias, "ls -l --full-time /opt/sqlite") for alias in TARGETS} == before


def test_a_corrupted_artifact_fails_only_its_target(fleet: Fleet) -> None:
    """One byte of one target's copy of the artifact flipped; the play installs again what the
    RHEL 9 targets hold (--skip-tags sqlite_provision_ship): that target fails with the tool's
    checksum message and keeps its install (installed already, the tool still checks the copy it
    is given), the other succeeds with nothing to do."""
    bad, good = "el9-2", ["el9-1"]
    flip = (
        f"import glob; p = glob.glob('{FLEET_DIR}/sqlite-*.tar.gz')[0]; "
        "b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 1; open(p, 'wb').write(bytes(b))"
    )
    corrupted = fleet.containers.podman("exec", fleet.names[bad], "python3", "-c", flip)
    assert corrupted.returncode == 0, corrupted.stderr
    run = fleet.play("--skip-tags", "sqlite_provision_ship",
                     sqlite_provision_fleet_hosts=":".join([*good, bad]))  # fmt: skip
    assert run.proc.returncode != 0, run.describe()
    recap = run.recap
    assert recap[bad]["failed"] == 1, recap
    for alias in good:
        assert recap[alias]["failed"] == 0 and recap[alias]["changed"] == 0, recap
    failures = run.failures(bad)
    assert len(failures) == 1, run.describe()
    assert "sqlite-provision install exited 4: checksum mismatch" in failures[0], failures
    assert "(hint: copy the artifact again" in failures[0], failures
    assert not any(run.failures(alias) for alias in good), run.describe()
    summary = run.summary()
    line = next(line for line in summary if line.startswith(f"{bad}: "))
    assert line.startswith(f"{bad}: FAILED (exit 4): checksum mismatch"), summary
    assert line.endswith(f"; left on SQLite {VERSION}"), line
    assert fleet.login_probe(bad)[0] == VERSION  # refused before anything changed


def test_a_canary_upgrade_stops_at_the_bad_host_which_is_back_on_its_old_version(
    fleet: Fleet,
) -> None:
    """3.52.0 in batches: el9-1 (the canary), then el9-2 and el8-1, then el7-1, with
    max_fail_percentage 0. el9-2's --min-version is above 3.52.0: its verification fails after
    the install and the tool undoes it there, and only there (el8-1, in the same batch, keeps
    3.52.0). The play stops before el7-1's batch, and the summary, printed at that batch's end,
    names the hosts left on 3.44.2."""
    bad, canary, beside, unreached = "el9-2", "el9-1", "el8-1", "el7-1"
    fleet.inventory({bad: ["--min-version", "3.60.0"]}, "upgrade-inventory.json")
    run = fleet.play(
        inventory="upgrade-inventory.json",
        sqlite_provision_fleet_version=UPGRADE,
        sqlite_provision_fleet_build_args=["--mirror", fleet.mirror.url, "--allow-withdrawn"],
        sqlite_provision_fleet_serial=[1, 2],
        sqlite_provision_fleet_max_fail_percentage=0,
    )
    assert run.proc.returncode != 0, run.describe()
    provisioned = run.task("Provision a current SQLite")
    for alias in (canary, bad, beside):
        assert f": [{alias}]" in provisioned, provisioned
    assert f"[{unreached}]" not in provisioned, provisioned
    failures = run.failures(bad)
    assert len(failures) == 1 and "sqlite-provision install exited 6: " in failures[0], failures
    assert "older than the required 3.60.0" in failures[0], failures
    assert not any(run.failures(alias) for alias in (canary, beside)), run.describe()
    # The tool undid the bad host's install: 3.44.2 is current again and 3.52.0 is gone.
    assert fleet.login_probe(bad)[0] == VERSION
    assert fleet.sh(bad, "readlink /opt/sqlite/current").strip() == VERSION
    assert fleet.sh(bad, "ls /opt/sqlite").split() == [VERSION, "current"]
    for alias in (canary, beside):
        assert fleet.login_probe(alias)[0] == UPGRADE, alias
    assert fleet.login_probe(unreached)[0] == VERSION
    summary = run.summary()
    assert summary[0].startswith(
        "the rollout stops here: 1 of 2 host(s) of the last batch failed"
    ), summary
    assert (
        f"{unreached}: not reached (the rollout stopped before its batch): left on SQLite {VERSION}"
        in summary
    )
    line = next(line for line in summary if line.startswith(f"{bad}: "))
    assert line.startswith(f"{bad}: FAILED (exit 6): ") and line.endswith(
        f"; left on SQLite {VERSION}"
    ), line
    for alias in (canary, beside):
        assert any(
            line.startswith(f"{alias}: SQLite {UPGRADE} (was {VERSION}),") for line in summary
        ), summary
    assert summary[-1] == (
        f"left on their old version: {unreached} (SQLite {VERSION}), {bad} (SQLite {VERSION})"
    ), summary


# --- repository mode ------------------------------------------------------------------------
#
# The same fleet on fresh containers, with sqlite_provision_fleet_mode=repository: each group's
# build is an RPM (`build --rpm` on the group's builder), put into the group's repository on the
# controller and indexed by the real createrepo_c; each target receives its group's repository,
# installs the package from it with the real ansible.builtin.dnf (RHEL 8 and 9; on RHEL 7, which
# has no dnf module, the tool's yum installs it) and the tool activates it with
# `install --rpm-package NAME`. The targets' rpm databases first get stand-ins for what RHEL's
# glibc, zlib, readline and sqlite-libs provide (support.rpm_lookalike), as on RHEL.

PACKAGE = "sqlite-provision-sqlite" + VERSION.replace(".", "_")
UPGRADE_PACKAGE = "sqlite-provision-sqlite" + UPGRADE.replace(".", "_")
SONAME_PROVIDE = "libsqlite3.so.0()(64bit)"
WHO_PROVIDES = f"rpm -q --whatprovides '{SONAME_PROVIDE}'"


@dataclass
class RepoFleet:
    fleet: Fleet
    repos: Path
    provides_before: Dict[str, str] = field(default_factory=dict)


def install_standins_in_containers(fleet: Fleet, trees: Dict[str, Path], work: Path) -> None:
    """Each container's rpmdb gets the stand-ins made from its own tree's library files."""
    from support.rpm_lookalike import build_standins

    for name, tree in trees.items():
        system = str(next(info["system_sqlite"] for alias, info in fleet.info.items()
                          if LOOK_ALIKE[alias] == name))  # fmt: skip
        standins = build_standins(tree, work / name, versions={"sqlite-libs": system})
        for alias in LOOK_ALIKE:
            if LOOK_ALIKE[alias] != name:
                continue
            paths = []
            for standin in standins.values():
                copied = fleet.containers.podman(
                    "cp", str(standin.rpm), f"{fleet.names[alias]}:/tmp/{standin.rpm.name}"
                )
                assert copied.returncode == 0, copied.stderr
                paths.append(f"/tmp/{standin.rpm.name}")
            fleet.sh(alias, "rpm -i " + " ".join(paths) + " && rm -f " + " ".join(paths))


@pytest.fixture(scope="module")
def repo_fleet(
    podman_env: Dict[str, str],
    pyz: Path,
    sqlite_mirror: Mirror,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RepoFleet]:
    ansible_playbook()
    base = tmp_path_factory.mktemp("fleet-repository")
    repos = base / "repos"
    extra_vars = fleet_vars(pyz, sqlite_mirror, base / "cache")
    extra_vars.update(
        sqlite_provision_fleet_mode="repository", sqlite_provision_fleet_repos=str(repos)
    )
    started = time.monotonic()
    with started_fleet(podman_env, base, "sqlite-fleet-repo", extra_vars, sqlite_mirror) as (
        fleet,
        trees,
    ):
        install_standins_in_containers(fleet, trees, base / "standins")
        repo = RepoFleet(fleet, repos)
        repo.provides_before = {alias: fleet.sh(alias, WHO_PROVIDES) for alias in TARGETS}
        set_up = time.monotonic() - started
        fleet.plays["first"] = fleet.play()
        fleet.plays["second"] = fleet.play()
        sys.stderr.write(
            f"fleet.yml repository mode: set-up {set_up:.1f}s, run 1 {fleet.first.seconds:.1f}s, "
            f"run 2 {fleet.second.seconds:.1f}s\n"
        )
        yield repo


def rpm_line(summary: List[str], major: int) -> str:
    found = [line for line in summary
             if line.startswith("rpm ") and f" for {group(major)}:" in line]  # fmt: skip
    assert len(found) == 1, summary
    return found[0]


def test_repository_mode_builds_an_rpm_per_group_into_its_repository(repo_fleet: RepoFleet) -> None:
    run = repo_fleet.fleet.first
    assert run.proc.returncode == 0, run.describe()
    summary = run.summary()
    for major, builder in BUILDERS.items():
        line = rpm_line(summary, major)
        assert f": built now on {builder} (" in line, line
        assert line.endswith(
            f"; package {PACKAGE} in the repository {repo_fleet.repos}/{group(major)}"
        )
        repository = repo_fleet.repos / group(major)
        assert (repository / "repodata" / "repomd.xml").is_file(), line
        rpms = sorted(p.name for p in repository.glob("*.rpm"))
        assert rpms == [f"{PACKAGE}-{VERSION}-1.{ARCH}.rpm"], rpms
    cached = sorted(p.name for p in repo_fleet.fleet.cache.glob("sqlite-*.rpm"))
    assert len(cached) == 3, cached  # one per group: each group's own build


def test_repository_mode_installs_every_target_from_the_repository(repo_fleet: RepoFleet) -> None:
    fleet = repo_fleet.fleet
    run = fleet.first
    assert run.proc.returncode == 0, run.describe()
    assert all(run.recap[alias]["changed"] > 0 for alias in TARGETS), run.recap
    installed = run.task("Install the package from the repository (ansible.builtin.dnf)")
    for alias in TARGETS:
        if major_of(alias) >= 8:
            assert f"changed: [{alias}]" in installed, (alias, installed)
        else:
            assert f"skipping: [{alias}]" in installed, (alias, installed)
        # dnf's own record: the package came from the fleet's repository
        history = fleet.sh(alias, f"yum -q repoquery --installed --qf '%{{from_repo}}' {PACKAGE}")
        assert history.split() == ["sqlite-provision"], (alias, history)
        owner = fleet.sh(alias, f"rpm -qf /opt/sqlite/{VERSION}/lib/libsqlite3.so.0")
        assert owner.strip() == f"{PACKAGE}-{VERSION}-1.{ARCH}", (alias, owner)
        assert fleet.sh(alias, f"rpm -V {PACKAGE} && echo clean").strip() == "clean", alias
        assert fleet.sh(alias, WHO_PROVIDES) == repo_fleet.provides_before[alias], alias
        python = str(fleet.info[alias]["python"])
        assert fleet.login_probe(alias) == [VERSION, python], alias
        bound = fleet.containers.podman(
            "exec", fleet.names[alias], "env", "-i", f"{APP_VENV}/bin/python", "-c", PROBE
        )
        assert bound.stdout.split() == [VERSION, python], (alias, bound.stdout, bound.stderr)
        line = next(line for line in run.summary() if line.startswith(f"{alias}: "))
        assert line.startswith(f"{alias}: SQLite {VERSION}, /opt/sqlite/{VERSION}/lib/"), line
        assert ", installed now in " in line, line


def test_repository_mode_run_2_changes_nothing(repo_fleet: RepoFleet) -> None:
    run = repo_fleet.fleet.second
    assert run.proc.returncode == 0, run.describe()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap
    summary = run.summary()
    for major in BUILDERS:
        assert rpm_line(summary, major).split(": ", 1)[1].startswith("from the cache"), summary
    for alias in TARGETS:
        assert any(line.startswith(f"{alias}: SQLite {VERSION},") and "already installed" in line
                   for line in summary), summary  # fmt: skip


def test_repository_mode_a_failed_activation_leaves_the_host_as_it_was(
    repo_fleet: RepoFleet,
) -> None:
    """3.52.0 for the RHEL 9 group, from the same repository: el9-1 gets it beside 3.44.2 (two
    packages, side by side); el9-2's --min-version is above it, so the tool fails there after
    ansible.builtin.dnf installed the package: the tool undoes its activation and the play removes
    the package, and el9-2 holds exactly the packages and the SQLite it held before."""
    fleet, bad, good = repo_fleet.fleet, "el9-2", "el9-1"
    held = "rpm -qa | sort; readlink /opt/sqlite/current; ls /opt/sqlite"
    before = fleet.sh(bad, held)
    fleet.inventory({bad: ["--min-version", "3.60.0"]}, "repository-upgrade-inventory.json")
    run = fleet.play(
        inventory="repository-upgrade-inventory.json",
        sqlite_provision_fleet_hosts=f"{good}:{bad}",
        sqlite_provision_fleet_version=UPGRADE,
        sqlite_provision_fleet_build_args=["--mirror", fleet.mirror.url, "--allow-withdrawn"],
    )
    assert run.proc.returncode != 0, run.describe()
    failures = run.failures(bad)
    assert len(failures) == 1 and "sqlite-provision install exited 6: " in failures[0], failures
    assert "older than the required 3.60.0" in failures[0], failures
    assert not run.failures(good), run.describe()
    removed = run.task("Remove the package that this run installed, if the tool failed")
    assert f"changed: [{bad}]" in removed and f"skipping: [{good}]" in removed, removed
    assert fleet.sh(bad, held) == before
    assert fleet.login_probe(bad)[0] == VERSION
    assert fleet.sh(good, f"rpm -q --qf '%{{NAME}}\\n' {PACKAGE} {UPGRADE_PACKAGE}").split() == [
        PACKAGE,
        UPGRADE_PACKAGE,
    ]
    assert fleet.login_probe(good)[0] == UPGRADE
    rpms = sorted(p.name for p in (repo_fleet.repos / group(9)).glob("*.rpm"))
    assert rpms == [
        f"{PACKAGE}-{VERSION}-1.{ARCH}.rpm",
        f"{UPGRADE_PACKAGE}-{UPGRADE}-1.{ARCH}.rpm",
    ]


def test_repository_mode_by_url_ships_only_the_tool_and_dnf_fetches_the_package(
    repo_fleet: RepoFleet,
) -> None:
    """The controller's repositories published by a web server (sqlite_provision_fleet_repo_url),
    as Pulp or a Satellite would publish them: el8-1 (one of the targets that reach the loopback
    network) receives only the tool, and dnf fetches 3.52.0 over HTTP from URL/GROUP."""
    import functools
    import http.server
    import threading

    fleet, host = repo_fleet.fleet, "el8-1"
    fetched: List[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            fetched.append(self.path)

    handler = functools.partial(Handler, directory=str(repo_fleet.repos))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        run = fleet.play(
            sqlite_provision_fleet_hosts=host,
            sqlite_provision_fleet_version=UPGRADE,
            sqlite_provision_fleet_build_args=["--mirror", fleet.mirror.url, "--allow-withdrawn"],
            sqlite_provision_fleet_repo_url=url,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.proc.returncode == 0, run.describe()
    rpm = f"/{group(8)}/{UPGRADE_PACKAGE}-{UPGRADE}-1.{ARCH}.rpm"
    assert rpm in fetched and f"/{group(8)}/repodata/repomd.xml" in fetched, fetched
    repo_file = fleet.sh(host, "cat /etc/yum.repos.d/sqlite-provision.repo")
    assert f"baseurl = {url.rstrip('/')}/{group(8)}" in repo_file, repo_file
    origin = fleet.sh(host, f"yum -q repoquery --installed --qf '%{{from_repo}}' {UPGRADE_PACKAGE}")
    assert origin.split() == ["sqlite-provision"], origin
    # the bundle the target received holds the tool alone, no repository
    (bundle,) = fleet.cache.glob(f"{group(8)}+tool-*.tar")
    with tarfile.open(str(bundle)) as tar:
        members = sorted(tar.getnames())
    top = Path(FLEET_DIR).name
    assert members == [top, f"{top}/sqlite-provision.pyz", f"{top}/sqlite-provision.pyz.sha256"]
    assert fleet.login_probe(host)[0] == UPGRADE


def test_repository_mode_check_builds_nothing_and_changes_no_target(repo_fleet: RepoFleet) -> None:
    """--check of 3.52.0 with an empty cache and no repositories: each group's build runs with
    --dry-run, no repository is made, and no target changes (dnf's own check is skipped: the
    repository is not configured yet); the tool's dry run, where an earlier run left it on the
    target, plans dnf's install of the package it does not have."""
    fleet = repo_fleet.fleet
    held = "rpm -qa | sort; cat /etc/yum.repos.d/sqlite-provision.repo; ls -R /opt/sqlite"
    before = {alias: fleet.sh(alias, held) for alias in TARGETS}
    cache, repos = fleet.base / "check-cache", fleet.base / "check-repos"
    run = fleet.play(
        "--check",
        sqlite_provision_fleet_version=UPGRADE,
        sqlite_provision_fleet_build_args=["--mirror", fleet.mirror.url, "--allow-withdrawn"],
        sqlite_provision_fleet_cache=str(cache),
        sqlite_provision_fleet_repos=str(repos),
    )
    assert run.proc.returncode == 0, run.describe()
    # Only the controller would change; and el8-1's .repo file, whose baseurl the URL test set
    # (a "would change" of --check: the file is compared below, unchanged)
    repo_file = run.task("The group's repository in /etc/yum.repos.d")
    assert "changed: [el8-1]" in repo_file, repo_file
    changed = re.findall(r"^changed: \[(.*?)\]", run.proc.stdout.replace(repo_file, ""), re.M)
    assert all(host.endswith(" -> localhost") for host in changed), changed
    assert not repos.exists() and not list(cache.glob("*.rpm")), list(cache.iterdir())
    summary = run.summary()
    for major, builder in BUILDERS.items():
        assert rpm_line(summary, major).endswith(
            f"would be built on {builder} (--check); package sqlite-provision-sqlite3_52_0 in "
            f"the repository {repos}/{group(major)}"
        ), summary
    assert f"el7-1: would install SQLite {UPGRADE} into /opt/sqlite/{UPGRADE} (--check)" in summary
    assert {alias: fleet.sh(alias, held) for alias in TARGETS} == before


def test_the_single_host_role_installs_an_rpm_file(repo_fleet: RepoFleet, pyz: Path) -> None:
    """site.yml (the sqlite_provision role) on el9-2 with sqlite_provision_rpm: the RHEL 9
    group's 3.52.0 package copied onto the host with its .sha256; the tool installs it with dnf
    from the file, and site.yml's own later task loads it through LD_LIBRARY_PATH; a second run
    changes nothing."""
    fleet, host = repo_fleet.fleet, "el9-2"
    rpm_file = f"{UPGRADE_PACKAGE}-{UPGRADE}-1.{ARCH}.rpm"
    rpm = repo_fleet.repos / group(9) / rpm_file
    assert rpm.is_file(), "the RHEL 9 group's 3.52.0 package comes from the failure test above"
    sidecar = fleet.base / f"{rpm_file}.sha256"
    sidecar.write_text(f"{sha256(rpm)}  {rpm_file}\n", encoding="utf-8")
    for path in (rpm, sidecar):
        copied = fleet.containers.podman("cp", str(path), f"{fleet.names[host]}:/root/{path.name}")
        assert copied.returncode == 0, copied.stderr
    site = FLEET_PLAYBOOK.parent / "site.yml"
    extra = {
        "sqlite_provision_pyz": str(pyz),
        "sqlite_provision_rpm": f"/root/{rpm_file}",
        "sqlite_provision_venvs": [APP_VENV],
    }
    inventory = fleet.base / "inventory.json"
    plays = [
        run_playbook(inventory, extra, fleet.env, fleet.base, "--limit", host, playbook=site)
        for _ in range(2)
    ]
    assert plays[0].proc.returncode == 0, plays[0].describe()
    assert f"/usr/bin/python3 loads SQLite {UPGRADE}" in plays[0].proc.stdout  # site.yml's check
    assert plays[0].recap[host]["changed"] > 0, plays[0].recap
    owner = fleet.sh(host, f"rpm -qf /opt/sqlite/{UPGRADE}/lib/libsqlite3.so.0")
    assert owner.startswith(UPGRADE_PACKAGE)
    assert fleet.login_probe(host)[0] == UPGRADE
    assert plays[1].proc.returncode == 0, plays[1].describe()
    assert plays[1].recap[host]["changed"] == 0, plays[1].recap
