"""Resolve, then plan once.

Everything the plan needs is read once, in an order that fails early: `read_inputs` (no writes,
no lock: the host's facts, the pythons, the system library, the source, the places to write),
then, under the run lock, `resolve` (the download page for `latest`, the prefix and what is
installed there, the build's preconditions). Each precondition is checked once, as soon as what
it needs is known. `build_plan` is then pure: from a Resolution to the steps, with no I/O, and
the same Plan feeds --dry-run and the executor.
"""

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sqlite_provision.config import (
    DEFAULT_FETCH_POLICY,
    Environment,
    FetchPolicy,
    Layout,
    Options,
    csh_twin,
    make_layout,
    unit_base_name,
)
from sqlite_provision.digests import Checksum
from sqlite_provision.errors import VerifyError
from sqlite_provision.host import preflight
from sqlite_provision.host.build_user import BuildUser, build_owner_uids
from sqlite_provision.host.facts import Facts, gather, profile_readers
from sqlite_provision.host.library import HostLibrary, probe
from sqlite_provision.host.pythons import (
    Reach,
    login_reach,
    resolve_pythons,
    unit_reach,
    venv_reach,
)
from sqlite_provision.host.venvs import Venv, read_venv
from sqlite_provision.recipe import flags
from sqlite_provision.recipe.api import added_after, describe
from sqlite_provision.recipe.features import Selected, select
from sqlite_provision.results import PlanView, Report, StepRecord, StepView
from sqlite_provision.runner import Runner, quote_argv
from sqlite_provision.source.resolve import Source, resolve_latest, resolve_source
from sqlite_provision.steps.activation import (
    DROPIN_NAME,
    LD_SO_CONF_NAME,
    RecordActivation,
    ld_so_conf_step,
    load_templates,
    profile_steps,
    service_steps,
    venv_steps,
)
from sqlite_provision.steps.artifact import PackArtifact, UnpackArtifact
from sqlite_provision.steps.base import Step
from sqlite_provision.steps.build import (
    Configure,
    Extract,
    Fetch,
    InstallCompiler,
    Make,
    Stage,
    staged_library,
)
from sqlite_provision.steps.gate import AbiGate, FindStale, SmokeTest, Verify
from sqlite_provision.steps.install import Install, LinkCurrent
from sqlite_provision.store import artifact as artifact_format
from sqlite_provision.store.manifest import installed_reason, read_manifest
from sqlite_provision.store.recovery import Places, staging_dir
from sqlite_provision.versions import loose_version, parse_version

LIBRARY = Path("lib") / "libsqlite3.so.0"


@dataclass(frozen=True)
class Resolution:
    """Everything the plan is built from, read once."""

    command: str  # install | build
    options: Options
    facts: Facts
    source: Source
    layout: Layout
    pythons: Tuple[str, ...]
    host: HostLibrary
    features: Tuple[Selected, ...]
    request: Dict[str, Any]  # the inputs that define the build, as the manifest records them
    installed: Optional[str]  # why no build is needed (this build is installed and intact)
    templates: Mapping[str, str]
    cache_dir: Path
    build_dir: Path
    units_dir: Path
    conf_dir: Path
    artifact: Optional[Dict[str, Any]] = None  # install --artifact: its metadata
    artifact_checksum: Optional[Checksum] = None
    resolved: Tuple[StepRecord, ...] = ()  # what resolving did that the report shows
    venvs: Tuple[Venv, ...] = ()
    profile_readers: Tuple[str, ...] = ()
    build_user: Optional[BuildUser] = None  # as root: who runs configure and make
    fetch_policy: FetchPolicy = DEFAULT_FETCH_POLICY


@dataclass(frozen=True)
class Plan:
    command: str
    source: Source
    layout: Layout
    steps: Tuple[Step, ...]
    pythons: Tuple[str, ...]
    features: Tuple[Selected, ...]
    resolved: Tuple[StepRecord, ...] = ()
    artifact_out: Optional[Path] = None
    profile_readers: Tuple[str, ...] = ()

    def view(self) -> PlanView:
        """What --dry-run shows: each step's description and its exact commands."""
        checksum = self.source.checksum
        return PlanView(
            command=self.command,
            version=self.source.version,
            url=self.source.url,
            tarball=str(self.source.local) if self.source.local else None,
            checksum=checksum.tagged if checksum else None,
            origin=self.source.origin,
            prefix=str(self.layout.prefix),
            profile_file=str(self.layout.profile_file) if self.layout.profile_file else None,
            pythons=list(self.pythons),
            features=[(s.feature.option, s.origin) for s in self.features],
            steps=[
                StepView(
                    step.name,
                    step.describe(),
                    [quote_argv(argv) for argv in step.commands()],
                    [quote_argv(brief(argv)) for argv in step.commands()],
                )
                for step in self.steps
            ],
        )

    def new_report(self, log_path: Optional[Path]) -> Report:
        """The result before any step ran: what the plan is about."""
        install = self.command == "install"
        return Report(
            changed=any(record.changed for record in self.resolved),
            version=self.source.version,
            prefix=str(self.layout.prefix),
            library=str(self.layout.active_lib_dir / LIBRARY.name) if install else None,
            profile_file=str(self.layout.profile_file)
            if install and self.layout.profile_file
            else None,
            log_file=str(log_path) if log_path is not None else None,
            steps=list(self.resolved),
            artifact=str(self.artifact_out) if self.artifact_out is not None else None,
            profile_readers=list(self.profile_readers),
        )


