"""The RPM of a real build (store/rpm.py), with the real rpmbuild, rpm, rpmsign, createrepo_c and
dnf: the session's artifacts of 3.44.2 and 3.52.0 (tests/integration/conftest.py, built once)
unpacked, moved to /opt/sqlite/VERSION as `install --artifact` would, and packed; then served
from a signed createrepo_c repository to the RHEL 8 look-alike (support.look_alike), whose
rpm database has stand-ins for what RHEL's glibc, zlib, readline and sqlite-libs provide, read
from the root's own library files (support.rpm_lookalike).

What it shows: the package provides no library and keeps glibc's symbol versions as Requires;
two builds are the same bytes; rpm -K checks the signature against the imported key only; dnf
installs two versions side by side without changing who provides libsqlite3.so.0; rpm -qf and
rpm -V answer for its files, and rpm -V (and the tool's manifest) see a flipped byte; dnf remove
leaves nothing; and with RHEL 8's glibc (2.28) rpm and dnf refuse it with their own messages.

(The shell's RUNPATH keeps the artifact's built-for prefix, as `install --artifact` leaves it:
the library is reached through LD_LIBRARY_PATH here, as the tool's activation does. `build
--rpm` builds at the package's prefix and has no such difference.)
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from sqlite_provision.host.build_user import find_build_user
from sqlite_provision.host.rpmdb import (
    check_signature,
    parse_owner,
    parse_verify,
)
from sqlite_provision.runner import Completed, Log, Runner
from sqlite_provision.store import artifact as artifact_format
from sqlite_provision.store.manifest import manifest_problems, read_manifest
from sqlite_provision.store.rpm import BuiltRpm, SignWith, build_rpm, package_recipe
from support import need
from support.artifacts import Artifact
from support.clirun import check_plan_ran
from support.gpg import ThrowawayKey
from support.look_alike import (
    LOOK_ALIKES,
    LookAlikeRoot,
    copy_in,
    inside,
    prepare_parts,
    remove,
    write,
)  # fmt: skip
from support.rhel_root import host_problems, make_repo
from support.rpm_lookalike import Standin, build_standins, build_user_dir, install_standins

pytestmark = [pytest.mark.integration, pytest.mark.rhel]

VERSIONS = ("3.44.2", "3.52.0")
PREFIX_ROOT = "/opt/sqlite"
SONAME_PROVIDE = "libsqlite3.so.0()(64bit)"
REPO_DIR = "/srv/sqlite-provision/repo"
KEY_FILE = "/etc/pki/rpm-gpg/RPM-GPG-KEY-sqlite-provision-test"
REPO_FILE = f"""\
[sqlite-provision]
name=sqlite-provision builds (test)
baseurl=file://{REPO_DIR}
enabled=1
gpgcheck=1
gpgkey=file://{KEY_FILE}
metadata_expire=0
"""
OLD_GLIBC = (2, 28)  # RHEL 8's
TIMINGS: Dict[str, float] = {}


@dataclass(frozen=True)
class Built:
    version: str
    metadata: Dict[str, object]
    plain: BuiltRpm  # unsigned
    again: BuiltRpm  # unsigned, from a second unpack of the artifact: must be the same bytes
    signed: BuiltRpm
    key: ThrowawayKey

    @property
    def prefix(self) -> str:
        return f"{PREFIX_ROOT}/{self.version}"

    @property
    def nevra(self) -> str:
        return f"{self.plain.name}-{self.version}-1.{platform.machine()}"


def unpack(art: Artifact, dest: Path, prefix: str) -> Tuple[Path, Dict[str, object]]:
    metadata = artifact_format.read_metadata(art.path)
    dest.mkdir(parents=True)
    tree = artifact_format.unpack(art.path, dest, metadata)
    artifact_format.relocate(tree, str(metadata["prefix"]), prefix)
    return tree, metadata


@pytest.fixture(scope="module")
def built(
    artifacts: Dict[str, Artifact], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dict[str, Built]]:
    """version -> its packages, each rpmbuild timed."""
    top = tmp_path_factory.mktemp("rpm")
    user = find_build_user(None, os.geteuid())
    found: Dict[str, Built] = {}
    with ThrowawayKey(top / "gnupg") as key, build_user_dir() as work:
        for version in VERSIONS:
            prefix = f"{PREFIX_ROOT}/{version}"
            packages: List[BuiltRpm] = []
            for kind in ("plain", "again", "signed"):
                tree, metadata = unpack(artifacts[version], top / version / kind, prefix)
                recipe = package_recipe(metadata, prefix=prefix)
                sign = SignWith(key.uid, key.home) if kind == "signed" else None
                started = time.monotonic()
                packages.append(build_rpm(Runner(os.environ, Log(top / f"{version}-{kind}.log")), tree,
                                          recipe, metadata, top / "out" / kind, work / kind,
                                          user, sign=sign))  # fmt: skip
                TIMINGS[f"rpmbuild {version} {kind}"] = time.monotonic() - started
            found[version] = Built(version, metadata, *packages, key=key)
    yield found
    sys.stderr.write("\nrpm seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in TIMINGS.items()))


def tree_listing(built: Built) -> List[str]:
    """What the package must hold: /opt/sqlite, the prefix, every file of the build and every
    directory above one, and the tool's manifest."""
    files = {f"{built.prefix}/{rel}" for rel in built.metadata["files"]}  # type: ignore[attr-defined]
    files.add(f"{built.prefix}/sqlite-provision-manifest.json")
    directories = {str(Path(f).parent) for f in files}
    while True:
        more = {str(Path(d).parent) for d in directories} - directories
        more = {d for d in more if d.startswith(PREFIX_ROOT)}
        if not more:
            break
        directories |= more
    return sorted(files | directories)


