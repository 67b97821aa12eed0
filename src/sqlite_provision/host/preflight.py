"""Host preconditions, checked before any download or change (exit 3; a release older than the
system library, exit 6). Resolution calls each check once, as soon as what it needs is known:
the places to write before the network, the prefix's owner and the system library's version once
the version is known, the compiler only when a build is needed."""

import os
import tempfile
from pathlib import Path
from typing import Optional

from sqlite_provision.config import Layout
from sqlite_provision.errors import HostError, VerifyError
from sqlite_provision.files import nearest_existing
from sqlite_provision.host.build_user import BuildUser, check_reachable, find_build_user
from sqlite_provision.host.facts import Facts
from sqlite_provision.host.library import SystemLibrary
from sqlite_provision.recipe.api import added_after, describe
from sqlite_provision.runner import Runner
from sqlite_provision.versions import loose_version


def check_writable(layout: Layout, root: bool) -> None:
    """The prefix and the profile snippet can be written (by this user, on this filesystem)."""
    for path in [layout.prefix] + ([layout.profile_file] if layout.profile_file else []):
        existing = nearest_existing(path)
        if not os.access(str(existing), os.W_OK):
            raise not_writable(path, existing, root)


def holds_files(prefix: Path) -> bool:
    return prefix.is_dir() and any(prefix.iterdir())


def check_prefix_is_ours(prefix: Path, has_manifest: bool) -> None:
    """Never install over files this tool did not install."""
    if not has_manifest and holds_files(prefix):
        raise HostError(
            f"{prefix} exists and was not installed by sqlite-provision",
            hint="choose an empty or new --prefix; this tool never overwrites files it did not "
            "install",
        )


def check_prefix_takes_package(prefix: Path, owner: Optional[str], package: str) -> None:
    """install --rpm: rpm writes over files no package owns, and the undo (dnf remove) would then
    delete them: a tree this tool installed from source or an artifact (its manifest names no
    package, or another one) is never the target of a package (exit 3, before any change)."""
    if owner == package or not holds_files(prefix):
        return
    held = f"the package {owner}" if owner else "a build from source or an artifact"
    raise HostError(
        f"{prefix} already holds {held}: installing {package} would write over it, and undoing "
        "the install would delete it",
        hint=f"remove it first (`sqlite-provision uninstall {prefix.name}`; if it is the active "
        "version, roll back or install another one first), then install the package",
    )


def check_not_older(version: str, system_lib: SystemLibrary, allow_abi_loss: bool) -> None:
    """A release older than the system library is refused before anything is downloaded or
    built (exit 6): programs linked to the system library may call functions it lacks."""
    if not version or not system_lib.version or allow_abi_loss:
        return
    if loose_version(version) >= loose_version(system_lib.version):
        return
    lacks = added_after(version, system_lib.symbols)
    what = (
        f"it lacks {len(lacks)} public function(s) that {system_lib.path} exports, whatever it is "
        f"built with: {describe(lacks)}"
        if lacks
        else "the catalog cannot tell which of the system library's functions it lacks"
    )
    raise VerifyError(
        f"SQLite {version} is older than the system library ({system_lib.version}, {system_lib.path}): {what}",
        hint=f"install {system_lib.version} or newer (`sqlite-provision versions` lists them), or pass "
        "--allow-abi-loss to install it anyway, at the risk of breaking programs linked to "
        "the system library",
    )


def check_build(facts: Facts, install_deps: bool, dry_run: bool, runner: Runner) -> None:
    """A build can run: gcc and make, or a way to install them; TMPDIR allows programs (the
    probe that must create a file is left out of --dry-run)."""
    check_compiler(facts, install_deps)
    if not dry_run:
        check_tmp_exec(runner)


def check_build_user(requested: Optional[str], build_dir: Path) -> Optional[BuildUser]:
    """As root: the unprivileged user who runs the build, who must reach the build directory
    (exit 3 with the fix when there is none or it cannot). None when not root."""
    user = find_build_user(requested, os.geteuid())
    if user is not None:
        check_reachable(build_dir, user)
    return user


