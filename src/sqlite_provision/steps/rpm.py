"""The steps of RPMs: pack the staged install as one (`build --rpm`, through store/rpm.py);
install one with dnf, yum or rpm (`install --rpm FILE`), or by name from the host's enabled
repositories (`install --rpm-package NAME`), and check it with `rpm -V` and the tool's
manifest."""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from sqlite_provision import __version__
from sqlite_provision.errors import VerifyError
from sqlite_provision.host import rpmdb
from sqlite_provision.host.build_user import BuildUser
from sqlite_provision.steps.base import Argv, RunState, Step
from sqlite_provision.store.artifact import glibc_of_tree
from sqlite_provision.store.manifest import read_manifest
from sqlite_provision.store.rpm import SignWith, build_rpm, package_recipe, planned_commands


@dataclass(frozen=True)
class PackRpm(Step):
    out_dir: Path
    prefix: Path  # where the hosts will install it
    arch: str
    work: Path  # rpmbuild's directory, inside the build directory; must not exist yet
    build_user: Optional[BuildUser] = None
    sign_key: Optional[str] = None
    given_epoch: Optional[str] = None  # $SOURCE_DATE_EPOCH
    gnupg_home: Optional[str] = None  # $GNUPGHOME, where --sign's key is
    version: str = ""  # SQLite's, where the plan knows it (not `latest` before it is resolved)
    name = "pack-rpm"
    changes_host = True

    def describe(self) -> str:
        user = f" as {self.build_user.name}" if self.build_user else ""
        signed = f", sign it with {self.sign_key}" if self.sign_key else ""
        return (
            f"pack the staged install into an RPM with rpmbuild{user}{signed}, check that it "
            f"provides no library, write it and its .sha256 into {self.out_dir}"
        )

    def commands(self) -> List[Argv]:
        if not self.version:
            return []
        return planned_commands(self.version, self.arch, self.work, self.build_user,
                                self.sign_key)  # fmt: skip

    def run(self, state: RunState) -> str:
        assert state.staged is not None  # noqa: S101 - Stage ran
        metadata = self.metadata(state.staged)
        recipe = package_recipe(metadata, prefix=str(self.prefix), given_epoch=self.given_epoch)
        target = self.out_dir / recipe.file_name
        sidecar = Path(str(target) + ".sha256")
        existed = [p for p in (target, sidecar) if os.path.lexists(str(p))]
        made_dir = not self.out_dir.exists()
        self.out_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        home = Path(self.gnupg_home) if self.gnupg_home else None
        sign = SignWith(self.sign_key, home) if self.sign_key else None
        shutil.rmtree(str(self.work), ignore_errors=True)  # what a killed run left
        built = build_rpm(
            state.runner, state.staged, recipe, metadata, self.out_dir, self.work,
            self.build_user, sign,
        )  # fmt: skip
        if not existed:

            def undo() -> None:
                for path in (target, sidecar):
                    if os.path.lexists(str(path)):
                        path.unlink()
                if made_dir:
                    try:
                        self.out_dir.rmdir()
                    except OSError:
                        pass

            state.undo.append((f"remove {target}", undo))
        state.rpm = built
        return f"{built.rpm} ({built.rpm.stat().st_size} bytes, sha256 {built.sha256})"

    def metadata(self, staged: Path) -> Dict[str, Any]:
        """The artifact's metadata of the staged tree (store/artifact.py's format)."""
        manifest = read_manifest(staged)
        assert manifest is not None  # noqa: S101 - Stage wrote it
        glibc = glibc_of_tree(staged)
        return {
            "tool_version": __version__,
            "version": manifest.version,
            "prefix": str(self.prefix),
            "arch": self.arch,
            "glibc_min": ".".join(str(p) for p in glibc) if glibc != (0,) else None,
            "request": manifest.request,
            "build": manifest.build,
        }


def package_tool_argv(tool: Optional[str], verb: str, what: str) -> List[str]:
    """dnf/yum `install -y FILE` or `remove -y NAME`; `rpm -i FILE` or `rpm -e NAME` where
    there is neither."""
    if tool is not None:
        return [tool, verb, "-y", what]
    return [rpmdb.RPM, "-i" if verb == "install" else "-e", what]


@dataclass(frozen=True)
class InstallRpm(Step):
    """`install --rpm`: the package installed by the host's package tool, so that rpm owns and
    can verify its files; undone by removing it the same way."""

    path: Path
    package: str  # NAME-VERSION-RELEASE.ARCH
    rpm_name: str
    tool: Optional[str]  # yum or dnf; None: rpm itself
    name = "install-rpm"
    changes_host = True

    def describe(self) -> str:
        return f"install {self.package} from {self.path} with {self.tool or 'rpm'}"

    def commands(self) -> List[Argv]:
        return [package_tool_argv(self.tool, "install", str(self.path))]

    def is_satisfied(self, state: RunState) -> Optional[str]:
        done = state.runner.capture([rpmdb.RPM, "-q", self.package])
        return f"{self.package} is installed already" if done.returncode == 0 else None

    def run(self, state: RunState) -> str:
        install_undoably(state, self.commands()[0], self.tool, self.rpm_name, GLIBC_HINT)
        return f"{self.package} installed"