def files_as_built(built: Built) -> List[str]:
    """The package's files whose digest is not the build's own (the artifact's metadata), but
    for the two text files moved to the package's prefix (sqlite3.pc, libsqlite3.la)."""
    listed = rpm_query(
        "-qp", "--queryformat", "[%{FILENAMES} %{FILEDIGESTS}\n]", str(built.plain.rpm)
    )
    digests = dict(line.split(" ", 1) for line in listed if " " in line)
    differ = []
    for rel, digest in built.metadata["files"].items():  # type: ignore[attr-defined]
        if digest is not None and not rel.endswith((".pc", ".la")):
            if digests.get(f"{built.prefix}/{rel}") != digest:
                differ.append(rel)
    return differ


def rpm_query(*args: str) -> List[str]:
    done = Runner(os.environ).capture(["rpm", *args])
    assert done.returncode == 0, done
    return done.stdout.splitlines()


def test_the_package_of_a_real_build_provides_no_library_and_needs_its_glibc(
    built: Dict[str, Built],
) -> None:
    for version, package in built.items():
        rpm = str(package.plain.rpm)
        provides = rpm_query("-qp", "--provides", rpm)
        assert provides == [f"{package.plain.name} = {version}-1",
                            f"{package.plain.name}(x86-64) = {version}-1"]  # fmt: skip
        assert not [p for p in provides if ".so" in p]
        requires = rpm_query("-qp", "--requires", rpm)
        assert f"libc.so.6(GLIBC_{package.metadata['glibc_min']})(64bit)" in requires
        assert "libc.so.6()(64bit)" in requires
        assert not [r for r in requires if "sqlite" in r], requires
        assert rpm_query("-qpl", rpm) == tree_listing(package)
        assert files_as_built(package) == [], "stripped, or a build-id or payload rewritten"
        assert rpm_query("-qp", "--scripts", rpm) == []
        assert package.plain.provides == tuple(provides)
        assert package.plain.requires == tuple(requires)


def test_two_builds_of_the_same_artifact_are_the_same_bytes(built: Dict[str, Built]) -> None:
    for package in built.values():
        assert package.plain.rpm.read_bytes() == package.again.rpm.read_bytes()
        assert package.plain.sha256 == package.again.sha256
    first, second = (built[v].plain.rpm.read_bytes() for v in VERSIONS)
    assert first != second


