"""The crash matrix: a run killed at any point with SIGKILL (no handler runs, no undo: the OOM
killer, a power cut, cloud-init's instance rebooted) is finished by the next run of the same
command, which must reach the state a clean run reaches, say so truthfully, and leave nothing
behind: no staging or backup directory, no .part file, no build directory in TMPDIR, no held
lock, and no `current`, `previous` or snippet pointing at nothing.

Kill points: while the tarball downloads (the mirror holds its answer; the .part file exists),
while configure runs and while make compiles sqlite3.c (the test kills the whole process tree
it finds), and at the tool's own crash points (SQLITE_PROVISION_TEST_CRASH_AT: the tests'
launcher, support/launch.py, registers a crash hook that kills the tool with SIGKILL there): between staging and the rename into the prefix, between the rename
and the `current` swap, between the swap and the profile, during verification, with the old
build moved aside and the new one not yet in place (install --force), during uninstall (after
`current`, after an activation file, among the version's files, after them), and during
rollback (between its two links, after them, during its verification: the recovery puts the
links back as the rollback's journal says, and the same rollback then does it again). The
session prints `crashes: N injected, N converged`.

A build directory of a live run is another matter: a second run waits for the lock and, when
it gives up, has removed nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from support.clirun import Run, injected, run_cli
from support.faults import (
    CRASHES,
    PATH_3442,
    PYTHON,
    FaultHost,
    Proc,
    copy_host,
    processes,
    running_in,
    serve_release,
)
from support.mirror import Mirror

pytestmark = pytest.mark.integration

CRASH_ENV = "SQLITE_PROVISION_TEST_CRASH_AT"
Probe = Callable[[FaultHost, int], List[Proc]]


# --- the state a run leaves ------------------------------------------------------------------


def final_state(host: FaultHost, cache: bool = True) -> Dict[str, Any]:
    """What a run leaves under the host's watched trees, with the host's own root written as
    <ROOT>, so that two hosts' states compare equal when the runs did the same. Two builds of
    one release differ byte for byte (timestamps, build paths), so a build's own files are
    compared by path, kind and mode, and its manifest by release, request and file list; every
    file outside the prefixes (profile snippets, units, ld.so.conf, the record) by content."""
    root = str(host.root).encode()
    state: Dict[str, Any] = {}
    for top in host.trees():
        if top == host.cache and not cache:
            continue
        if not os.path.lexists(str(top)):
            state[str(top.relative_to(host.root))] = "absent"
            continue
        for dirpath, dirnames, filenames in os.walk(str(top)):
            for name in sorted(dirnames + filenames):
                path = Path(dirpath) / name
                rel = str(path.relative_to(host.root))
                mode = oct(os.lstat(str(path)).st_mode & 0o777)
                if path.is_symlink():
                    state[rel] = ("link", os.readlink(str(path)).replace(str(host.root), "<ROOT>"))
                elif path.is_dir():
                    state[rel] = ("dir", mode)
                elif path.name == "sqlite-provision-manifest.json":
                    data = json.loads(path.read_text())
                    state[rel] = ("manifest", mode, data["version"], sorted(data["files"]))
                elif path.name == ".sqlite-provision-activation.json":
                    # A copied host's record also names the files of the host it was copied
                    # from; what counts is the set of this host's own.
                    files = json.loads(path.read_text())["files"]
                    mine = sorted({f.replace(str(host.root), "<ROOT>") for f in files
                                   if f.startswith(str(host.root) + "/")})  # fmt: skip
                    state[rel] = ("record", mode, mine)
                elif in_a_build(host, path):
                    state[rel] = ("file", mode)
                else:
                    data = path.read_bytes().replace(root, b"<ROOT>")
                    state[rel] = ("file", mode, hashlib.sha256(data).hexdigest())
    return state


def in_a_build(host: FaultHost, path: Path) -> bool:
    """A file of a build's prefix (/opt/sqlite/X.Y.Z/...), as against the prefix root's own."""
    try:
        return len(path.relative_to(host.prefix_root).parts) > 1
    except ValueError:
        return False


def leftovers(host: FaultHost) -> List[str]:
    """What no run may leave: staging and backup trees, temporary links and files, partial
    downloads, a build directory, a held lock, links or a snippet that name nothing."""
    found = []
    if host.prefix_root.is_dir():
        for entry in host.prefix_root.iterdir():
            if entry.name.startswith(".") and entry.name != ".sqlite-provision-activation.json":
                found.append(str(entry))
        for name in ("current", "previous"):
            link = host.prefix_root / name
            if link.is_symlink() and not link.exists():
                found.append(f"{link} names nothing")
    found += [str(p) for p in host.cache.glob(".*.part")]
    found += [str(p) for p in host.tmp.iterdir()]
    for directory in (host.profile_dir, host.systemd):
        found += [str(p) for p in directory.rglob(".*.tmp")]
    if host.profile.exists():
        lib = host.current / "lib" / "libsqlite3.so.0"
        if str(host.current) in host.profile.read_text() and not lib.exists():
            found.append(f"{host.profile} names {lib}, which is gone")
    if host.lock.exists():
        with host.lock.open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                found.append(f"{host.lock} is still held")
    return found


# --- killing ---------------------------------------------------------------------------------


def tree(pid: int) -> List[int]:
    """pid and every process below it, whatever session or group they are in."""
    everything = processes()
    found = [pid]
    grown = True
    while grown:
        grown = False
        for proc in everything:
            if proc.ppid in found and proc.pid not in found:
                found.append(proc.pid)
                grown = True
    return found


def kill_tree(pid: int) -> None:
    for member in tree(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(host: FaultHost, args: List[str], env: Dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        injected([PYTHON, "-m", "sqlite_provision", *args], env), env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def killed_when(host: FaultHost, args: List[str], env: Dict[str, str], probe: Probe) -> None:
    """Run the tool until `probe` sees the moment, then SIGKILL its whole process tree."""
    tool = start(host, args, env)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if probe(host, tool.pid):
                kill_tree(tool.pid)
                break
            if tool.poll() is not None:
                pytest.fail("the run ended before the kill point:\n" + (tool.stderr.read() or ""))
            time.sleep(0.02)
        else:
            pytest.fail("the kill point never came")
    finally:
        tool.wait(timeout=60)
        tool.communicate()
    assert tool.returncode == -signal.SIGKILL


def crashed_at(host: FaultHost, args: List[str], env: Dict[str, str], point: str) -> None:
    """Run the tool with a crash point: it kills itself there with SIGKILL."""
    run = run_cli(args, dict(env, **{CRASH_ENV: point}), timeout=300)
    assert run.proc.returncode == -signal.SIGKILL, run.describe()
    for pid in tree(os.getpid())[1:]:  # nothing of the dead run survives it
        assert "sqlite_provision" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")


# --- the moments the test watches for --------------------------------------------------------


def downloading(host: FaultHost, pid: int) -> List[Proc]:
    return [Proc(pid, 0, 0, "", "")] if list(host.cache.glob(".*.part")) else []


def configuring(host: FaultHost, pid: int) -> List[Proc]:
    return [p for p in running_in(host.tmp) if "conftest" in p.cmdline or "configure" in p.cmdline]


def making(host: FaultHost, pid: int) -> List[Proc]:
    return [p for p in running_in(host.tmp) if "cc1" in p.cmdline and "sqlite3.c" in p.cmdline]


# --- the reference: a clean run --------------------------------------------------------------


def install_args(host: FaultHost, tarball: Optional[Path], mirror: Optional[Mirror]) -> List[str]:
    source = ["--tarball", str(tarball)] if tarball else ["--mirror", mirror.url]  # type: ignore[union-attr]
    return host.args("--version", "3.44.2", *source, "--systemd-unit", "myapp")


@pytest.fixture(scope="module")
def clean(
    shared_tarballs: Dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Dict[str, Any]:
    """A clean install's final state, a clean uninstall's, and the installed host (to copy)."""
    tarball = Path(str(shared_tarballs["3.44.2"]["path"]))
    host = FaultHost(tmp_path_factory.mktemp("clean") / "host")
    run = run_cli(install_args(host, tarball, None), host.env(), timeout=300)
    assert run.proc.returncode == 0, run.describe()
    installed = final_state(host)
    gone = FaultHost(tmp_path_factory.mktemp("clean-uninstall") / "host")
    copy = reinstalled_copy(host, gone, tarball)
    removed = run_cli(uninstall_args(copy), copy.env())
    assert removed.proc.returncode == 0, removed.describe()
    return {"installed": installed, "uninstalled": final_state(copy), "host": host,
            "tarball": tarball}  # fmt: skip


def reinstalled_copy(source: FaultHost, target: FaultHost, tarball: Path) -> FaultHost:
    """A copy of an installed host, re-installed in place (no build) to name its own paths."""
    import shutil

    shutil.rmtree(str(target.root), ignore_errors=True)
    copy = copy_host(source, target.root)
    run = run_cli(install_args(copy, tarball, None), copy.env())
    assert run.proc.returncode == 0, run.describe()
    assert run.step("make")["status"] == "skipped"
    return copy


def uninstall_args(host: FaultHost) -> List[str]:
    return ["uninstall", "--all", "--json", "--prefix-root", str(host.prefix_root),
            "--profile-file", str(host.profile)]  # fmt: skip


def converged(
    name: str, host: FaultHost, args: List[str], expected: Dict[str, Any], cache: bool = True
) -> Run:
    """Run the same command again: it must succeed, reach the clean run's state, and leave
    nothing behind."""
    CRASHES.injected.append(name)
    again = run_cli(args, host.env(), timeout=300)
    assert again.proc.returncode == 0, again.describe()
    left = leftovers(host)
    assert left == [], left
    assert final_state(host, cache) == expected
    CRASHES.converged.append(name)
    return again


# --- the matrix ------------------------------------------------------------------------------


KILLED = [
    ("during the download", downloading),
    ("during configure", configuring),
    ("during make", making),
]


@pytest.mark.parametrize("name, probe", KILLED, ids=[k[0] for k in KILLED])
def test_killed_while_working_then_the_same_command_converges(
    clean: Dict[str, Any], mirror: Mirror, shared_tarballs: Dict[str, Any], tmp_path: Path,
    name: str, probe: Probe,
) -> None:  # fmt: skip
    host = FaultHost(tmp_path / "host")
    serve_release(mirror, shared_tarballs)
    if probe is downloading:
        mirror.hang(PATH_3442)
    args = install_args(host, None, mirror)
    killed_when(host, args, host.env(), probe)
    mirror.reset_faults()
    # The reference installed from --tarball, which leaves the cache alone; a run from the
    # mirror keeps the checked tarball there, so the cache is compared on its own.
    expected = {k: v for k, v in clean["installed"].items() if not k.startswith("var/cache")}
    again = converged(name, host, args, expected, cache=False)
    cached = [p.name for p in host.cache.iterdir()]
    assert cached in ([], ["sqlite-autoconf-3440200.tar.gz"]), cached
    assert again.data["changed"] is True and again.data["version"] == "3.44.2"


CRASH_POINTS = [
    ("between staging and the rename into the prefix", "before:install"),
    ("between the rename and the current swap", "after:install"),
    ("between the swap and the profile write", "after:link-current"),
    ("between the profile and its csh twin", "after:profile"),
    ("during verification", "during:verify"),
]


@pytest.mark.parametrize("name, point", CRASH_POINTS, ids=[c[1] for c in CRASH_POINTS])
def test_crashed_at_a_point_then_the_same_command_converges(
    clean: Dict[str, Any], tmp_path: Path, name: str, point: str
) -> None:
    host = FaultHost(tmp_path / "host")
    args = install_args(host, clean["tarball"], None)
    crashed_at(host, args, host.env(), point)
    again = converged(name, host, args, clean["installed"])
    data = again.data
    assert data["version"] == "3.44.2" and data["verified"][0]["ok"] is True
    # Truthful: it says it changed what it changed, and when it only cleaned up, that too.
    changed = [s["name"] for s in data["steps"] if s["changed"]]
    assert data["changed"] is bool(changed), data["steps"]


def test_crashed_with_the_old_build_moved_aside_then_it_comes_back(
    clean: Dict[str, Any], tmp_path: Path
) -> None:
    """install --force over a working build, killed between the two renames: the prefix is
    missing and its build is in .3.44.2.previous. The next run puts it back first."""
    host = reinstalled_copy(clean["host"], FaultHost(tmp_path / "host"), clean["tarball"])
    args = [*install_args(host, clean["tarball"], None), "--force"]
    crashed_at(host, args, host.env(), "during:install")
    assert not (host.prefix_root / "3.44.2").exists()
    assert (host.prefix_root / ".3.44.2.previous").is_dir()
    again = converged("with the old build moved aside (install --force)", host, args,
                      clean["installed"])  # fmt: skip
    assert again.step("recover")["changed"] is True
    assert "put back" in again.step("recover")["detail"]


UNINSTALL_POINTS = [
    ("after `current` is removed", "after:remove-link"),
    ("after the first activation file is removed", "after:deactivate"),
    ("during uninstall", "during:uninstall"),
    ("after the version's files are removed", "after:remove-version"),
]


@pytest.mark.parametrize("name, point", UNINSTALL_POINTS, ids=[c[1] for c in UNINSTALL_POINTS])
def test_crashed_during_uninstall_then_the_same_command_converges(
    clean: Dict[str, Any], tmp_path: Path, name: str, point: str
) -> None:
    host = reinstalled_copy(clean["host"], FaultHost(tmp_path / "host"), clean["tarball"])
    crashed_at(host, uninstall_args(host), host.env(), point)
    if point == "during:uninstall":  # the manifest goes last: the next run knows what is left
        assert (host.prefix_root / "3.44.2" / "sqlite-provision-manifest.json").exists()
    converged(name, host, uninstall_args(host), clean["uninstalled"])


# --- rollback ------------------------------------------------------------------------------------


def with_a_previous_version(source: FaultHost, target: FaultHost, tarball: Path) -> FaultHost:
    """An installed copy with a second build, `old` (a copy of 3.44.2's tree: one real build
    is enough to switch between two), that `previous` names."""
    import shutil

    host = reinstalled_copy(source, target, tarball)
    shutil.copytree(str(host.prefix_root / "3.44.2"), str(host.prefix_root / "old"),
                    symlinks=True)  # fmt: skip
    os.symlink("old", str(host.prefix_root / "previous"))
    return host


def rollback_args(host: FaultHost) -> List[str]:
    return ["rollback", "--json", "--prefix-root", str(host.prefix_root), "--profile-file",
            str(host.profile), "--python", PYTHON]  # fmt: skip


@pytest.fixture(scope="module")
def rolled_back(clean: Dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """A clean rollback's final state: `current` -> old, `previous` -> 3.44.2."""
    host = with_a_previous_version(
        clean["host"], FaultHost(tmp_path_factory.mktemp("clean-rollback") / "host"),
        clean["tarball"],
    )  # fmt: skip
    run = run_cli(rollback_args(host), host.env())
    assert run.proc.returncode == 0, run.describe()
    assert os.readlink(str(host.current)) == "old"
    return final_state(host)


