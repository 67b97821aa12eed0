"""Layer 5: real builds of the real tarballs, served by the loopback mirror, installed into
temporary prefixes and checked with a real python.

The first install of 3.44.2 happens once per session (`installed`); the tests after it re-run,
verify and resolve `latest` against that same prefix. Each run is the real CLI in a subprocess,
with its cache and log directories in temporary directories and CFLAGS=-O0. The re-run, `latest`
and the tampered download also run through the shipped pyz on CPython 3.6 and 3.13 (the
`launcher` fixture): the network code under the pinned requests, with no build.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

from sqlite_provision.host.pythons import read_library
from sqlite_provision.runner import Runner
from sqlite_provision.steps.base import RunState
from sqlite_provision.steps.gate import AbiGate
from support.clirun import PYTHON, Run, logged_commands, run_cli, tool_env
from support.compilers import calls, recording_wrappers
from support.gate_libraries import RecordingRunner, rhel8_system_lib
from support.launchers import Launcher
from support.mirror import Mirror

pytestmark = pytest.mark.integration

TARBALL_3442 = "sqlite-autoconf-3440200.tar.gz"
PATH_3442 = "/2023/" + TARBALL_3442
JSON_KEYS = {
    "changed",
    "version",
    "prefix",
    "library",
    "profile_file",
    "log_file",
    "verified",
    "steps",
}
BUILD_STEPS = ("fetch", "extract", "configure", "make", "stage", "install")

# Prints what `python` loads after sourcing the snippet, as a fresh login shell would.
PROBE = (
    "import sqlite3, sys\n"
    "lib = [l.split(None, 5)[5].strip() for l in open('/proc/self/maps')"
    " if len(l.split(None, 5)) == 6 and '/libsqlite3' in l]\n"
    "print(sqlite3.sqlite_version)\n"
    "print(lib[0] if lib else '')\n"
)


def loaded_after_sourcing(profile: Path) -> List[str]:
    """[sqlite_version, library path] that python reports in `sh -c '. PROFILE; exec python'`."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    proc = subprocess.run(
        ["sh", "-c", '. "$1"; exec "$2" -c "$3"', "sh", str(profile), PYTHON, PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.splitlines()


def under(path: str, directory: Path) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(str(directory))
    return real.startswith(root.rstrip("/") + "/")


def tree(root: Path) -> Set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), str(root)))
    return found


def install_args(mirror_url: str, prefix: Path, profile: Path, *extra: str) -> List[str]:
    return [
        "install",
        "--mirror",
        mirror_url,
        "--prefix",
        str(prefix),
        "--profile-file",
        str(profile),
        "--python",
        PYTHON,
        "--json",
        *extra,
    ]


@dataclass
class Installed:
    root: Path
    prefix: Path
    profile: Path
    env: Dict[str, str]
    mirror_url: str
    first: Run
    tarball_requests: int  # how many times the first install asked the mirror for the tarball
    dry_run: Run  # `install --dry-run --json` with the same arguments, just before `first`
    compiler_calls: Path  # what the first install's compilers and make recorded: name uid args

    def args(self, *extra: str) -> List[str]:
        return install_args(self.mirror_url, self.prefix, self.profile, *extra)