def check_build_out(artifact_out: Optional[Path], rpm_out: Optional[Path]) -> None:
    """`build`'s output can be written: the artifact's directory, or the RPM's OUT_DIR."""
    if artifact_out is not None:
        check_artifact_out(artifact_out)
    if rpm_out is not None and not os.access(str(nearest_existing(rpm_out)), os.W_OK):
        raise HostError(
            f"cannot write the RPM into {rpm_out}",
            hint="choose an --rpm directory you can write",
        )


def check_artifact_out(out: Path) -> None:
    if not os.access(str(nearest_existing(out.parent)), os.W_OK):
        raise HostError(
            f"cannot write the artifact {out}",
            hint="choose an --artifact path in a directory you can write",
        )


def not_writable(path: Path, existing: Path, root: bool) -> HostError:
    """Why `path` cannot be written, in terms the operator can act on: root cannot fix a
    read-only filesystem or an immutable directory by being root."""
    elsewhere = (
        "pass --prefix-root (or --prefix) and --profile-file (or --no-profile) on a "
        "writable filesystem"
    )
    try:
        read_only = bool(os.statvfs(str(existing)).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return HostError(
            f"cannot write {path}: {existing} is on a read-only filesystem",
            hint=f"remount it read-write, or {elsewhere}",
        )
    if root:
        return HostError(
            f"cannot write {path}: {existing} is not writable, even for root",
            hint=f"check its attributes (lsattr -d {existing}) and its mount, or {elsewhere}",
        )
    return HostError(
        f"cannot write {path} ({existing} is not writable and you are not root)",
        hint="run as root, or pass --prefix and --profile-file (or --no-profile) in "
        "places you can write",
    )


def check_tmp_exec(runner: Runner) -> None:
    """configure compiles and runs test programs in the build directory, under TMPDIR: a noexec
    mount makes it fail in confusing ways, so detect it up front (as python-build does)."""
    tmp = Path(tempfile.gettempdir())
    try:
        fd, name = tempfile.mkstemp(prefix="sqlite-provision-exec-", suffix=".sh", dir=str(tmp))
    except OSError as exc:
        raise HostError(
            f"cannot create files in the temporary directory {tmp}: {exc.strerror}",
            hint="set TMPDIR to a writable directory with free space, e.g. TMPDIR=/var/tmp",
        ) from exc
    try:
        os.write(fd, b"#!/bin/sh\nexit 0\n")
        os.fchmod(fd, 0o700)
        os.close(fd)
        result = runner.capture([name], timeout=30)
    finally:
        os.unlink(name)
    if result.returncode != 0:
        raise HostError(
            f"cannot run programs in the temporary directory {tmp} (mounted noexec?)",
            hint="configure runs test programs there: set TMPDIR to a directory on an exec "
            "mount, e.g. TMPDIR=/var/tmp",
        )


def check_compiler(facts: Facts, install_deps: bool) -> None:
    """gcc and make present, or a way to install them (exit 3 with the command otherwise)."""
    if not facts.compiler_missing:
        return
    missing = " and ".join(facts.compiler_missing)
    command = "{} install -y gcc make".format(facts.package_manager or "yum")
    if not install_deps:
        raise HostError(
            f"{missing} missing and --no-install-deps was given",
            hint=f"run `{command}` first, or drop --no-install-deps",
        )
    if not facts.os.rhel_family or facts.package_manager is None:
        raise HostError(
            f"{missing} missing, and {facts.os.name} is not a RHEL-family host with yum",
            hint=foreign_compiler_hint(facts),
        )
    if not facts.root:
        raise HostError(
            f"{missing} missing and only root can install them",
            hint=f"run `sudo {command}`, or run sqlite-provision as root",
        )


def cannot_install(facts: Facts, install_deps: bool) -> Optional[str]:
    """Why this run will not install a missing package with yum (None: it may), as the end of
    a sentence naming what is missing."""
    if not install_deps:
        return " and --no-install-deps was given"
    if not facts.os.rhel_family or facts.package_manager is None:
        return f", and {facts.os.name} is not a RHEL-family host with yum"
    if not facts.root:
        return " and only root can install it"
    return None


def foreign_compiler_hint(facts: Facts) -> str:
    """Where the tool will not run a package manager itself, it still names the exact command."""
    if {"debian", "ubuntu"}.intersection((facts.os.id, *facts.os.like)):
        return "run `apt-get install -y gcc make` as root, then re-run"
    return "install a C compiler and make with your package manager, then re-run"