ROLLBACK_POINTS = [
    ("between the rollback's two links", "during:switch-to-previous"),
    ("after the rollback's switch, before its verification", "after:switch-to-previous"),
    ("during the rollback's verification", "during:verify"),
]


@pytest.mark.parametrize("name, point", ROLLBACK_POINTS, ids=[c[1] for c in ROLLBACK_POINTS])
def test_crashed_during_rollback_then_the_same_command_converges(
    clean: Dict[str, Any], rolled_back: Dict[str, Any], tmp_path: Path, name: str, point: str
) -> None:
    """A rollback killed once it began to switch the links: the next run's recovery puts them
    back as its journal says, and the same rollback then switches and verifies them."""
    host = with_a_previous_version(clean["host"], FaultHost(tmp_path / "host"), clean["tarball"])
    crashed_at(host, rollback_args(host), host.env(), point)
    assert (host.prefix_root / ".sqlite-provision-switch.json").is_file()
    again = converged(name, host, rollback_args(host), rolled_back)
    assert again.data["version"] == "3.44.2" and again.data["from"] == "3.44.2"
    assert "a killed rollback" in again.proc.stderr


def test_a_live_runs_build_directory_is_left_alone(clean: Dict[str, Any], tmp_path: Path) -> None:
    """Only a dead run's leftovers are removed: while a run builds, a second run with the same
    lock waits for it and gives up (exit 3) without touching its build directory."""
    host = FaultHost(tmp_path / "host")
    args = install_args(host, clean["tarball"], None)
    first = start(host, args, host.env())
    try:
        deadline = time.monotonic() + 120
        while not making(host, first.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        build = [p for p in host.tmp.iterdir() if p.name.startswith("sqlite-provision-build-")]
        assert len(build) == 1, list(host.tmp.iterdir())
        second = run_cli([*args, "--lock-timeout", "1"], host.env())
        assert second.proc.returncode == 3, second.describe()
        assert build[0].is_dir() and (build[0] / "tmp").is_dir()
    finally:
        err = first.communicate(timeout=300)[1]
    assert first.returncode == 0, err
    assert leftovers(host) == []
