"""The pure `build_plan`: from a Resolution to the steps of an install or a build, with no I/O
(no file, no command, no environment), so that the same Plan feeds --dry-run and the executor.
The plan decides which steps are skipped, and why (this build is installed and intact; gcc and
make are present; there is no package tool to smoke-test)."""

import dataclasses
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision.config import unit_base_name
from sqlite_provision.host.pythons import Reach, login_reach, unit_reach, venv_reach
from sqlite_provision.plan.model import Command, Plan
from sqlite_provision.plan.resolve import Resolution
from sqlite_provision.recipe import flags
from sqlite_provision.steps.activation import (
    RecordActivation,
    ld_so_conf_step,
    profile_steps,
    service_steps,
    venv_steps,
)
from sqlite_provision.steps.artifact import PackArtifact, UnpackArtifact
from sqlite_provision.steps.base import PlannedStep, Step, planned
from sqlite_provision.steps.build import (
    Configure,
    Extract,
    Fetch,
    InstallCompiler,
    Make,
    ProbeConfigure,
    Stage,
    staged_library,
)
from sqlite_provision.steps.gate import AbiGate, FindStale, SmokeTest, Verify
from sqlite_provision.steps.install import Install, LinkCurrent
from sqlite_provision.steps.rpm import (
    CheckPackageTree,
    CheckRpm,
    InstallRpm,
    InstallRpmPackage,
    PackRpm,
)
from sqlite_provision.steps.selinux import AddEquivalence, InstallSELinuxTools, Relabel
from sqlite_provision.store import artifact as artifact_format
from sqlite_provision.store.recovery import staging_dir

LIBRARY = Path("lib") / "libsqlite3.so.0"
COMPILER_PRESENT = "gcc and make are present"
NO_PACKAGE_TOOLS = "no rpm, dnf or yum on this host"


def predicted_config(res: Resolution) -> flags.BuildConfig:
    """The configure the plan shows and runs, from the release's era; ProbeConfigure checks the
    tree takes it before anything is built."""
    version = res.source.version_key
    era = flags.predict_era(version)
    return flags.make_build_config(
        era=era,
        prefix=str(res.layout.prefix),
        version=version,
        supported=flags.predicted_supported(era, version),
        env_cflags=res.inputs.choices.env_cflags,
        predicted=True,
        features=res.features,
    )


def build_steps(res: Resolution, staging: Path, beside_prefix: bool) -> List[PlannedStep]:
    """Fetch to staged install: what `install` and `build` share."""
    inputs, source, user = res.inputs, res.source, res.build_user
    facts, cflags, work = inputs.facts, inputs.choices.env_cflags, inputs.build_dir
    config = predicted_config(res)
    compiler = InstallCompiler(facts.package_manager or "yum", facts.compiler_missing)
    steps = planned([
        Fetch(source.filename, source.url, source.local, source.checksum, inputs.cache_dir,
              inputs.fetch_policy),
        compiler,
        Extract(source.filename, work, user),
        ProbeConfigure(config, source.version_key, res.features, cflags, work, user),
        Configure(config, work, user),
        Make(inputs.choices.jobs, config.era, work, user),
        Stage(res.layout.prefix, staging, source.version, res.request, config, work,
              beside_prefix, user),
    ], res.up_to_date)  # fmt: skip
    if not facts.compiler_missing:
        steps[1] = PlannedStep(compiler, COMPILER_PRESENT)
    return steps


def build_plan(res: Resolution) -> Plan:
    """The plan of the command resolved: an install, or (`build`) an artifact."""
    if res.inputs.command is Command.BUILD:
        return artifact_plan(res)
    return install_plan(res)