@pytest.fixture(scope="session")
def installed(sqlite_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The session's one real build: 3.44.2 from the session mirror into ROOT/prefix."""
    root = tmp_path_factory.mktemp("installed")
    prefix, profile, env = root / "prefix", root / "p.sh", tool_env(root / "state")
    # Every compiler and make call of the first install is recorded, with its uid.
    env["PATH"] = recording_wrappers(root / "wrappers", root / "compiler-calls")
    args = install_args(sqlite_mirror.url, prefix, profile, "--version", "3.44.2")
    dry_run = run_cli([*args, "--dry-run"], env)
    before = sqlite_mirror.count(PATH_3442)
    first = run_cli(args, env)
    print(f"first install of 3.44.2: {first.seconds:.1f}s")
    return Installed(
        root=root,
        prefix=prefix,
        profile=profile,
        env=env,
        mirror_url=sqlite_mirror.url,
        first=first,
        tarball_requests=sqlite_mirror.count(PATH_3442) - before,
        dry_run=dry_run,
        compiler_calls=root / "compiler-calls",
    )


def require_ok(run: Run) -> Dict[str, Any]:
    assert run.proc.returncode == 0, run.describe()
    return run.data


# --- the first install, the re-run, verify, latest -------------------------------------------


def test_dry_run_shows_exactly_the_commands_the_run_executed(installed: Installed) -> None:
    """What --dry-run prints is what runs: step by step, the commands of `install --dry-run
    --json` are the commands the real run's log records, in order, each with exit status 0."""
    plan = require_ok(installed.dry_run)
    logged = logged_commands(Path(require_ok(installed.first)["log_file"]))
    ran = [step["name"] for step in installed.first.data["steps"] if step["status"] == "ok"]
    # A fresh install: every step really ran, the probe of configure's options included.
    assert "probe-configure" in ran and "configure" in ran and "verify" in ran
    for step in plan["steps"]:
        if step["name"] not in ran:
            continue
        commands = [command for command, _ in logged.get(step["name"], [])]
        assert commands == step["commands"], step["name"]
        assert all(status == 0 for _, status in logged[step["name"]]), logged[step["name"]]
    shown = [c for step in plan["steps"] if step["name"] in ran for c in step["commands"]]
    assert sum(len(v) for k, v in logged.items() if k) == len(shown)  # no command unshown


def test_the_log_holds_every_command_the_verification_probes_included(
    installed: Installed,
) -> None:
    """One logged door to subprocess: the python verification command is in the install's log
    with its exit status, and so are the probes run before the first step (the --python check
    and the system library probe)."""
    logged = logged_commands(Path(require_ok(installed.first)["log_file"]))
    probes = [c for c, status in logged["verify"] if status == 0 and PYTHON in c]
    assert len(probes) == 1, logged["verify"]
    assert probes[0].startswith(f'sh -c \'. "$1" && shift && exec "$@"\' sh {installed.profile} ')
    assert "import sqlite3" in probes[0] and "/proc/self/maps" in probes[0]
    before = [c for c, _ in logged[""]]
    assert any(
        c.startswith(f"{PYTHON} -c 'import sys; print(sys.version_info[0])'") for c in before
    )
    assert any("/proc/self/maps" in c for c in before), before  # what the system library is


def test_first_install_builds_activates_and_verifies(installed: Installed) -> None:
    data = require_ok(installed.first)

    assert JSON_KEYS <= set(data), sorted(data)
    assert data["changed"] is True
    assert data["version"] == "3.44.2"
    assert data["prefix"] == str(installed.prefix)
    assert data["profile_file"] == str(installed.profile)
    assert under(data["library"], installed.prefix)
    assert Path(data["log_file"]).is_file()
    assert under(data["log_file"], installed.root / "state" / "log")
    verified = data["verified"]
    assert len(verified) == 1
    assert verified[0]["ok"] is True
    assert verified[0]["sqlite_version"] == "3.44.2"
    assert under(verified[0]["library"], installed.prefix)
    for step in data["steps"]:
        assert {"name", "status", "seconds", "detail"} <= set(step), step
        assert isinstance(step["seconds"], (int, float))
    for name in (*BUILD_STEPS, "profile", "verify"):
        assert installed.first.step(name)["status"] == "ok", installed.first.describe()
    assert installed.tarball_requests >= 1  # it really came from the mirror
    assert (installed.root / "state" / "cache" / TARBALL_3442).is_file()

    # Independently of the tool: a fresh shell that sources the snippet loads the new library.
    version, library = loaded_after_sourcing(installed.profile)
    assert version == "3.44.2"
    assert under(library, installed.prefix)


def test_the_build_never_runs_as_root(installed: Installed) -> None:
    """As root, configure, make and make install run as `nobody`: every compiler and make call
    the first install made has another uid than 0; and root owns the installed tree, with
    nothing in it writable by the build user, by group or by others."""
    require_ok(installed.first)
    made = calls(installed.compiler_calls)
    if os.geteuid() != 0:
        pytest.fail("this test needs root (the CI runs as root)")
    nobody = pwd.getpwnam("nobody").pw_uid
    assert {name for name, _, _ in made} >= {"make", "gcc"}, made
    assert any(name == "make" and args.startswith("install") for name, _, args in made), made
    assert [call for call in made if call[1] == 0] == []
    assert {uid for _, uid, _ in made} == {nobody}
    for dirpath, dirnames, filenames in os.walk(str(installed.prefix)):
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(dirpath, name))
            assert (info.st_uid, info.st_gid) == (0, 0), os.path.join(dirpath, name)
            if not stat.S_ISLNK(info.st_mode):
                assert info.st_mode & 0o7022 == 0, (os.path.join(dirpath, name), info.st_mode)
    steps = {s["name"]: s["commands"] for s in installed.dry_run.data["steps"]}
    for name in ("configure", "make"):
        assert all(c.split()[1:3] == [f"--reuid={nobody}", f"--regid={pwd.getpwnam('nobody').pw_gid}"]
                   for c in steps[name]), steps[name]  # fmt: skip


