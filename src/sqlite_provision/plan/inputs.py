"""Before the lock: what a request means on this host, read without writing anything, so that a
bad request stops here and leaves nothing behind (no lock file, no log).

For install and build: the host's facts, the pythons, the system library, the source (with no
network: `latest` stays unresolved), the places to write and the templates. For rollback and
uninstall: the pythons to verify and the venvs to unbind. And, for the recovery under the lock,
where a killed run of the same request may have left something (`recovery_places`).
"""

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from sqlite_provision import config
from sqlite_provision.config import (
    ACTIVATION_RECORD,
    CURRENT_LINK_NAME,
    DEFAULT_FETCH_POLICY,
    Environment,
    FetchPolicy,
    Layout,
    Options,
    csh_twin,
    make_layout,
    unit_base_name,
)
from sqlite_provision.errors import HostError, UsageError
from sqlite_provision.host import preflight
from sqlite_provision.host.build_user import build_owner_uids
from sqlite_provision.host.facts import Facts, gather, profile_readers
from sqlite_provision.host.library import SystemLibrary, probe
from sqlite_provision.host.pythons import Reach, login_reach, resolve_pythons, venv_reach
from sqlite_provision.host.rpmdb import (
    PackageInfo,
    installed_files,
    installed_package,
    package_files,
    read_package,
)
from sqlite_provision.host.selinux import SELINUX_ABSENT, SELinux
from sqlite_provision.host.selinux import probe as probe_selinux
from sqlite_provision.host.venvs import Venv, read_venv
from sqlite_provision.plan.model import Command
from sqlite_provision.recipe.rpmspec import package_name, version_of_package
from sqlite_provision.runner import Runner
from sqlite_provision.source.resolve import Source, resolve_source
from sqlite_provision.steps.activation import DROPIN_NAME, LD_SO_CONF_NAME, load_templates
from sqlite_provision.store import artifact as artifact_format
from sqlite_provision.store.recovery import Places
from sqlite_provision.versions import parse_version


@dataclass(frozen=True)
class Choices:
    """What the user chose that shapes the steps: all the plan reads of the options."""

    jobs: int  # --jobs, else the number of CPUs
    env_cflags: str
    allow_abi_loss: bool
    min_version: str
    systemd_units: Tuple[str, ...]
    env_file: Optional[Path]
    ld_so_conf: bool


def choices(options: Options, facts: Facts) -> Choices:
    return Choices(
        jobs=options.jobs or facts.cpus,
        env_cflags=options.env_cflags,
        allow_abi_loss=options.allow_abi_loss,
        min_version=options.min_version,
        systemd_units=options.systemd_units,
        env_file=options.env_file,
        ld_so_conf=options.ld_so_conf,
    )


@dataclass(frozen=True)
class NamedPackage:
    """install --rpm-package NAME: a package of `build --rpm`, by name."""

    name: str
    version: str  # the name's, and the rpm database's where it is installed
    installed: Optional[PackageInfo]  # as `rpm -q` reads it; None: dnf or yum installs it


