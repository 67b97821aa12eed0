"""The pseudo-RHEL tier's hosts as they really are: look-alikes of RHEL 7 (and Amazon Linux 2),
RHEL 8 and RHEL 9 whose own system libsqlite3 and python3 are the release's (3.7.17 and 3.26.0
built with their spec flags under CPython 3.6; Debian 11's 3.34.1 and python 3.9.2 in a real
Debian 11 root), made by tests/support/look_alike.py. On each, the session's
sqlite-provision.pyz runs on the root's own python3, with default options, against the loopback
mirror, and must:

- refuse a catalog release older than the root's library before any download (exit 6, no
  request reaches the mirror);
- install 3.44.2 with yum supplying gcc and make, pass the ABI gate against the root's own
  library (the plan and the step name its path and version), and verify;
- have a login shell's python3 (bash -l and sh -l, through /etc/profile.d) and a `--venv` bound
  venv under `env -i` load 3.44.2, while python3 with no environment still loads the old library;
- change nothing on a second run; and `uninstall --all` must bring the root back to its snapshot
  (taken after the venv was made, before the install).

Before and after: the check of a real application that refuses that old SQLite (Prefect 2 on
RHEL 7, Django 5.1 on RHEL 8, chromadb on RHEL 9; tests/support/apps, each citing its source)
fails in a login shell and in the venv before the install, passes in both after it, and fails
again in the venv once `uninstall --all` has unbound it.

Marker `rhel`; root only (namespaces, overlayfs, chroot); without the tools it skips, and fails
under CI=true. Each look-alike is one real build at CFLAGS=-O0; the session shares one Debian 11
tarball (build/look-alike/), one pyz and the cached system libraries.
"""

# Optional/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from support import need
from support.apps import APPS
from support.apps import HERE as APPS_SOURCE
from support.look_alike import (
    LIBRARY_LINK,
    LOOK_ALIKES,
    TOOLS_DIR,
    LookAlike,
    LookAlikeRoot,
    Parts,
    copy_in,
    debian11_tarball,
    inside,
    prepare_parts,
    unpack,
)
from support.mirror import Mirror
from support.rhel_root import host_problems
from support.snapshot import diff, snapshot

pytestmark = pytest.mark.rhel

VERSION = "3.44.2"
PREFIX = "/opt/sqlite/" + VERSION
CURRENT = "/opt/sqlite/current"
PYZ = TOOLS_DIR + "/sqlite-provision.pyz"
APPS_DIR = TOOLS_DIR + "/apps"
VENV = "/srv/app/venv"
PROBE = (
    "import sqlite3, sys; print(sqlite3.sqlite_version); print(sys.version.split()[0]); "
    "print([l.split()[-1] for l in open('/proc/self/maps') if 'libsqlite3' in l][0])"
)
# What `uninstall --all` must leave as it found it, down to owner, mode and content (support.
# snapshot), plus the names in /opt (on rhel7/8, /opt and /usr/local are this machine's own, far
# too big to hash). The yum-installed gcc and make stay, as on a host: the tool never removes
# packages; so do its download cache and its logs.
WATCHED = ("/etc", "/opt/sqlite", "/srv/app", LIBRARY_LINK, "/usr/bin/python3")

TIMINGS: Dict[str, float] = {}


@pytest.fixture(scope="session")
def look_alike_parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Parts]]:
    """name -> its Parts, made once per session; the Debian 11 tree is unpacked once."""
    problems = host_problems()
    need(not problems, "look-alike tier: " + "; ".join(problems))
    made: Dict[str, Parts] = {}
    shared: List[Path] = []

    def parts(name: str) -> Parts:
        if name not in made:
            started = time.monotonic()
            spec = LOOK_ALIKES[name]
            debian11 = shared[0] if shared else None
            if spec.base == "debian11" and debian11 is None:
                tarball = debian11_tarball()
                TIMINGS["debian11 tarball"] = time.monotonic() - started
                debian11 = unpack(tarball, tmp_path_factory.mktemp("debian11") / "tree")
                shared.append(debian11)
            made[name] = prepare_parts(spec, tmp_path_factory.mktemp(name), debian11)
            TIMINGS[f"{name} parts"] = time.monotonic() - started
        return made[name]

    yield parts
    if TIMINGS:
        sys.stderr.write(
            "\nlook-alike seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()) + "\n"
        )


# --- running things in the root ------------------------------------------------------------