def install_plan(res: Resolution) -> Plan:
    """Build from source, or (with --artifact) unpack a prebuilt tree; then the same gate,
    install, activation and verification either way."""
    inputs, layout, source = res.inputs, res.layout, res.source
    staging = staging_dir(layout.prefix)
    steps: List[PlannedStep] = []
    if inputs.rpm is not None:
        return rpm_install_plan(res)
    if inputs.rpm_package is not None:
        return named_rpm_install_plan(res)
    if inputs.artifact is not None:
        assert source.local is not None and source.checksum is not None  # noqa: S101
        unpack = UnpackArtifact(source.local, inputs.artifact, source.checksum, layout.prefix,
                                staging, res.request, inputs.facts.arch, inputs.facts.glibc)  # fmt: skip
        steps.append(PlannedStep(unpack, res.up_to_date))
        new_library = staging / artifact_format.TREE / LIBRARY
    else:
        steps += build_steps(res, staging, beside_prefix=True)
        new_library = staged_library(staging, layout.prefix)
    gated = layout.prefix / LIBRARY if res.up_to_date else new_library
    allow_loss = inputs.choices.allow_abi_loss
    steps.append(PlannedStep(AbiGate(inputs.system_lib, allow_loss, gated, source.version)))
    steps += selinux_tools(res)
    steps.append(PlannedStep(Install(layout.prefix), res.up_to_date))
    steps += selinux_steps(res, res.up_to_date)
    steps += activation_steps(res)
    return install_plan_of(res, steps)


def rpm_install_plan(res: Resolution) -> Plan:
    """install --rpm: the package installed by dnf, yum or rpm straight into the prefix (no
    compiler, no staging), checked by rpm -V; then the gate, the activation and the
    verification of any install. A failed gate or verification removes the package again."""
    inputs, source = res.inputs, res.source
    package = inputs.rpm
    assert package is not None and source.local is not None  # noqa: S101 - install --rpm
    tool = inputs.facts.package_manager
    steps = [PlannedStep(InstallRpm(source.local, package.nevra, package.name, tool),
                         res.up_to_date)]  # fmt: skip
    steps.append(PlannedStep(CheckRpm(package.name), res.up_to_date))
    return install_plan_of(res, steps + package_activation(res, res.up_to_date))


def named_rpm_install_plan(res: Resolution) -> Plan:
    """install --rpm-package NAME: dnf or yum installs it from the enabled repositories unless
    it is installed already (no install step then: the run never removes a package it did not
    install); rpm -V and the manifest check it, then what install --rpm does."""
    named, tool = res.inputs.rpm_package, res.inputs.facts.package_manager
    assert named is not None  # noqa: S101 - install --rpm-package
    steps: List[Step] = []
    if named.installed is None:
        assert tool is not None  # noqa: S101 - plan/inputs.py refuses a host without one
        steps.append(InstallRpmPackage(named.name, tool))
    steps += [CheckRpm(named.name), CheckPackageTree(res.layout.prefix, named.name)]
    # rpm labels what it installs by the policy: only a missing equivalence rule calls for a
    # relabel of a package someone else installed.
    labelled = None if res.labelling.add_rule else res.up_to_date
    return install_plan_of(res, planned(steps) + package_activation(res, labelled))


def package_activation(res: Resolution, labelled: Optional[str]) -> List[PlannedStep]:
    """After a package's install: the ABI gate on its library, SELinux (skipped for `labelled`:
    why the tree's labels are right already), the activation and the verification."""
    inputs, source = res.inputs, res.source
    gated = res.layout.prefix / LIBRARY
    gate = AbiGate(inputs.system_lib, inputs.choices.allow_abi_loss, gated, source.version)
    return [PlannedStep(gate), *selinux_tools(res), *selinux_steps(res, labelled),
            *activation_steps(res)]  # fmt: skip


def install_plan_of(res: Resolution, steps: List[PlannedStep]) -> Plan:
    inputs, layout, source = res.inputs, res.layout, res.source
    return Plan(
        Command.INSTALL, tuple(steps), f"SQLite {source.version} from {source.origin}",
        source.version, layout.prefix, source=source,
        library=layout.active_lib_dir / LIBRARY.name, profile_file=layout.profile_file,
        pythons=inputs.pythons, features=res.features, records=res.records,
        profile_readers=inputs.profile_readers,
    )  # fmt: skip


def selinux_tools(res: Resolution) -> List[PlannedStep]:
    """restorecon (and semanage) where SELinux is enabled and they are missing."""
    packages = res.labelling.packages
    if not packages:
        return []
    return planned([InstallSELinuxTools(res.inputs.facts.package_manager or "yum", packages)])


def selinux_steps(res: Resolution, labelled: Optional[str]) -> List[PlannedStep]:
    """Once the tree is in place, before anything uses it: the prefix root's equivalence to
    /usr where the policy would not give lib/ a library type, then the tree relabelled (both
    skipped where `labelled` says why they are not needed: an install that is up to date)."""
    labelling = res.labelling
    if not labelling.relabel:
        return []
    steps: List[Step] = []
    if labelling.add_rule and labelling.root is not None:
        steps.append(AddEquivalence(labelling.root))
    steps.append(Relabel(res.layout.prefix))
    return planned(steps, labelled)