def test_rerun_changes_nothing_downloads_nothing_compiles_nothing(
    installed: Installed, sqlite_mirror: Mirror, tmp_path: Path, launcher: Launcher
) -> None:
    require_ok(installed.first)
    record = tmp_path / "compiler-calls.txt"
    env = dict(installed.env, PATH=recording_wrappers(tmp_path / "wrappers", record))
    # The wrappers are really the ones found, and really record.
    subprocess.run(["make", "--version"], env=env, capture_output=True, check=True)
    assert [(name, args) for name, _, args in calls(record)] == [("make", "--version")]
    record.unlink()

    before = len(list(sqlite_mirror.requests))
    run = run_cli(installed.args("--version", "3.44.2"), env, command=launcher.argv)
    data = require_ok(run)
    print(f"idempotent re-run ({launcher.name}): {run.seconds:.2f}s")

    assert data["changed"] is False
    assert len(list(sqlite_mirror.requests)) == before
    assert calls(record) == []
    for name in BUILD_STEPS:
        assert run.step(name)["status"] == "skipped", run.describe()
    assert run.step("profile")["status"] == "skipped"
    assert run.step("verify")["status"] == "ok"
    assert data["verified"][0]["sqlite_version"] == "3.44.2"


def test_verify_passes_then_fails_on_a_higher_minimum(installed: Installed) -> None:
    require_ok(installed.first)
    base = ["verify", "--prefix", str(installed.prefix), "--profile-file", str(installed.profile)]
    base += ["--python", PYTHON, "--json"]

    data = require_ok(run_cli(base, installed.env))
    assert data["ok"] is True
    assert data["version"] == "3.44.2"
    assert data["verified"][0]["sqlite_version"] == "3.44.2"
    assert under(data["verified"][0]["library"], installed.prefix)

    failed = run_cli([*base, "--min-version", "3.99.0"], installed.env)
    assert failed.proc.returncode == 6, failed.describe()
    assert "3.99.0" in failed.proc.stderr
    data = failed.data  # still exactly one JSON object on stdout
    assert data["ok"] is False
    assert data["exit_code"] == 6
    assert data["verified"][0]["ok"] is False


def test_latest_resolves_through_the_download_page(
    installed: Installed, sqlite_mirror: Mirror, launcher: Launcher
) -> None:
    require_ok(installed.first)
    pages = sqlite_mirror.count("/download.html")
    tarballs = sqlite_mirror.count(PATH_3442)
    run = run_cli(installed.args("--version", "latest"), installed.env, command=launcher.argv)
    data = require_ok(run)

    assert sqlite_mirror.count("/download.html") == pages + 1
    assert data["steps"][0]["name"] == "resolve"
    assert data["steps"][0]["status"] == "ok"
    assert "3.44.2" in data["steps"][0]["detail"]
    assert data["version"] == "3.44.2"
    assert data["verified"][0]["sqlite_version"] == "3.44.2"
    # The same tarball as the pinned install, so the same build: nothing rebuilt or fetched.
    assert data["changed"] is False, run.describe()
    assert sqlite_mirror.count(PATH_3442) == tarballs
    for name in BUILD_STEPS:
        assert run.step(name)["status"] == "skipped", run.describe()


# --- a withdrawn release, a tampered tarball, a failed verification --------------------------


def soname(library: Path) -> str:
    readelf = shutil.which("readelf")
    if readelf:
        out = subprocess.run(
            [readelf, "-d", str(library)], capture_output=True, text=True, check=True
        ).stdout
        for line in out.splitlines():
            if "(SONAME)" in line:
                return line.split("[", 1)[1].split("]", 1)[0]
        return ""
    try:
        from elftools.elf.dynamic import DynamicSection  # type: ignore[import-not-found]
        from elftools.elf.elffile import ELFFile  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("neither readelf nor pyelftools is available")
    with library.open("rb") as handle:
        for section in ELFFile(handle).iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_SONAME":
                        return str(tag.soname)
    return ""