def cli(root: LookAlikeRoot, *args: str) -> subprocess.CompletedProcess[str]:
    """The pyz on the root's own python3, as root, with the default paths, at CFLAGS=-O0."""
    return root.run(["python3", PYZ, *args], env={"CFLAGS": "-O0"}, timeout=900)


def result(proc: subprocess.CompletedProcess[str]) -> Dict[str, Any]:
    try:
        return dict(json.loads(proc.stdout))
    except ValueError:
        pytest.fail(describe(proc))


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def step(data: Dict[str, Any], name: str) -> Dict[str, Any]:
    for found in data["steps"]:
        if found["name"] == name:
            return dict(found)
    pytest.fail(f"no step {name!r} in {json.dumps(data, indent=2)}")


def probe(root: LookAlikeRoot, how: str) -> List[str]:
    """[sqlite version, python version, the library file mapped] of python3 started `how`:
    "plain" (the tool's clean environment), "bash -l", "sh -l", or "venv" (under env -i)."""
    if how == "venv":
        argv = ["env", "-i", VENV + "/bin/python", "-c", PROBE]
    elif how == "plain":
        argv = ["python3", "-c", PROBE]
    else:
        argv = [*how.split(), "-c", f'python3 -c "{PROBE}"']
    return root.check(argv).split()


def app_check(root: LookAlikeRoot, spec: LookAlike, how: str) -> subprocess.CompletedProcess[str]:
    """The application check of `spec`, run by a login shell's python3 or the bound venv's."""
    script = f"{APPS_DIR}/{APPS[spec.app].script}"
    if how == "venv":
        return root.run(["env", "-i", VENV + "/bin/python", script])
    return root.run(["bash", "-l", "-c", f"python3 {script}"])


def app_refuses(root: LookAlikeRoot, spec: LookAlike, how: str, found: str) -> None:
    app = APPS[spec.app]
    run = app_check(root, spec, how)
    assert run.returncode != 0, f"{app.title} ran on SQLite {found} ({how}): {describe(run)}"
    assert app.refusal in run.stderr, describe(run)
    if app.names_found:
        assert f"found {found}" in run.stderr or f"found version {found}" in run.stderr, describe(
            run
        )


def app_runs(root: LookAlikeRoot, spec: LookAlike, how: str) -> None:
    run = app_check(root, spec, how)
    assert run.returncode == 0, f"{APPS[spec.app].title} ({how}): {describe(run)}"
    assert run.stdout.strip() == f"{spec.app}: ok with SQLite {VERSION}", describe(run)


def watched(root: LookAlikeRoot) -> Dict[str, Any]:
    found: Dict[str, Any] = snapshot([inside(root.tree, path) for path in WATCHED])
    found["names in /opt"] = sorted(os.listdir(str(inside(root.tree, "/opt"))))
    found["library"] = str(inside(root.tree, LIBRARY_LINK, follow=True))
    return found


# --- the phases ----------------------------------------------------------------------------