GLIBC_HINT = (
    "a glibc too old for the package is refused here: build the RPM on a host of this OS major"
)


def install_undoably(
    state: RunState, argv: Argv, tool: Optional[str], rpm_name: str, why: str
) -> None:
    """Run the package tool's install; from then on, the run's undo removes the package."""
    remove = package_tool_argv(tool, "remove", rpm_name)

    def undo() -> None:
        state.runner.run(remove, what=f"removing {rpm_name}")

    state.runner.run(
        argv,
        what=f"{tool or 'rpm'} install",
        hint=f"{tool or 'rpm'}'s own message is above ({why})",
    )
    state.undo.append((f"remove {rpm_name} ({' '.join(remove)})", undo))


@dataclass(frozen=True)
class InstallRpmPackage(Step):
    """`install --rpm-package`: the package installed by name from the host's enabled
    repositories. dnf or yum checks it against the repository's metadata (and its gpg signature
    where the repository says gpgcheck=1); undone by removing it the same way."""

    rpm_name: str
    tool: str  # yum or dnf: rpm alone cannot install by name (plan/inputs.py refuses that)
    # Planned only where the rpm database, asked under the lock (plan/resolve.py), has no such
    # package: so the undo never removes one the run did not install.
    name = "install-rpm"
    changes_host = True

    def describe(self) -> str:
        return f"install {self.rpm_name} with {self.tool} from the enabled repositories"

    def commands(self) -> List[Argv]:
        return [package_tool_argv(self.tool, "install", self.rpm_name)]

    def run(self, state: RunState) -> str:
        why = f"is the repository that holds {self.rpm_name} enabled? `{self.tool} list " \
            f"{self.rpm_name}` shows it; {GLIBC_HINT}"  # fmt: skip
        install_undoably(state, self.commands()[0], self.tool, self.rpm_name, why)
        return f"{self.rpm_name} installed from the enabled repositories"


@dataclass(frozen=True)
class CheckPackageTree(Step):
    """`install --rpm-package`: the tree the package put in the prefix is this package's (its
    manifest names it), so a package built for another prefix is never activated here."""

    prefix: Path
    rpm_name: str
    name = "check-rpm-tree"

    def describe(self) -> str:
        return f"check that the manifest in {self.prefix} names {self.rpm_name}"

    def commands(self) -> List[Argv]:
        return []

    def run(self, state: RunState) -> str:
        manifest = read_manifest(self.prefix)
        owner = manifest.rpm_package if manifest is not None else None
        if owner != self.rpm_name:
            said = f"names {owner}" if owner else "names no package"
            raise VerifyError(
                f"{self.prefix} does not hold {self.rpm_name}: its manifest "
                f"{said if manifest is not None else 'is missing'}",
                hint=f"rpm -ql {self.rpm_name} shows where the package installed: pass the "
                "--prefix-root it was built for, or build it for this one (build --rpm "
                "--prefix-root)",
            )
        return f"{self.prefix} holds {self.rpm_name}'s tree"


@dataclass(frozen=True)
class CheckRpm(Step):
    """`rpm -V`: every file of the package matches the digest, size and mode rpm recorded."""

    rpm_name: str
    name = "check-rpm"

    def describe(self) -> str:
        return f"check every file of {self.rpm_name} against the rpm database (rpm -V)"

    def commands(self) -> List[Argv]:
        return [[rpmdb.RPM, "-V", self.rpm_name]]

    def run(self, state: RunState) -> str:
        report = rpmdb.verify(state.runner, self.rpm_name)
        if not report.installed or report.problems:
            said = "; ".join(p.describe() for p in report.problems) or "it is not installed"
            raise VerifyError(
                f"rpm -V {self.rpm_name} fails: {said}",
                hint=f"reinstall it (dnf reinstall {self.rpm_name}), then run the install again",
            )
        return f"rpm -V {self.rpm_name}: every file intact"


@dataclass(frozen=True)
class RemoveRpm(Step):
    """`uninstall` of an RPM-owned version: the package removed by dnf, yum or rpm, which
    removes its files; never by deleting them behind rpm's back. It cannot be undone."""

    rpm_name: str
    version: str
    prefix: Path
    tool: Optional[str]  # yum or dnf; None: rpm itself
    name = "remove-rpm"
    changes_host = True
    reversible = False

    def describe(self) -> str:
        return f"remove the package {self.rpm_name} (SQLite {self.version} in {self.prefix})"

    def commands(self) -> List[Argv]:
        return [package_tool_argv(self.tool, "remove", self.rpm_name)]

    def run(self, state: RunState) -> str:
        state.runner.run(
            self.commands()[0],
            what=f"removing {self.rpm_name}",
            hint=f"{self.tool or 'rpm'}'s own message is above; `rpm -q {self.rpm_name}` shows "
            "whether it is still installed",
        )
        return f"removed {self.rpm_name} (SQLite {self.version})"