def brief(argv: List[str]) -> List[str]:
    """argv for a person to read: a script given with -c is shown by its size."""
    return [
        f"<a python script of {len(arg.strip().splitlines())} lines>"
        if index and argv[index - 1] == "-c" and "\n" in arg
        else arg
        for index, arg in enumerate(argv)
    ]


# --- resolve ---------------------------------------------------------------------------------


def build_request(
    source: Source, options: Options, features: Tuple[Selected, ...]
) -> Dict[str, Any]:
    """The inputs that define a build; the manifest records them so a re-run can compare."""
    return {
        "version": source.version,
        "source_hash": source.checksum.tagged if source.checksum else None,
        "cflags": options.env_cflags.strip(),
        "features": sorted(s.feature.option for s in features),
    }


def artifact_source(path: Path, options: Options) -> Tuple[Source, Dict[str, Any], Checksum]:
    """The artifact's metadata and expected checksum, read once the file matches it (exit 4
    otherwise, even where that build is installed already: a bad copy is said, never hidden by
    "nothing to do"); its contents are checked again by the step that unpacks it."""
    checksum = artifact_format.expected_checksum(path, options.sha256)
    artifact_format.check_checksum(path, checksum)
    metadata = artifact_format.read_metadata(path)
    version = str(metadata.get("version"))
    parse_version(version)
    source = Source(
        version=version,
        filename=path.name,
        url=None,
        local=path,
        checksum=checksum,
        origin=f"--artifact {path}",
    )
    return source, metadata, checksum


@dataclass(frozen=True)
class Inputs:
    """What the request means on this host, read without writing anything or taking the lock:
    a bad request stops here and leaves nothing behind."""

    command: str
    options: Options
    facts: Facts
    pythons: Tuple[str, ...]
    host: HostLibrary
    source: Source  # `latest` is still unresolved here
    layout: Layout
    env: Environment
    artifact: Optional[Dict[str, Any]] = None
    artifact_checksum: Optional[Checksum] = None
    venvs: Tuple[Venv, ...] = ()
    profile_readers: Tuple[str, ...] = ()


def read_inputs(command: str, options: Options, env: Environment, runner: Runner) -> Inputs:
    """The host's facts, the pythons, the system library and the source (with no network), and
    the places to write (exit 3 before anything else if they cannot be written)."""
    facts = gather(env)
    install = command == "install"
    if install:
        pythons = resolve_pythons(runner, options.pythons)
        probe_python = pythons[0]
    else:
        pythons = ()
        probe_python = shutil.which("python3") or sys.executable
    metadata: Optional[Dict[str, Any]] = None
    artifact_checksum: Optional[Checksum] = None
    if install and options.artifact is not None:
        source, metadata, artifact_checksum = artifact_source(options.artifact, options)
    else:
        source = resolve_source(options, env.mirror)
    host = probe(runner, probe_python)
    layout = make_layout(options, source.version)
    if install:
        preflight.check_writable(layout, facts.root)
    else:
        assert options.artifact_out is not None  # noqa: S101 - `build` requires --artifact
        preflight.check_artifact_out(options.artifact_out)
    venvs = tuple(read_venv(runner, path) for path in options.venvs) if install else ()
    readers = tuple(profile_readers(layout.profile_file, env.home)) if layout.profile_file else ()
    return Inputs(command, options, facts, pythons, host, source, layout, env, metadata,
                  artifact_checksum, venvs, readers)  # fmt: skip