@dataclass(frozen=True)
class Inputs:
    """What an install or a build means on this host, read with no lock and no write."""

    command: Command
    choices: Choices
    facts: Facts
    pythons: Tuple[str, ...]
    system_lib: SystemLibrary  # the system library
    source: Source  # `latest` is still unresolved here
    layout: Layout
    templates: Mapping[str, str]
    cache_dir: Path
    build_dir: Path
    units_dir: Path
    conf_dir: Path
    artifact: Optional[Dict[str, Any]] = None  # install --artifact: its metadata
    rpm: Optional[PackageInfo] = None  # install --rpm: the package, as rpm -qp reads it
    rpm_package: Optional[NamedPackage] = None  # install --rpm-package NAME
    artifact_out: Optional[Path] = None  # build --artifact OUT
    rpm_out: Optional[Path] = None  # build --rpm OUT_DIR
    sign_key: Optional[str] = None  # build --rpm --sign KEY
    source_date_epoch: Optional[str] = None  # $SOURCE_DATE_EPOCH, for build --rpm
    gnupg_home: Optional[str] = None  # $GNUPGHOME, for build --rpm --sign
    venvs: Tuple[Venv, ...] = ()
    profile_readers: Tuple[str, ...] = ()
    env_mirror: Optional[str] = None  # $SQLITE_PROVISION_MIRROR, for `latest`'s download page
    fetch_policy: FetchPolicy = DEFAULT_FETCH_POLICY
    selinux: SELinux = SELINUX_ABSENT  # install: the host's SELinux for this layout (else disabled)

    @property
    def package_name(self) -> Optional[str]:
        """install --rpm or --rpm-package: the name of the package that brings the tree."""
        if self.rpm is not None:
            return self.rpm.name
        return self.rpm_package.name if self.rpm_package is not None else None

    @property
    def from_source(self) -> bool:
        """A build from the source, not an artifact or a package."""
        return self.artifact is None and self.package_name is None


def selinux_root(layout: Layout) -> Path:
    """The tree an SELinux equivalence rule is for: the prefix root, or the --prefix."""
    return layout.current_link.parent if layout.current_link is not None else layout.prefix


def artifact_source(path: Path, options: Options) -> Tuple[Source, Dict[str, Any]]:
    """The artifact's metadata and expected checksum (the source's), read once the file matches
    it (exit 4 otherwise, even where that build is installed already: a bad copy is said, never
    hidden by "nothing to do"); its contents are checked again by the step that unpacks it."""
    checksum = artifact_format.expected_checksum(path, options.sha256)
    artifact_format.check_checksum(path, checksum)
    metadata = artifact_format.read_metadata(path)
    version = str(metadata.get("version"))
    parse_version(version)
    source = Source(version, path.name, None, path, checksum, f"--artifact {path}")
    return source, metadata


def rpm_source(runner: Runner, path: Path, options: Options) -> Tuple[Source, PackageInfo]:
    """The package's checksum (--sha256 or FILE.sha256, fail closed as for an artifact), then
    what rpm reads of it: one of `build --rpm`'s packages, its version SQLite's."""
    checksum = artifact_format.expected_checksum(path, options.sha256)
    artifact_format.check_checksum(path, checksum)
    package = read_package(runner, path)
    parse_version(package.version)
    if package.name != package_name(package.version):
        raise UsageError(
            f"{path} is {package.nevra}, not a package of `sqlite-provision build --rpm`",
            hint=f"build one with sqlite-provision build --rpm DIR (its name is "
            f"{package_name(package.version)})",
        )
    return Source(package.version, path.name, None, path, checksum, f"--rpm {path}"), package


def check_rpm_prefix(runner: Runner, path: Path, prefix: Path) -> None:
    """The package's files are the prefix's tree: it installs where this layout says."""
    library = str(prefix / "lib" / "libsqlite3.so.0")
    if library not in package_files(runner, path):
        raise UsageError(
            f"{path} does not install {library}",
            hint="pass the --prefix-root (or --prefix) it was built for (rpm -qpl shows it), or "
            "build it for this one with build --rpm --prefix-root",
        )


def named_package_source(
    runner: Runner, name: str, tool: Optional[str]
) -> Tuple[Source, NamedPackage]:
    """install --rpm-package NAME: the package as the rpm database has it, or (not installed)
    what dnf or yum will install from the enabled repositories, which check it against the
    repository's metadata; rpm alone cannot install a package by name (exit 3)."""
    version = version_of_package(name)
    installed = installed_package(runner, name)
    if installed is None and tool is None:
        raise HostError(
            f"{name} is not installed, and this host has no dnf or yum to install it by name "
            "(rpm alone installs only a package file)",
            hint=f"install it first (rpm -i {name}-{version}-*.rpm), or pass the file: "
            "sqlite-provision install --rpm FILE",
        )
    if installed is not None and installed.version != version:
        raise UsageError(
            f"the installed {installed.nevra} is not SQLite {version}, as its name says",
            hint="it is not a package of `sqlite-provision build --rpm`: remove it, then install "
            "one that build --rpm made",
        )
    where = "installed" if installed is not None else f"{tool} from the enabled repositories"
    source = Source(version, name, None, None, None, f"--rpm-package {name} ({where})")
    return source, NamedPackage(name, version, installed)