def test_the_signed_package_checks_out_with_its_key_and_only_then(
    built: Dict[str, Built], tmp_path: Path
) -> None:
    keyring = tmp_path / "keyring"
    runner = Runner(os.environ)
    for package in built.values():
        assert check_signature(runner, package.plain.rpm, keyring).signed is False
        unknown = check_signature(runner, package.signed.rpm, keyring)
        assert unknown.signed and not unknown.ok and "NOKEY" in unknown.problems[0]
    rpm_query("--dbpath", str(keyring), "--import", str(package.key.public))
    for package in built.values():
        trusted = check_signature(runner, package.signed.rpm, keyring)
        assert trusted.ok and trusted.key_ids == (package.key.key_id,), trusted


# --- in the look-alike ---------------------------------------------------------------------


def run(root: LookAlikeRoot, *argv: str) -> Completed:
    done = root.run(list(argv))
    return Completed(list(argv), done.returncode, done.stdout, done.stderr)


def ok(root: LookAlikeRoot, *argv: str) -> str:
    done = run(root, *argv)
    assert done.returncode == 0, done
    return done.stdout


def who_provides_the_soname(root: LookAlikeRoot) -> Tuple[str, str]:
    """(dnf's answer over the repositories and the installed, rpm's over the installed)."""
    dnf = ok(root, "dnf", "repoquery", "-q", "--whatprovides", SONAME_PROVIDE)
    installed = ok(root, "rpm", "-q", "--whatprovides", SONAME_PROVIDE)
    return dnf, installed


def serve(root: LookAlikeRoot, built: Dict[str, Built], standins: Dict[str, Standin],
          workdir: Path) -> None:  # fmt: skip
    """A createrepo_c repository of the signed packages and of sqlite-libs (as RHEL's BaseOS
    has it), with gpgcheck=1 and the key as RHEL ships one in /etc/pki/rpm-gpg."""
    rpms = {version: package.signed.rpm for version, package in built.items()}
    rpms["sqlite-libs"] = standins["sqlite-libs"].rpm
    repo = make_repo(workdir / "repo", rpms)
    for path in sorted(repo.rglob("*")):
        if path.is_file():
            copy_in(root.tree, path, f"{REPO_DIR}/{path.relative_to(repo)}", 0o644)
    key = next(iter(built.values())).key
    copy_in(root.tree, key.public, KEY_FILE, 0o644)
    write(root.tree, "/etc/yum.repos.d/sqlite-provision.repo", REPO_FILE)


def test_dnf_installs_side_by_side_rpm_owns_and_verifies_and_remove_leaves_nothing(
    built: Dict[str, Built], tmp_path: Path
) -> None:
    need(not host_problems(), "look-alike tier: " + "; ".join(host_problems()))
    spec = LOOK_ALIKES["rhel8"]
    started = time.monotonic()
    parts = prepare_parts(spec, tmp_path / "parts")
    with LookAlikeRoot(spec, parts, tmp_path / "ns") as root:
        TIMINGS["look-alike"] = time.monotonic() - started
        standins = build_standins(root.tree, tmp_path / "standins",
                                  versions={"sqlite-libs": spec.system_sqlite})  # fmt: skip
        install_standins(root, standins)
        serve(root, built, standins, tmp_path)
        packages_before = sorted(ok(root, "rpm", "-qa").split())
        before = who_provides_the_soname(root)
        assert before[0].split() == [f"sqlite-libs-0:{spec.system_sqlite}-0.standin.x86_64"]
        assert before[1].split() == [f"sqlite-libs-{spec.system_sqlite}-0.standin.x86_64"]

        started = time.monotonic()
        names = [package.plain.name for package in built.values()]
        ok(root, "dnf", "install", "-y", *names)
        TIMINGS["dnf install"] = time.monotonic() - started
        assert who_provides_the_soname(root) == before
        for package in built.values():
            installed_and_intact(root, package)
        flipped_byte_shows(root, built[VERSIONS[0]])
        assert ok(root, "python3", "-c", "import sqlite3; print(sqlite3.sqlite_version)").strip() \
            == spec.system_sqlite  # fmt: skip

        ok(root, "dnf", "remove", "-y", *names)
        assert not inside(root.tree, PREFIX_ROOT).exists(), "dnf remove left /opt/sqlite"
        # What stays is the key dnf imported to check the packages (gpgcheck=1), as on RHEL.
        key_id = next(iter(built.values())).key.key_id
        added = sorted(set(ok(root, "rpm", "-qa").split()) - set(packages_before))
        assert [name.rsplit("-", 1)[0] for name in added] == [f"gpg-pubkey-{key_id}"], added
        assert set(packages_before) <= set(ok(root, "rpm", "-qa").split())
        assert who_provides_the_soname(root) == before
        history = ok(root, "dnf", "history", "list")
        assert "Install" in history and "Removed" in history, history

        too_old_glibc_is_refused_by_rpm_itself(root, built[VERSIONS[0]], tmp_path)