def starting_point(root: LookAlikeRoot, spec: LookAlike, pyz: Path) -> str:
    """The look-alike as made: RHEL's identity, no compiler, the old library under its own
    python3; then the pyz, the application checks and an app's venv put in. Returns the
    library file python3 maps."""
    os_release = root.read_text("/etc/os-release")
    assert 'ID="rhel"' in os_release and f'VERSION_ID="{spec.release.version}"' in os_release
    assert root.check(["rpm", "-qf", "/etc/os-release"]).startswith(
        f"redhat-release-{spec.release.version}-"
    )
    assert root.run(["rpm", "-q", "gcc", "make"]).returncode != 0
    assert root.check(["bash", "-l", "-c", "command -v python3"]).strip() == "/usr/bin/python3"
    version, python, library = probe(root, "plain")
    assert version == spec.system_sqlite
    assert python.startswith(spec.python or "3.9.2"), python
    assert library.startswith(f"/usr/lib/{LIBRARY_LINK.split('/')[3]}/libsqlite3.so.0"), library
    copy_in(root.tree, pyz, PYZ, 0o644)
    shutil.copytree(str(APPS_SOURCE), str(inside(root.tree, APPS_DIR)),
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    assert "sqlite-provision" in root.check(["python3", PYZ, "--version"])
    root.check(["python3", "-m", "venv", "--without-pip", VENV])
    return library


def plan_names_the_system_library(root: LookAlikeRoot, spec: LookAlike, mirror: Mirror,
                                  library: str) -> None:  # fmt: skip
    """--dry-run: yum for the compiler, and the ABI gate against the root's own library."""
    plan = cli(root, "install", "--version", VERSION, "--mirror", mirror.url, "--venv", VENV,
               "--dry-run", "--json")  # fmt: skip
    assert plan.returncode == 0, describe(plan)
    data = result(plan)
    assert step(data, "compiler")["commands"] == ["yum install -y gcc make"]
    abi = step(data, "abi")["description"]
    assert f"of {library} ({spec.system_sqlite})" in abi, abi


def older_release_refused(root: LookAlikeRoot, spec: LookAlike, mirror: Mirror,
                          library: str) -> None:  # fmt: skip
    for older in spec.older:
        requests = mirror.count()
        run = cli(root, "install", "--version", older, "--mirror", mirror.url, "--json")
        assert run.returncode == 6, describe(run)
        message = f"SQLite {older} is older than the system library ({spec.system_sqlite}, "
        assert message + library in json.dumps(result(run)["error"]), describe(run)
        assert mirror.count() == requests, "a refused release was downloaded"
        assert not root.exists("/opt/sqlite") and root.run(["rpm", "-q", "gcc"]).returncode != 0


def first_install(root: LookAlikeRoot, spec: LookAlike, mirror: Mirror, library: str) -> None:
    started = time.monotonic()
    run = cli(root, "install", "--version", VERSION, "--mirror", mirror.url, "--venv", VENV,
              "--json")  # fmt: skip
    TIMINGS[f"{spec.name} install"] = time.monotonic() - started
    assert run.returncode == 0, describe(run)
    data = result(run)
    assert data["changed"] is True and data["version"] == VERSION and data["prefix"] == PREFIX
    for name in ("compiler", "configure", "make", "abi", "smoke", "verify"):
        assert step(data, name)["status"] == "ok", (name, describe(run))
    assert library in step(data, "abi")["detail"], step(data, "abi")
    gcc_version, gcc_release = spec.release.packages["gcc"]
    assert root.check(["rpm", "-q", "gcc"]).startswith(f"gcc-{gcc_version}-{gcc_release}")
    assert "yum install -y gcc make" in root.read_text(data["log_file"])
    for verified in data["verified"]:
        assert verified["ok"] is True and verified["sqlite_version"] == VERSION, verified


def who_sees_it(root: LookAlikeRoot, spec: LookAlike, library: str) -> None:
    """Login shells and the bound venv load the new library; python3 alone keeps the old."""
    for how in ("bash -l", "sh -l", "venv"):
        version, _, mapped = probe(root, how)
        assert version == VERSION, (how, version)
        assert mapped.startswith(PREFIX + "/lib/"), (how, mapped)
    assert probe(root, "plain")[0::2] == [spec.system_sqlite, library]
    for how in ("login", "venv"):
        app_runs(root, spec, how)


# --- the test ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOOK_ALIKES))
def test_default_install_on_a_look_alike_with_the_releases_own_sqlite_and_python(
    name: str,
    look_alike_parts: Callable[[str], Parts],
    pyz: Path,
    sqlite_mirror: Mirror,
    tmp_path: Path,
) -> None:
    spec = LOOK_ALIKES[name]
    parts = look_alike_parts(name)
    started = time.monotonic()
    with LookAlikeRoot(spec, parts, tmp_path / "ns") as root:
        TIMINGS[f"{name} root"] = time.monotonic() - started
        library = starting_point(root, spec, pyz)
        for how in ("login", "venv"):
            app_refuses(root, spec, how, spec.system_sqlite)
        plan_names_the_system_library(root, spec, sqlite_mirror, library)
        older_release_refused(root, spec, sqlite_mirror, library)
        before = watched(root)

        first_install(root, spec, sqlite_mirror, library)
        who_sees_it(root, spec, library)

        again = cli(root, "install", "--version", VERSION, "--mirror", sqlite_mirror.url,
                    "--venv", VENV, "--json")  # fmt: skip
        assert again.returncode == 0 and result(again)["changed"] is False, describe(again)
        assert step(result(again), "compiler")["status"] == "skipped"

        gone = cli(root, "uninstall", "--all", "--json")
        assert gone.returncode == 0 and result(gone)["changed"] is True, describe(gone)
        changed = diff(before, watched(root))
        assert changed == {}, [path.split("/ns/root", 1)[-1] for path in changed]
        assert probe(root, "venv")[0] == spec.system_sqlite
        app_refuses(root, spec, "venv", spec.system_sqlite)
    TIMINGS[f"{name} total"] = time.monotonic() - started
