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

(RHEL 7 has no older release to refuse: the catalog starts at 3.24.0.)

Before and after: the check of a real application that refuses that old SQLite (Prefect 2 on
RHEL 7, Django 5.1 on RHEL 8, chromadb on RHEL 9; tests/support/apps reproduces each, citing
its source) fails in a login shell and in the venv before the install, passes in both after it,
and fails again in both once `uninstall --all` has run. On RHEL 7 the real Django 3.2.25 too,
installed into the venv from PyPI's wheels: its own code refuses 3.7.17, then runs.

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
from typing import Any, Callable, Dict, Iterator, List, NamedTuple

import pytest

from support import need
from support.apps import APPS, REAL_APPS, real_site
from support.apps import HERE as APPS_SOURCE
from support.look_alike import (
    CACHE,
    LIBRARY_LINK,
    LOOK_ALIKES,
    TOOLS_DIR,
    LookAlike,
    LookAlikeRoot,
    Parts,
    chroot_runner,
    copy_in,
    debian11_tarball,
    inside,
    make_look_alike,
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
PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
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
    for tree in shared:  # 400 MB; the tarball stays cached in build/look-alike/
        shutil.rmtree(str(tree), ignore_errors=True)
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


class Check(NamedTuple):
    title: str
    script: str  # in APPS_DIR
    how: str  # "login": a login shell's python3; "venv login": the venv's python in a login
    # shell; "venv": the venv's python under env -i
    refusal: str  # what the application says on the old library
    names_found: bool  # whether it says which version it found


def app_checks(spec: LookAlike) -> List[Check]:
    """The reproduced check of spec.app with python3 and with the venv's python, and the real
    package (installed in the venv) where the look-alike has one."""
    app = APPS[spec.app]
    checks = [Check(app.title, app.script, how, app.refusal, app.names_found)
              for how in ("login", "venv")]  # fmt: skip
    if spec.real_app:
        real = REAL_APPS[spec.real_app]
        checks += [Check(real.title, real.script, how, real.refusal, True)
                   for how in ("venv login", "venv")]  # fmt: skip
    return checks


def app_check(root: LookAlikeRoot, check: Check) -> subprocess.CompletedProcess[str]:
    script = f"{APPS_DIR}/{check.script}"
    if check.how == "venv":
        return root.run(["env", "-i", VENV + "/bin/python", script])
    python = "python3" if check.how == "login" else VENV + "/bin/python"
    return root.run(["bash", "-l", "-c", f"{python} {script}"])


def apps_refuse(root: LookAlikeRoot, spec: LookAlike) -> None:
    for check in app_checks(spec):
        run = app_check(root, check)
        assert run.returncode != 0, f"{check.title} ran ({check.how}): {describe(run)}"
        assert check.refusal in run.stderr, (check, describe(run))
        if check.names_found:
            assert spec.system_sqlite in run.stderr, (check, describe(run))


def apps_run(root: LookAlikeRoot, spec: LookAlike) -> None:
    for check in app_checks(spec):
        run = app_check(root, check)
        assert run.returncode == 0, f"{check.title} ({check.how}): {describe(run)}"
        expected = f"{Path(check.script).stem}: ok with SQLite {VERSION}"
        assert run.stdout.strip() == expected, (check, describe(run))


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
    if spec.yum_own_sqlite:  # RHEL 7 has yum only
        assert root.run(["sh", "-c", "command -v dnf || command -v dnf-3"]).returncode != 0
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
    if spec.real_app:
        site = real_site(REAL_APPS[spec.real_app], CACHE)
        purelib = root.check([VENV + "/bin/python", "-c", PURELIB]).strip()
        for entry in site.iterdir():
            if entry.is_dir():
                shutil.copytree(str(entry), str(inside(root.tree, f"{purelib}/{entry.name}")))
    return library


def plan_names_the_system_library(root: LookAlikeRoot, spec: LookAlike, mirror: Mirror,
                                  library: str) -> None:  # fmt: skip
    """--dry-run: yum for the compiler, and the ABI gate against the root's own library."""
    plan = cli(root, "install", "--version", VERSION, "--mirror", mirror.url, "--venv", VENV,
               "--dry-run", "--json")  # fmt: skip
    assert plan.returncode == 0, describe(plan)
    data = result(plan)
    assert step(data, "install-compiler")["commands"] == ["yum install -y gcc make"]
    abi = step(data, "abi-gate")["description"]
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
    for name in ("install-compiler", "configure", "make", "abi-gate", "smoke-test", "verify"):
        assert step(data, name)["status"] == "ok", (name, describe(run))
    assert library in step(data, "abi-gate")["detail"], step(data, "abi-gate")
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
    apps_run(root, spec)


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
        apps_refuse(root, spec)
        plan_names_the_system_library(root, spec, sqlite_mirror, library)
        older_release_refused(root, spec, sqlite_mirror, library)
        before = watched(root)

        first_install(root, spec, sqlite_mirror, library)
        who_sees_it(root, spec, library)

        installed = watched(root)
        again = cli(root, "install", "--version", VERSION, "--mirror", sqlite_mirror.url,
                    "--venv", VENV, "--json")  # fmt: skip
        assert again.returncode == 0 and result(again)["changed"] is False, describe(again)
        assert step(result(again), "install-compiler")["status"] == "skipped"
        assert diff(installed, watched(root)) == {}

        gone = cli(root, "uninstall", "--all", "--json")
        assert gone.returncode == 0 and result(gone)["changed"] is True, describe(gone)
        changed = diff(before, watched(root))
        assert changed == {}, [path.split("/ns/root", 1)[-1] for path in changed]
        assert probe(root, "venv")[0] == spec.system_sqlite
        assert probe(root, "bash -l")[0] == spec.system_sqlite
        apps_refuse(root, spec)
    TIMINGS[f"{name} total"] = time.monotonic() - started


def test_a_look_alike_is_also_a_plain_tree_for_podman_import(
    look_alike_parts: Callable[[str], Parts], tmp_path: Path
) -> None:
    """make_look_alike works on a plain directory entered with chroot, as a later
    `tar -C TREE -c . | podman import -` will take it: the RHEL 9 look-alike from a fresh
    unpack of the Debian 11 tarball, with its identity, its library and python, no compiler, and
    a yum that installs the gcc double."""
    spec = LOOK_ALIKES["rhel9"]
    parts = look_alike_parts("rhel9")
    tree = unpack(debian11_tarball(), tmp_path / "tree")
    try:
        enter = chroot_runner(tree)
        make_look_alike(tree, spec, parts, enter)
        assert 'VERSION_ID="9.4"' in (tree / "etc" / "os-release").read_text()
        assert enter(["python3", "-c", PROBE.rsplit(";", 1)[0]]).split() == ["3.34.1", "3.9.2"]
        assert enter(["rpm", "-qf", "/etc/os-release"]).startswith("redhat-release-9.4-")
        enter(["yum", "install", "-y", "-q", "gcc", "make"])
        assert enter(["readlink", "/usr/bin/gcc"]).strip() == "/usr/hidden/gcc"
        assert "gcc" in enter(["gcc", "--version"]).splitlines()[0]
    finally:
        shutil.rmtree(str(tree), ignore_errors=True)