def installed_and_intact(root: LookAlikeRoot, package: Built) -> None:
    library = f"{package.prefix}/lib/libsqlite3.so.0"
    assert parse_owner(run(root, "rpm", "-qf", library)) == package.nevra
    assert parse_owner(run(root, "rpm", "-qf", "/opt/sqlite/current")) is None
    report = parse_verify(package.plain.name, run(root, "rpm", "-V", package.plain.name))
    assert report.ok, report
    prefix = inside(root.tree, package.prefix)
    manifest = read_manifest(prefix)
    assert manifest is not None and manifest.build["rpm"] == package.plain.name
    assert manifest_problems(prefix, manifest) == []
    env = f"LD_LIBRARY_PATH={package.prefix}/lib"
    probe = "import sqlite3; print(sqlite3.sqlite_version)"
    assert ok(root, "env", env, "python3", "-c", probe).strip() == package.version
    assert ok(root, "env", env, f"{package.prefix}/bin/sqlite3", "--version").startswith(
        package.version + " "
    )


def flipped_byte_shows(root: LookAlikeRoot, package: Built) -> None:
    real = inside(root.tree, f"{package.prefix}/lib/libsqlite3.so.0", follow=True)
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0x01
    real.write_bytes(bytes(data))
    report = parse_verify(package.plain.name, run(root, "rpm", "-V", package.plain.name))
    assert report.installed and not report.ok
    path = f"{package.prefix}/lib/{real.name}"
    assert [(p.path, "digest" in p.changes) for p in report.problems] == [(path, True)], report
    prefix = inside(root.tree, package.prefix)
    manifest = read_manifest(prefix)
    assert manifest is not None
    assert manifest_problems(prefix, manifest) == [f"lib/{real.name}: content changed"]


def too_old_glibc_is_refused_by_rpm_itself(root: LookAlikeRoot, package: Built,
                                           workdir: Path) -> None:  # fmt: skip
    """RHEL 8's glibc in the rpmdb: rpm -i and dnf refuse the package, naming the version."""
    old = build_standins(root.tree, workdir / "old-glibc", glibc_max=OLD_GLIBC, names=("glibc",))
    install_standins(root, old)
    assert ok(root, "rpm", "-q", "glibc").startswith("glibc-2.28-")
    needed = f"libc.so.6(GLIBC_{package.metadata['glibc_min']})(64bit)"
    path = f"{REPO_DIR}/{package.signed.rpm.name}"
    refused = run(root, "rpm", "-i", path)
    assert refused.returncode != 0
    assert "Failed dependencies:" in refused.stderr, refused
    assert f"{needed} is needed by {package.nevra}" in refused.stderr, refused
    by_dnf = run(root, "dnf", "install", "-y", package.plain.name)
    assert by_dnf.returncode != 0
    assert f"nothing provides {needed} needed by {package.nevra}" in by_dnf.stdout + by_dnf.stderr
    assert not inside(root.tree, PREFIX_ROOT).exists()