def activation_steps(res: Resolution) -> List[PlannedStep]:
    inputs, layout, choices = res.inputs, res.layout, res.inputs.choices
    steps: List[Step] = []
    if layout.current_link is not None:
        steps.append(LinkCurrent(layout.current_link, layout.prefix.name))
    # With `current`, the snippet names no version, so upgrades and rollbacks never rewrite it.
    shown = "" if layout.current_link is not None else res.source.version
    written = profile_steps(inputs.templates, layout, shown) + service_steps(
        inputs.templates, choices.systemd_units, choices.env_file, layout, inputs.units_dir,
        inputs.facts.systemd_running,
    )  # fmt: skip
    written += venv_steps(inputs.templates, inputs.venvs, layout.active_lib_dir)
    relabel = res.labelling.relabel
    written = [dataclasses.replace(s, relabel=relabel) for s in written]
    steps += written
    tools = inputs.facts.smoke_tools()
    smoke = SmokeTest(tools, layout.active_lib_dir, layout.profile_file)
    steps.append(smoke)
    if choices.ld_so_conf:
        ld_so_conf = ld_so_conf_step(inputs.templates, layout, inputs.conf_dir)
        ld_so_conf = dataclasses.replace(ld_so_conf, relabel=relabel)
        steps.append(ld_so_conf)
        written.append(ld_so_conf)
    steps.append(Verify(reaches(res), choices.min_version, layout.prefix, res.source.version))
    rule = tuple(sorted((res.labelling.recorded_rule or {}).items()))
    if layout.activation_record is not None and (written or rule):
        files = tuple(str(s.path) for s in written)
        steps.append(RecordActivation(layout.activation_record, files, rule))
    steps.append(FindStale(layout.active_lib_dir / LIBRARY.name))
    return [PlannedStep(s, NO_PACKAGE_TOOLS if s is smoke and not tools else None) for s in steps]


def reaches(res: Resolution) -> Tuple[Reach, ...]:
    """How verification starts each python: every --python as a login shell does, every bound
    venv's python with no environment, and the first python as each unit with a drop-in."""
    lib, inputs = res.layout.active_lib_dir, res.inputs
    found = [login_reach(p, lib, res.layout.profile_file) for p in inputs.pythons]
    found += [venv_reach(venv.python) for venv in inputs.venvs]
    units = inputs.choices.systemd_units
    found += [unit_reach(inputs.pythons[0], unit_base_name(u), lib) for u in units]
    return tuple(found)


def artifact_plan(res: Resolution) -> Plan:
    """`build --artifact` or `build --rpm`: the build steps, staged inside the build directory,
    then packed. The ABI gate only warns here; it decides on each host at install."""
    inputs, out = res.inputs, res.inputs.artifact_out
    staging = inputs.build_dir / "stage"
    steps = build_steps(res, staging, beside_prefix=False)
    steps += planned([
        AbiGate(inputs.system_lib, True, staged_library(staging, res.layout.prefix)),
        pack_step(res),
    ])  # fmt: skip
    return Plan(Command.BUILD, tuple(steps), f"SQLite {res.source.version} from "
                f"{res.source.origin}", res.source.version, res.layout.prefix, source=res.source,
                features=res.features, records=res.records, artifact_out=out)  # fmt: skip


def pack_step(res: Resolution) -> Step:
    """What packs the staged tree: the artifact (--artifact) or the RPM (--rpm, rpmbuild as the
    build user in a directory beside the build directory, which is root's again by then)."""
    inputs = res.inputs
    if inputs.rpm_out is not None:
        return PackRpm(
            inputs.rpm_out, res.layout.prefix, inputs.facts.arch, rpm_work_dir(inputs.build_dir),
            res.build_user, inputs.sign_key, inputs.source_date_epoch, inputs.gnupg_home,
            res.source.version if res.source.version_known else "",
        )  # fmt: skip
    assert inputs.artifact_out is not None  # noqa: S101 - `build` requires one
    return PackArtifact(inputs.artifact_out, res.layout.prefix, inputs.facts.arch)


def rpm_work_dir(build_dir: Path) -> Path:
    return build_dir.parent / (build_dir.name + "-rpm")