def recovery_places(inputs: Inputs) -> Places:
    """Where a killed run of the same request may have left something behind."""
    options, layout, env = inputs.options, inputs.layout, inputs.env
    files: List[Path] = []
    if layout.profile_file is not None:
        files += [layout.profile_file, csh_twin(layout.profile_file)]
    if options.env_file is not None:
        files.append(options.env_file)
    units = env.paths.systemd_dir
    files += [units / f"{unit_base_name(u)}.service.d" / DROPIN_NAME for u in options.systemd_units]
    files.append(env.paths.ld_so_conf_dir / LD_SO_CONF_NAME)
    files += [venv.hook for venv in inputs.venvs]
    if layout.activation_record is not None:
        files.append(layout.activation_record)
    return Places(
        prefix_parent=layout.prefix.parent,
        activation_files=files,
        cache_dir=env.cache_dir,
        build_dir=env.build_dir,
        prefix_root=options.prefix is None,
        build_owners=build_owner_uids(options.build_user, os.geteuid()),
    )


def recover_record(done: List[str], seconds: float) -> StepRecord:
    """What recovery did, as the report's first step."""
    return StepRecord("recover", "ok", round(seconds, 3), "; ".join(done), changed=True)


def resolve(
    inputs: Inputs,
    runner: Runner,
    fetch_page: Optional[Callable[[str], str]] = None,
    recovered: Tuple[StepRecord, ...] = (),
) -> Resolution:
    """Under the lock: `latest` from the download page (with `fetch_page`; without it, in a
    dry run, it stays unresolved and nothing touches the network), the prefix and what is
    installed there (the installed tree is hashed here, once), and the build's preconditions,
    each checked once, before the network where it can be."""
    options, facts, source, layout = inputs.options, inputs.facts, inputs.source, inputs.layout
    install = inputs.command == "install"
    needs_compiler = inputs.artifact is None
    compiler_checked = False
    records: List[StepRecord] = list(recovered)
    if not source.resolved and fetch_page is not None:
        # Never read the network only to find that the host cannot build.
        preflight.check_build(facts, options.install_deps, options.dry_run, runner)
        compiler_checked = True
        started = time.monotonic()
        source = resolve_latest(options, fetch_page, inputs.env.mirror)
        records.append(
            StepRecord(
                "resolve",
                "ok",
                round(time.monotonic() - started, 3),
                f"latest is {source.version} ({source.origin})",
            )
        )
        layout = make_layout(options, source.version)
    check_not_older(source.version if source.resolved else "", inputs.host, options)
    if inputs.artifact is None:
        features = select(options.compat, source.version_key, inputs.host.options, options.enable)
        request = build_request(source, options, features)
    else:
        features = ()
        request = dict(inputs.artifact.get("request") or {})
    installed: Optional[str] = None
    if install:
        preflight.check_prefix_is_ours(layout.prefix, read_manifest(layout.prefix) is not None)
        if not options.force and source.resolved:
            installed = installed_reason(layout.prefix, request)
    if needs_compiler and installed is None and not compiler_checked:
        preflight.check_build(facts, options.install_deps, options.dry_run, runner)
    build_dir = inputs.env.build_dir
    build_user = None
    if needs_compiler and installed is None:
        build_user = preflight.check_build_user(options.build_user, build_dir)
    return Resolution(
        command=inputs.command,
        options=options,
        facts=facts,
        source=source,
        layout=layout,
        pythons=inputs.pythons,
        host=inputs.host,
        features=features,
        request=request,
        installed=installed,
        templates=load_templates() if install else {},
        cache_dir=inputs.env.cache_dir,
        build_dir=build_dir,
        units_dir=inputs.env.paths.systemd_dir,
        conf_dir=inputs.env.paths.ld_so_conf_dir,
        artifact=inputs.artifact,
        artifact_checksum=inputs.artifact_checksum,
        resolved=tuple(records),
        venvs=inputs.venvs,
        profile_readers=inputs.profile_readers,
        build_user=build_user,
        fetch_policy=inputs.env.fetch,
    )


def check_not_older(version: str, host: HostLibrary, options: Options) -> None:
    """A release older than the system library is refused before anything is downloaded or
    built (exit 6): programs linked to the system library may call functions it lacks."""
    if not version or not host.version or options.allow_abi_loss:
        return
    if loose_version(version) >= loose_version(host.version):
        return
    lacks = added_after(version, host.symbols)
    what = (
        f"it lacks {len(lacks)} public function(s) that {host.path} exports, whatever it is "
        f"built with: {describe(lacks)}"
        if lacks
        else "the catalog cannot tell which of the system library's functions it lacks"
    )
    raise VerifyError(
        f"SQLite {version} is older than the system library ({host.version}, {host.path}): {what}",
        hint=f"install {host.version} or newer (`sqlite-provision versions` lists them), or pass "
        "--allow-abi-loss to install it anyway, at the risk of breaking programs linked to "
        "the system library",
    )


# --- plan ----------------------------------------------------------------------------------------