@dataclass
class Withdrawn:
    """3.52.0 (withdrawn upstream): refused without --allow-withdrawn, then built with it."""

    prefix: Path
    profile: Path
    refused: Run
    changed_tree: Set[str]  # what the refused run changed under its directory
    requests: int  # how many requests the refused run made to the mirror
    run: Run


@pytest.fixture(scope="session")
def withdrawn(
    sqlite_mirror: Mirror, shared_tarballs: Dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Withdrawn:
    """The session's one real build of 3.52.0 (autosetup era)."""
    if "3.52.0" not in shared_tarballs:
        pytest.fail("the shared tarballs lack 3.52.0")
    root = tmp_path_factory.mktemp("withdrawn")
    prefix, profile = root / "prefix52", root / "p52.sh"
    env = tool_env(root / "state")
    args = install_args(sqlite_mirror.url, prefix, profile, "--version", "3.52.0")
    before_tree = tree(root)
    before_requests = len(list(sqlite_mirror.requests))
    refused = run_cli(args, env)
    changed = tree(root) ^ before_tree
    requests = len(list(sqlite_mirror.requests)) - before_requests
    run = run_cli([*args, "--allow-withdrawn"], env)
    print(f"3.52.0 build: {run.seconds:.1f}s")
    return Withdrawn(prefix, profile, refused, changed, requests, run)


def test_withdrawn_release_needs_allow_withdrawn_then_builds(withdrawn: Withdrawn) -> None:
    refused = withdrawn.refused
    assert refused.proc.returncode == 2, refused.describe()
    assert "--allow-withdrawn" in refused.proc.stderr
    assert withdrawn.changed_tree == set()
    assert withdrawn.requests == 0

    run = withdrawn.run
    data = require_ok(run)
    assert data["changed"] is True
    assert data["verified"][0]["sqlite_version"] == "3.52.0"
    assert "autosetup" in run.step("configure")["detail"]
    library = withdrawn.prefix / "lib" / "libsqlite3.so.0"
    assert library.exists()
    assert soname(library) == "libsqlite3.so.0"
    version, mapped = loaded_after_sourcing(withdrawn.profile)
    assert version == "3.52.0"
    assert under(mapped, withdrawn.prefix)


# --- the ABI gate with RHEL 8's library as the system library ---------------------------------


@pytest.mark.parametrize("version", ["3.44.2", "3.52.0"])
def test_rhel8s_json1_is_kept_as_built_in_json_proved_by_the_new_library(
    version: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """RHEL 8's 3.26.0 (its spec flags: ENABLE_JSON1 among them) is the system library; the
    session's real builds of 3.44.2 and 3.52.0 cannot list ENABLE_JSON1 (JSON is built in from
    3.38.0). The gate passes: JSON is proved by running it under the new library, and its
    detail says so. A gate that compared ENABLE_JSON1 by name would refuse both (exit 6)."""
    system_lib, _ = rhel8_system_lib(tmp_path)
    if version == "3.44.2":
        prefix = request.getfixturevalue("installed").prefix
    else:
        prefix = request.getfixturevalue("withdrawn").prefix
    library = prefix / "lib" / "libsqlite3.so.0"
    assert "ENABLE_JSON1" not in read_library(Runner(os.environ), library)[1]  # the premise
    gate = AbiGate(system_lib, False, library, version)
    runner = RecordingRunner()

    detail = gate.run(RunState(runner))

    assert detail.startswith(
        f"exports all {len(system_lib.symbols)} public functions of {system_lib.path}"
    )
    assert (
        "ENABLE_JSON1 kept as built-in JSON (built in from 3.38.0), proved: SELECT json('{}') "
        "gives '{}'"
    ) in detail, detail
    assert runner.captured == gate.commands()  # what --dry-run shows is what ran


def test_the_hosts_built_in_json_and_serialize_are_proved_by_the_first_install(
    installed: Installed,
) -> None:
    """This machine's own library (Debian 12's 3.40.1) lists neither ENABLE_JSON1 nor
    ENABLE_DESERIALIZE: both are built in to it. The first install's gate proved both under the
    new library (the dry run against the log is compared above, proofs included)."""
    detail = installed.first.step("abi-gate")["detail"]
    assert (
        "ENABLE_JSON1 kept as built-in JSON (built in from 3.38.0), proved: SELECT json('{}') "
        "gives '{}'"
    ) in detail, detail
    assert (
        "ENABLE_DESERIALIZE kept as built-in sqlite3_serialize and sqlite3_deserialize (built in "
        "from 3.36.0), proved: SELECT x FROM t on a database copied by sqlite3_serialize and "
        "sqlite3_deserialize gives 'copied'"
    ) in detail, detail
    [abi] = [s for s in require_ok(installed.dry_run)["steps"] if s["name"] == "abi-gate"]
    [probe] = abi["commands"]
    assert '"ENABLE_JSON1"' in probe and '"ENABLE_DESERIALIZE"' in probe, probe


def test_tampered_tarball_is_refused_and_leaves_nothing(
    mirror: Mirror, shared_tarballs: Dict[str, Any], tmp_path: Path, launcher: Launcher
) -> None:
    data = bytearray(Path(shared_tarballs["3.44.2"]["path"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    mirror.add(PATH_3442, bytes(data))
    prefix, profile = tmp_path / "prefix", tmp_path / "p.sh"
    state = tmp_path / "state"
    args = install_args(mirror.url, prefix, profile, "--version", "3.44.2")

    run = run_cli(args, tool_env(state), command=launcher.argv)

    assert run.proc.returncode == 4, run.describe()
    assert "checksum mismatch" in run.proc.stderr
    assert mirror.count(PATH_3442) >= 1  # it was downloaded, and then refused
    assert not prefix.exists()
    assert not profile.exists()
    cache = state / "cache"
    files = [p for p in cache.rglob("*") if not p.is_dir()] if cache.exists() else []
    assert files == []
    assert run.data["exit_code"] == 4


def test_failed_verification_rolls_back_prefix_and_profile(
    installed: Installed, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    # The session cache already holds the tarball: no download, only a build.
    require_ok(installed.first)
    wrapper = tmp_path / "python-without-ld-path"
    wrapper.write_text(f'#!/bin/sh\nunset LD_LIBRARY_PATH\nexec "{PYTHON}" "$@"\n')
    wrapper.chmod(0o755)
    profile = tmp_path / "p.sh"
    original = b"# written by the test before the run\nexport SOMETHING=1\n"
    profile.write_bytes(original)
    prefix = tmp_path / "prefix"
    args = install_args(sqlite_mirror.url, prefix, profile, "--version", "3.44.2")
    args[args.index(PYTHON)] = str(wrapper)
    env = dict(installed.env, SQLITE_PROVISION_LOG_DIR=str(tmp_path / "log"))
    before = tree(tmp_path)

    run = run_cli(args, env)

    assert run.proc.returncode == 6, run.describe()
    assert "verification failed" in run.proc.stderr
    assert run.step("make")["status"] == "ok"  # it got as far as building and installing
    assert run.step("install")["status"] == "ok"
    assert run.step("verify")["status"] == "failed"
    assert profile.read_bytes() == original
    assert not prefix.exists()
    left = {p for p in tree(tmp_path) - before if not p.startswith("log")}
    assert left == set()  # no staging directory or temp file left beside the prefix/profile


def test_an_older_release_than_the_system_library_is_refused_before_anything(
    installed: Installed, sqlite_mirror: Mirror, tmp_path: Path
) -> None:
    """This host's library is Debian 12's 3.40.1: 3.39.4 is refused (exit 6), naming both
    versions and what 3.39.4 lacks by version, before any download and with no compiler call."""
    record = tmp_path / "compiler-calls.txt"
    env = dict(installed.env, PATH=recording_wrappers(tmp_path / "wrappers", record))
    before = len(list(sqlite_mirror.requests))
    run = run_cli(install_args(sqlite_mirror.url, tmp_path / "p", tmp_path / "p.sh",
                               "--version", "3.39.4"), env)  # fmt: skip
    assert run.proc.returncode == 6, run.describe()
    system = run_cli(["status", "--json", "--python", PYTHON], env).data["system_sqlite"]["version"]
    assert system == "3.40.1", "the test expects Debian 12's library"
    assert "SQLite 3.39.4 is older than the system library (3.40.1" in run.proc.stderr
    assert "sqlite3_value_encoding (added in 3.40.0)" in run.proc.stderr
    assert "--allow-abi-loss" in run.proc.stderr
    assert len(list(sqlite_mirror.requests)) == before
    assert calls(record) == []
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.sh").exists()