def check_installed_prefix(runner: Runner, name: str, prefix: Path) -> None:
    """An installed package's files are the prefix's tree (rpm -ql): this layout's."""
    library = str(prefix / "lib" / "libsqlite3.so.0")
    if library not in installed_files(runner, name):
        raise UsageError(
            f"{name} is installed, but not in {prefix}: it has no {library}",
            hint=f"pass the --prefix-root (or --prefix) it was built for (rpm -ql {name} shows it)",
        )


def read_inputs(command: Command, options: Options, env: Environment, runner: Runner) -> Inputs:
    """The host's facts, the pythons, the system library and the source (with no network), and
    the places to write (exit 3 before anything else if they cannot be written)."""
    facts = gather(env)
    install = command is Command.INSTALL
    pythons = resolve_pythons(runner, options.pythons) if install else ()
    probe_python = pythons[0] if install else shutil.which("python3") or sys.executable
    metadata: Optional[Dict[str, Any]] = None
    package: Optional[PackageInfo] = None
    named: Optional[NamedPackage] = None
    if install and options.artifact is not None:
        source, metadata = artifact_source(options.artifact, options)
    elif install and options.rpm is not None:
        source, package = rpm_source(runner, options.rpm, options)
    elif install and options.rpm_package is not None:
        source, named = named_package_source(runner, options.rpm_package, facts.package_manager)
    else:
        source = resolve_source(options, env.mirror)
    system_lib = probe(runner, probe_python)
    layout = make_layout(options, source.version)
    if install:
        preflight.check_writable(layout, facts.root)
    if package is not None and options.rpm is not None:
        check_rpm_prefix(runner, options.rpm, layout.prefix)
    elif named is not None and named.installed is not None:
        check_installed_prefix(runner, named.name, layout.prefix)
    elif named is None:
        preflight.check_build_out(options.artifact_out, options.rpm_out)
    venvs = tuple(read_venv(runner, path) for path in options.venvs) if install else ()
    readers = tuple(profile_readers(layout.profile_file, env.home)) if layout.profile_file else ()
    selinux = SELINUX_ABSENT
    if install:
        library = layout.prefix / "lib" / "libsqlite3.so.0"
        selinux = probe_selinux(runner, env.search_path, selinux_root(layout), library)
    return Inputs(
        command, choices(options, facts), facts, pythons, system_lib, source, layout,
        templates=load_templates() if install else {}, cache_dir=env.cache_dir,
        build_dir=env.build_dir, units_dir=env.paths.systemd_dir,
        conf_dir=env.paths.ld_so_conf_dir, artifact=metadata, rpm=package, rpm_package=named,
        artifact_out=options.artifact_out,
        rpm_out=options.rpm_out, sign_key=options.sign_key,
        source_date_epoch=env.variables.get("SOURCE_DATE_EPOCH"),
        gnupg_home=env.variables.get("GNUPGHOME"), venvs=venvs, profile_readers=readers, env_mirror=env.mirror, fetch_policy=env.fetch,
        selinux=selinux,
    )  # fmt: skip