def build_steps(res: Resolution, staging: Path, beside_prefix: bool) -> List[Step]:
    """Fetch to staged install: what `install` and `build` share."""
    options, source, layout = res.options, res.source, res.layout
    jobs = options.jobs or res.facts.cpus
    era = flags.predict_era(source.version_key)
    predicted = flags.make_build_config(
        era=era,
        prefix=str(layout.prefix),
        version=source.version_key,
        supported=flags.predicted_supported(era, source.version_key),
        env_cflags=options.env_cflags,
        predicted=True,
        features=res.features,
    )
    already, user = res.installed, res.build_user
    return [
        Fetch(source.filename, source.url, source.local, source.checksum, res.cache_dir, already,
              res.fetch_policy),
        InstallCompiler(res.facts.package_manager or "yum", res.facts.compiler_missing, already),
        Extract(source.filename, res.build_dir, already, user),
        Configure(predicted, source.version_key, res.features, options.env_cflags, res.build_dir,
                  already, user),
        Make(jobs, era, res.build_dir, already, user),
        Stage(layout.prefix, staging, source.version, res.request, res.build_dir, beside_prefix,
              already, user),
    ]  # fmt: skip


def build_plan(res: Resolution) -> Plan:
    """The install plan: build from source, or (with --artifact) unpack a prebuilt tree; then
    the same gate, install, activation and verification either way."""
    layout = res.layout
    staging = staging_dir(layout.prefix)
    steps: List[Step] = []
    if res.artifact is not None:
        assert res.source.local is not None and res.artifact_checksum is not None  # noqa: S101
        steps.append(
            UnpackArtifact(res.source.local, res.artifact, res.artifact_checksum, layout.prefix,
                           staging, res.request, res.facts.arch, res.facts.glibc, res.installed)
        )  # fmt: skip
        new_library = staging / artifact_format.TREE / LIBRARY
    else:
        steps += build_steps(res, staging, beside_prefix=True)
        new_library = staged_library(staging, layout.prefix)
    gated = layout.prefix / LIBRARY if res.installed else new_library
    steps += [
        AbiGate(res.host, res.options.allow_abi_loss, gated, res.source.version),
        Install(layout.prefix, res.installed),
    ]
    steps += activation_steps(res)
    return Plan("install", res.source, layout, tuple(steps), res.pythons, res.features,
                res.resolved, profile_readers=res.profile_readers)  # fmt: skip


def activation_steps(res: Resolution) -> List[Step]:
    options, layout, source = res.options, res.layout, res.source
    steps: List[Step] = []
    if layout.current_link is not None:
        steps.append(LinkCurrent(layout.current_link, layout.prefix.name))
    # With `current`, the snippet names no version, so upgrades and rollbacks never rewrite it.
    shown = "" if layout.current_link is not None else source.version
    written = profile_steps(res.templates, layout, shown) + service_steps(
        res.templates, options, layout, res.units_dir, res.facts.systemd_running
    )
    written += venv_steps(res.templates, res.venvs, layout.active_lib_dir)
    steps += written
    steps.append(SmokeTest(res.facts.smoke_tools(), layout.active_lib_dir, layout.profile_file))
    if options.ld_so_conf:
        ld_so_conf = ld_so_conf_step(res.templates, layout, res.conf_dir)
        steps.append(ld_so_conf)
        written.append(ld_so_conf)
    steps.append(Verify(reaches(res), options.min_version, layout.prefix, source.version))
    if layout.activation_record is not None and written:
        steps.append(
            RecordActivation(layout.activation_record, tuple(str(s.path) for s in written))
        )
    steps.append(FindStale(layout.active_lib_dir / "libsqlite3.so.0"))
    return steps


def reaches(res: Resolution) -> Tuple[Reach, ...]:
    """How verification starts each python: every --python as a login shell does, every bound
    venv's python with no environment, and the first python as each unit with a drop-in."""
    lib = res.layout.active_lib_dir
    found = [login_reach(p, lib, res.layout.profile_file) for p in res.pythons]
    found += [venv_reach(venv.python) for venv in res.venvs]
    found += [unit_reach(res.pythons[0], unit_base_name(u), lib) for u in res.options.systemd_units]
    return tuple(found)


def build_artifact_plan(res: Resolution, out: Path) -> Plan:
    """`build --artifact`: the build steps, staged inside the build directory, then packed. The
    ABI gate only warns here; it decides on each host at `install --artifact`."""
    staging = res.build_dir / "stage"
    steps = build_steps(res, staging, beside_prefix=False)
    steps += [
        AbiGate(res.host, True, staged_library(staging, res.layout.prefix)),
        PackArtifact(out, res.layout.prefix, res.facts.arch),
    ]
    return Plan("build", res.source, res.layout, tuple(steps), (), res.features, res.resolved,
                artifact_out=out)  # fmt: skip
