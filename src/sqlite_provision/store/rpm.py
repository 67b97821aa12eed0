"""Build once, deploy through RPM repositories: a staged tree packed as one RPM with rpmbuild.

`build_rpm` takes the staged tree (or an unpacked artifact's, relocated to the prefix it will
install at) and its metadata (store/artifact.py's format), renders the spec
(recipe/rpmspec.py), runs rpmbuild through the Runner as the build user (never as root) in a
work directory handed over to that user, takes it back, optionally signs the package with
rpmsign, reads it back with `rpm -qp`, refuses it if it provides any shared library, and writes
OUT_DIR/NAME-VERSION-RELEASE.ARCH.rpm and its .sha256 atomically.

The tree the package holds is the install `install --artifact` would leave: the version's
files and the tool's manifest, which records the package's name (build.rpm), so that the tool
sees an RPM-installed version as its own and knows to remove it with dnf.
"""

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from sqlite_provision.errors import HostError, VerifyError
from sqlite_provision.files import package_data, read_regular, write_atomic
from sqlite_provision.host.build_user import BuildUser, check_reachable, hand_over, take_back
from sqlite_provision.host.rpmdb import PackageInfo, read_package, read_package_argv
from sqlite_provision.recipe.rpmspec import (
    DEFAULT_RELEASE,
    TEMPLATE,
    PackageRecipe,
    package_name,
    recipe_from_metadata,
    render_spec,
    source_date_epoch,
)
from sqlite_provision.results import BuiltRpm
from sqlite_provision.runner import Runner
from sqlite_provision.source.catalog import find_release
from sqlite_provision.store.manifest import Manifest, scan_tree, write_manifest

# rpmbuild's environment: nothing of the caller's but what it is told (a fixed PATH, the C
# locale, UTC), so that two builds of the same inputs on one host give the same bytes.
BUILD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class SignWith:
    key: str  # what gpg -u takes: a key id, fingerprint or user id
    gnupg_home: Optional[Path] = None  # GNUPGHOME, when not root's ~/.gnupg


def package_recipe(
    metadata: Mapping[str, Any],
    *,
    prefix: Optional[str] = None,
    release: str = "1",
    given_epoch: Optional[str] = None,
) -> PackageRecipe:
    """The recipe of a build, its time the release's date in the catalog unless the caller has a
    SOURCE_DATE_EPOCH (`given_epoch`)."""
    found = find_release(str(metadata.get("version")))
    epoch = source_date_epoch(found.released if found else None, given_epoch)
    return recipe_from_metadata(metadata, source_date_epoch=epoch, prefix=prefix, release=release)


def find_tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise HostError(
            f"{name} is not installed (building an RPM needs it)",
            hint=f"install it (yum install -y {package}), or build an artifact with --artifact",
        )
    return found


def build_rpm(
    runner: Runner,
    tree: Path,
    recipe: PackageRecipe,
    metadata: Mapping[str, Any],
    out_dir: Path,
    work: Path,
    build_user: Optional[BuildUser],
    sign: Optional[SignWith] = None,
    template: Optional[str] = None,
) -> BuiltRpm:
    """The package of `tree` (see the module docstring); `work` must not exist yet, and is
    removed afterwards; `template` replaces the shipped spec template's text. Raises HostError
    (no rpmbuild), CommandFailed, VerifyError."""
    rpmbuild = find_tool("rpmbuild", "rpm-build")
    signer = find_tool("rpmsign", "rpm-sign") if sign else None
    if build_user is not None:
        check_reachable(work, build_user)
    work.mkdir(mode=0o755)
    try:
        if template is None:
            template = package_data("templates/" + TEMPLATE).decode("utf-8")
        spec = prepare(work, tree, recipe, metadata, template)
        runner.log.write(f"{spec}:\n{spec.read_text(encoding='utf-8')}")
        if build_user is not None:
            hand_over(work, build_user)
        runner.run(
            rpmbuild_argv(rpmbuild, work, spec, recipe, build_user),
            env=build_env(work, recipe),
            what="rpmbuild",
            hint="the spec is in the log; rpmbuild's own message is above",
        )
        if build_user is not None:
            take_back(work)
        built = take_package(work, recipe)
        info = read_package(runner, built)
        check_package(info, recipe)  # before it is signed
        if sign is not None and signer is not None:
            run_sign(runner, signer, built, sign)
        return publish(built, out_dir, info, sign)
    finally:
        shutil.rmtree(str(work), ignore_errors=True)


def prepare(
    work: Path, tree: Path, recipe: PackageRecipe, metadata: Mapping[str, Any], template: str
) -> Path:
    """work/tree: a copy of the tree with the tool's manifest, every time set to the recipe's;
    work/SPECS/NAME.spec; rpmbuild's directories. Returns the spec."""
    copy = work / "tree"
    shutil.copytree(str(tree), str(copy), symlinks=True)
    request = dict(metadata.get("request") or {})
    build = dict(metadata.get("build") or {}, rpm=recipe.name)
    write_manifest(copy, Manifest(recipe.version, request, build, scan_tree(copy)))
    stamp = recipe.source_date_epoch
    for dirpath, dirnames, filenames in os.walk(str(copy)):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (stamp, stamp), follow_symlinks=False)
    os.utime(str(copy), (stamp, stamp))
    for name in ("SPECS", "top", "tmp"):
        (work / name).mkdir(mode=0o755)
    spec = work / "SPECS" / f"{recipe.name}.spec"
    write_atomic(spec, render_spec(recipe, template).encode("utf-8"), 0o644)
    return spec