# --- install --rpm through the pyz on the look-alike's own python3 (CPython 3.6) ------------

PYZ = "/srv/pseudo-rhel/sqlite-provision.pyz"
RPMS = "/srv/rpms"
VENV = "/srv/venv"
PROBE = "import sqlite3; print(sqlite3.sqlite_version)"
BROKEN_REPO = "[broken]\nname=broken\nbaseurl=file:///nonexistent\nenabled=1\ngpgcheck=0\n" \
    "skip_if_unavailable=False\n"  # fmt: skip


# rpm -V reporting a changed library, as it would for a file altered after the install.
RPM_V_FAILS = """#!/bin/sh
if [ "$1" = "-V" ]; then echo "S.5....T.    /opt/sqlite/3.44.2/lib/libsqlite3.so.0"; exit 1; fi
exec /usr/bin/rpm "$@"
"""


def pyz_json(root: LookAlikeRoot, *args: str) -> Tuple[Completed, Dict[str, object]]:
    done = run(root, "python3", PYZ, *args, "--json")
    try:
        data = dict(json.loads(done.stdout))
    except ValueError:
        pytest.fail(f"not one JSON object: {done}")
    assert data["exit_code"] == done.returncode and data["ok"] is (done.returncode == 0), data
    return done, data


def host_state(root: LookAlikeRoot) -> Tuple[List[str], bool, bool]:
    packages = sorted(ok(root, "rpm", "-qa").split())
    return (packages, inside(root.tree, PREFIX_ROOT).exists(),
            inside(root.tree, "/etc/profile.d/sqlite-provision.sh").exists())  # fmt: skip


@contextlib.contextmanager
def pyz_root(built: Dict[str, Built], pyz: Path, tmp_path: Path) -> Iterator[LookAlikeRoot]:
    """The RHEL 8 look-alike (its python3 is CPython 3.6: the pyz runs on it) with the stand-ins
    in its rpm database, the signed repository served, the pyz at PYZ and the venv at VENV."""
    need(not host_problems(), "look-alike tier: " + "; ".join(host_problems()))
    spec = LOOK_ALIKES["rhel8"]
    parts = prepare_parts(spec, tmp_path / "parts")
    with LookAlikeRoot(spec, parts, tmp_path / "ns") as root:
        standins = build_standins(root.tree, tmp_path / "standins",
                                  versions={"sqlite-libs": spec.system_sqlite})  # fmt: skip
        install_standins(root, standins)
        serve(root, built, standins, tmp_path)
        copy_in(root.tree, pyz, PYZ, 0o644)
        ok(root, "python3", "-m", "venv", "--without-pip", VENV)
        yield root