def recovery_places(inputs: Inputs, options: Options) -> Places:
    """Where a killed run of the same request may have left something behind."""
    layout = inputs.layout
    files: List[Path] = []
    if layout.profile_file is not None:
        files += [layout.profile_file, csh_twin(layout.profile_file)]
    if inputs.choices.env_file is not None:
        files.append(inputs.choices.env_file)
    units = inputs.units_dir
    files += [units / f"{unit_base_name(u)}.service.d" / DROPIN_NAME for u in options.systemd_units]
    files.append(inputs.conf_dir / LD_SO_CONF_NAME)
    files += [venv.hook for venv in inputs.venvs]
    if layout.activation_record is not None:
        files.append(layout.activation_record)
    return Places(
        prefix_parent=layout.prefix.parent,
        activation_files=files,
        cache_dir=inputs.cache_dir,
        build_dir=inputs.build_dir,
        prefix_root=options.prefix is None,
        build_owners=build_owner_uids(options.build_user, os.geteuid()),
    )


# --- rollback and uninstall ------------------------------------------------------------------


@dataclass(frozen=True)
class RevertInputs:
    """What a rollback or an uninstall means on this host, read with no lock and no write: the
    prefix root it acts on, and the pythons a rollback verifies or the venvs an uninstall
    unbinds."""

    command: Command
    prefix_root: Path
    profile_file: Path
    min_version: str = ""
    reaches: Tuple[Reach, ...] = ()  # rollback: how each python is started to be verified
    versions: Tuple[str, ...] = ()  # uninstall VERSION...
    remove_all: bool = False
    hooks: Tuple[Path, ...] = ()  # uninstall --venv: the hooks to remove
    units_dir: Path = config.DEFAULT_SYSTEMD_DIR
    conf_dir: Path = config.DEFAULT_LD_SO_CONF_DIR
    systemd_running: bool = False
    package_manager: Optional[str] = None  # yum or dnf, which removes an RPM-owned version


def python_reaches(
    runner: Runner, options: Options, lib_dir: Path, profile: Optional[Path]
) -> List[Reach]:
    """How each python to verify is started: each --python as a login shell would (through the
    profile snippet), then each --venv's python with no environment at all."""
    found = [login_reach(p, lib_dir, profile) for p in resolve_pythons(runner, options.pythons)]
    return found + [venv_reach(read_venv(runner, path).python) for path in options.venvs]


def read_rollback_inputs(options: Options, runner: Runner) -> RevertInputs:
    """The pythons a rollback verifies, through the snippet where there is one."""
    profile = options.profile_file
    snippet = profile if profile.exists() else None
    lib_dir = options.prefix_root / CURRENT_LINK_NAME / "lib"
    found = python_reaches(runner, options, lib_dir, snippet)
    return RevertInputs(Command.ROLLBACK, options.prefix_root, profile,
                        min_version=options.min_version, reaches=tuple(found))  # fmt: skip


def read_uninstall_inputs(options: Options, env: Environment, runner: Runner) -> RevertInputs:
    """What to remove: the versions named (or all), and each --venv's hook (exit 2 for a
    request that names nothing)."""
    if not options.versions and not options.remove_all and not options.venvs:
        raise UsageError(
            "name a VERSION to uninstall, or pass --all (or --venv DIR to unbind a venv)",
            hint="`sqlite-provision status` lists what is installed",
        )
    hooks = tuple(read_venv(runner, path).hook for path in options.venvs)
    facts = gather(env)
    return RevertInputs(
        Command.UNINSTALL, options.prefix_root, options.profile_file,
        versions=options.versions, remove_all=options.remove_all, hooks=hooks,
        units_dir=env.paths.systemd_dir, conf_dir=env.paths.ld_so_conf_dir,
        systemd_running=facts.systemd_running, package_manager=facts.package_manager,
    )  # fmt: skip


def revert_places(inputs: RevertInputs, env: Environment) -> Places:
    """Where a killed install, rollback or uninstall under this prefix root may have left
    something (rollback and uninstall know the prefix root and the snippet, not the rest)."""
    profile, root = inputs.profile_file, inputs.prefix_root
    files = [profile, csh_twin(profile), root / ACTIVATION_RECORD, *inputs.hooks]
    return Places(root, files, env.cache_dir, env.build_dir)