def rpmbuild_argv(
    rpmbuild: str, work: Path, spec: Path, recipe: PackageRecipe, user: Optional[BuildUser]
) -> List[str]:
    argv = [rpmbuild, "-bb", "--target", recipe.arch,
            "--define", f"_topdir {work / 'top'}",
            "--define", f"_sourcedir {work / 'tree'}",
            "--define", f"_tmppath {work / 'tmp'}",
            str(spec)]  # fmt: skip
    return user.wrap(argv) if user is not None else argv


def build_env(work: Path, recipe: PackageRecipe) -> Dict[str, str]:
    return {
        "PATH": BUILD_PATH,
        "HOME": str(work),  # no ~/.rpmmacros of root's or of the build user's
        "LANG": "C",
        "LC_ALL": "C",
        "TZ": "UTC",
        "TMPDIR": str(work / "tmp"),
        "SOURCE_DATE_EPOCH": str(recipe.source_date_epoch),
    }


def take_package(work: Path, recipe: PackageRecipe) -> Path:
    """rpmbuild's package, copied (through no link) into a directory of root's own."""
    made = work / "top" / "RPMS" / recipe.arch / recipe.file_name
    try:
        data = read_regular(made)
    except OSError as exc:
        raise VerifyError(
            f"rpmbuild made no {recipe.file_name}: {exc}",
            hint="the log shows what rpmbuild did",
        ) from exc
    mine = work / "package"
    mine.mkdir(mode=0o700)
    taken = mine / recipe.file_name
    write_atomic(taken, data, 0o644)
    return taken


def run_sign(runner: Runner, rpmsign: str, package: Path, sign: SignWith) -> None:
    env = {"PATH": BUILD_PATH, "LANG": "C", "LC_ALL": "C", "HOME": os.path.expanduser("~")}
    if sign.gnupg_home is not None:
        env["GNUPGHOME"] = str(sign.gnupg_home)
    runner.run(
        sign_argv(rpmsign, package, sign.key),
        env=env,
        what="rpmsign",
        hint=f"check that gpg has the secret key {sign.key} without a passphrase prompt "
        "(gpg --list-secret-keys), or build without --sign",
    )  # fmt: skip


def sign_argv(rpmsign: str, package: Path, key: str) -> List[str]:
    gpg = shutil.which("gpg2") or shutil.which("gpg") or "gpg2"
    return [rpmsign, "--addsign", "--define", f"_gpg_name {key}", "--define", f"__gpg {gpg}",
            str(package)]  # fmt: skip


def planned_commands(
    version: str, arch: str, work: Path, user: Optional[BuildUser], key: Optional[str]
) -> List[List[str]]:
    """What build_rpm runs, for the plan: rpmbuild, rpm -qp, and rpmsign with a key."""
    name = package_name(version)
    file_name = f"{name}-{version}-{DEFAULT_RELEASE}.{arch}.rpm"
    spec = work / "SPECS" / f"{name}.spec"
    rpmbuild = shutil.which("rpmbuild") or "rpmbuild"
    argv = [rpmbuild, "-bb", "--target", arch,
            "--define", f"_topdir {work / 'top'}",
            "--define", f"_sourcedir {work / 'tree'}",
            "--define", f"_tmppath {work / 'tmp'}",
            str(spec)]  # fmt: skip
    taken = work / "package" / file_name
    commands = [user.wrap(argv) if user is not None else argv, read_package_argv(taken)]
    if key is not None:
        commands.append(sign_argv(shutil.which("rpmsign") or "rpmsign", taken, key))
    return commands


def check_package(info: PackageInfo, recipe: PackageRecipe) -> None:
    """Fail closed: the package is the recipe's, provides nothing but its own name (an rpm that
    ignores __provides_exclude_from would make it a provider of libsqlite3.so.0), and does not
    require a libsqlite3."""
    if (info.name, info.version, info.release, info.arch) != (
        recipe.name, recipe.version, recipe.release, recipe.arch,
    ):  # fmt: skip
        raise VerifyError(f"rpmbuild made {info.nevra}, not {recipe.nevra}")
    foreign = [p for p in info.provides if not own_provide(p, recipe.name)]
    sqlite = [r for r in info.requires if r.startswith("libsqlite3")]
    if foreign or sqlite:
        raise VerifyError(
            f"the package {recipe.file_name} would provide {foreign or 'nothing foreign'} and "
            f"require {sqlite or 'no libsqlite3'}: it could stand in for the system library",
            hint="this host's rpmbuild ignores __provides_exclude_from or __requires_exclude "
            "(rpm 4.9 or later has them): build the RPM on a RHEL 7 or later host",
        )


def own_provide(provide: str, name: str) -> bool:
    """`NAME = V-R` or `NAME(x86-64) = V-R` (the arch-specific name rpm adds)."""
    what = provide.split(" ", 1)[0]
    return what == name or (what.startswith(name + "(") and what.endswith(")"))


def publish(built: Path, out_dir: Path, info: PackageInfo, sign: Optional[SignWith]) -> BuiltRpm:
    data = built.read_bytes()
    out = out_dir / built.name
    write_atomic(out, data, 0o644)
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(Path(str(out) + ".sha256"), f"{digest}  {out.name}\n".encode(), 0o644)
    return BuiltRpm(
        rpm=out,
        name=info.name,
        version=info.version,
        release=info.release,
        arch=info.arch,
        sha256=digest,
        provides=info.provides,
        requires=info.requires,
        signed_with=sign.key if sign else None,
    )