def test_install_rpm_through_the_pyz_activates_and_a_failed_dnf_changes_nothing(
    built: Dict[str, Built], pyz: Path, tmp_path: Path
) -> None:
    spec = LOOK_ALIKES["rhel8"]
    package = built[VERSIONS[0]]
    with pyz_root(built, pyz, tmp_path) as root:
        rpm = package.signed.rpm
        for path in (rpm, Path(str(rpm) + ".sha256")):
            copy_in(root.tree, path, f"{RPMS}/{path.name}", 0o644)
        before, soname = host_state(root), who_provides_the_soname(root)
        args = ("install", "--rpm", f"{RPMS}/{rpm.name}", "--venv", VENV)

        write(root.tree, "/etc/yum.repos.d/broken.repo", BROKEN_REPO)
        failed, data = pyz_json(root, *args)
        assert failed.returncode != 0 and data["changed"] is False, failed
        assert "install" in str(data["error"]), data
        assert host_state(root) == before
        inside(root.tree, "/etc/yum.repos.d/broken.repo").unlink()
        write(root.tree, "/usr/local/bin/rpm", RPM_V_FAILS, 0o755)  # before /usr/bin in PATH
        failed, data = pyz_json(root, *args)
        assert failed.returncode == 6 and data["changed"] is False, failed
        assert f"rpm -V {package.plain.name} fails" in str(data["error"]), data
        assert host_state(root) == before  # the package was removed again
        inside(root.tree, "/usr/local/bin/rpm").unlink()
        # The same version already built from source by the tool: rpm would write over it, and
        # its undo (dnf remove) would delete it. Refused before any change (exit 3).
        tree = f"{package.prefix}/sqlite-provision-manifest.json"
        write(root.tree, tree, json.dumps({"tool": "sqlite-provision", "version": package.version,
                                           "request": {}, "build": {}, "files": {}}))  # fmt: skip
        taken = before[0], True, before[2]
        refused, data = pyz_json(root, *args)
        assert refused.returncode == 3 and "build from source" in str(data["error"]), refused
        assert host_state(root) == taken and inside(root.tree, tree).exists()
        remove(root.tree, PREFIX_ROOT)

        done, data = pyz_json(root, *args)
        assert done.returncode == 0 and data["changed"] is True, done
        names = [s["name"] for s in data["steps"]]  # type: ignore[index, union-attr]
        assert names[:3] == ["install-rpm", "check-rpm", "abi-gate"], names
        assert who_provides_the_soname(root) == soname
        installed_and_intact(root, package)
        assert ok(root, "bash", "-l", "-c", f"python3 -c '{PROBE}'").strip() == package.version
        assert ok(root, "env", "-i", f"{VENV}/bin/python", "-c", PROBE).strip() == package.version
        assert ok(root, "python3", "-c", PROBE).strip() == spec.system_sqlite
        again, data = pyz_json(root, *args)
        assert again.returncode == 0 and data["changed"] is False, again

        flipped_byte_shows(root, package)
        shown, data = pyz_json(root, "status")
        rows = {row["version"]: row for row in data["installed"]}  # type: ignore[attr-defined]
        assert rows[package.version]["rpm"] == package.plain.name, rows
        assert [p.split(":")[0] for p in rows[package.version]["damaged"]] == [
            f"{package.prefix}/lib/{inside(root.tree, package.prefix + '/lib/libsqlite3.so.0', follow=True).name}"
        ], rows
        assert "DAMAGED (rpm -V)" in ok(root, "python3", PYZ, "status"), shown

        removed, data = pyz_json(root, "uninstall", "--all", "--venv", VENV)
        assert removed.returncode == 0 and data["changed"] is True, removed
        assert data["removed_rpms"] == [package.plain.name], data
        assert run(root, "rpm", "-q", package.plain.name).returncode != 0
        assert host_state(root) == before
        assert who_provides_the_soname(root) == soname
        assert (
            ok(root, "env", "-i", f"{VENV}/bin/python", "-c", PROBE).strip() == spec.system_sqlite
        )

        old = build_standins(root.tree, tmp_path / "old-glibc", glibc_max=OLD_GLIBC,
                             names=("glibc",))  # fmt: skip
        install_standins(root, old)
        refused = run(root, "python3", PYZ, *args)
        needed = f"libc.so.6(GLIBC_{package.metadata['glibc_min']})(64bit)"
        assert refused.returncode != 0 and f"nothing provides {needed}" in refused.stderr, refused
        assert not inside(root.tree, PREFIX_ROOT).exists()


# --- install --rpm-package NAME: from the look-alike's createrepo_c repository ----------------


def link_target(root: LookAlikeRoot, path: str) -> str:
    return os.readlink(str(inside(root.tree, path)))


def activation_state(root: LookAlikeRoot) -> Tuple[str, bytes, bytes]:
    """`current`, the profile snippet and the venv's hook, byte for byte."""
    hooks = sorted(inside(root.tree, VENV).rglob("sqlite-provision-hook.pth"))
    assert len(hooks) == 1, hooks
    return (link_target(root, f"{PREFIX_ROOT}/current"),
            inside(root.tree, "/etc/profile.d/sqlite-provision.sh").read_bytes(),
            hooks[0].read_bytes())  # fmt: skip


def step_names(data: Dict[str, object]) -> List[str]:
    return [str(s["name"]) for s in data["steps"]]  # type: ignore[attr-defined]


def test_install_rpm_package_from_the_repository_and_one_installed_by_hand(
    built: Dict[str, Built], pyz: Path, tmp_path: Path
) -> None:
    """(a) installed by dnf from the repository (gpgcheck=1) and activated, as its dry run said;
    (b) one installed by hand is only activated, and a failed verification undoes the
    activation but keeps the package; (c) uninstall VERSION removes it with dnf."""
    spec = LOOK_ALIKES["rhel8"]
    first, second = built[VERSIONS[0]], built[VERSIONS[1]]
    started = time.monotonic()
    with pyz_root(built, pyz, tmp_path) as root:
        before, soname = host_state(root), who_provides_the_soname(root)
        args = ("install", "--rpm-package", first.plain.name, "--venv", VENV)

        shown, plan = pyz_json(root, *args, "--dry-run")
        assert shown.returncode == 0 and host_state(root) == before, shown
        done, data = pyz_json(root, *args)
        assert done.returncode == 0 and data["changed"] is True, done
        assert step_names(data)[:4] == ["install-rpm", "check-rpm", "check-rpm-tree", "abi-gate"]
        ran = [s["name"] for s in data["steps"] if s["status"] == "ok"]  # type: ignore[attr-defined]
        check_plan_ran(plan, inside(root.tree, str(data["log_file"])), ran)
        installed_and_intact(root, first)
        assert ok(root, "bash", "-l", "-c", f"python3 -c '{PROBE}'").strip() == first.version
        assert ok(root, "env", "-i", f"{VENV}/bin/python", "-c", PROBE).strip() == first.version
        assert who_provides_the_soname(root) == soname
        again, data = pyz_json(root, *args)
        assert again.returncode == 0 and data["changed"] is False, again
        assert "install-rpm" not in step_names(data)

        # (b) dnf installed it (the play's own task), the tool only activates it.
        ok(root, "dnf", "install", "-y", second.plain.name)
        active = activation_state(root)
        by_hand = ("install", "--rpm-package", second.plain.name, "--venv", VENV)
        failed, data = pyz_json(root, *by_hand, "--min-version", "3.99.0")
        assert failed.returncode == 6 and data["changed"] is False, failed
        assert "install-rpm" not in step_names(data) and "verify" in step_names(data)
        assert run(root, "rpm", "-q", second.plain.name).returncode == 0, "removed what dnf put"
        assert activation_state(root) == active
        _, plan = pyz_json(root, *by_hand, "--dry-run")
        assert step_names(plan)[:3] == ["check-rpm", "check-rpm-tree", "abi-gate"], plan
        done, data = pyz_json(root, *by_hand)
        assert done.returncode == 0 and data["changed"] is True, done
        assert link_target(root, f"{PREFIX_ROOT}/current") == second.version
        assert ok(root, "bash", "-l", "-c", f"python3 -c '{PROBE}'").strip() == second.version
        assert ok(root, "env", "-i", f"{VENV}/bin/python", "-c", PROBE).strip() == second.version

        # (c) the previous version goes with dnf; then everything.
        removed, data = pyz_json(root, "uninstall", first.version)
        assert removed.returncode == 0 and data["removed_rpms"] == [first.plain.name], removed
        assert run(root, "rpm", "-q", first.plain.name).returncode != 0
        assert not inside(root.tree, first.prefix).exists()
        removed, data = pyz_json(root, "uninstall", "--all", "--venv", VENV)
        assert removed.returncode == 0 and data["removed_rpms"] == [second.plain.name], removed
        packages, *rest = host_state(root)
        key = f"gpg-pubkey-{first.key.key_id}"  # imported by dnf for gpgcheck=1, as on RHEL
        assert [p for p in packages if not p.startswith(key)] == before[0]
        assert tuple(rest) == before[1:] and who_provides_the_soname(root) == soname
        assert ok(root, "env", "-i", f"{VENV}/bin/python", "-c", PROBE).strip() == \
            spec.system_sqlite  # fmt: skip
    TIMINGS["install --rpm-package test"] = time.monotonic() - started
