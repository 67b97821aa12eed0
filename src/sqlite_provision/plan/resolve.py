"""Under the run lock, after the recovery: for install and build, `latest` from the download page,
the prefix and what is installed there (the installed tree is hashed here, once), and the build's
preconditions, each checked once, before the network where it can be."""

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from sqlite_provision.config import Layout, Options, make_layout
from sqlite_provision.host import preflight
from sqlite_provision.host.build_user import BuildUser
from sqlite_provision.host.rpmdb import installed_package
from sqlite_provision.host.selinux import NO_LABELLING, Labelling, plan_labelling
from sqlite_provision.plan.inputs import Inputs, selinux_root
from sqlite_provision.plan.model import Command
from sqlite_provision.recipe.features import Selected, select
from sqlite_provision.results import StepRecord
from sqlite_provision.runner import Runner
from sqlite_provision.source.resolve import Source, resolve_latest
from sqlite_provision.store.manifest import installed_reason, read_manifest


@dataclass(frozen=True)
class Resolution:
    """Everything an install or build plan is built from: the inputs, and what resolving them
    under the lock found."""

    inputs: Inputs
    source: Source  # the inputs' source, `latest` resolved
    layout: Layout  # the layout of that version
    features: Tuple[Selected, ...]
    request: Dict[str, Any]  # the inputs that define the build, as the manifest records them
    up_to_date: Optional[str]  # why no build is needed: this build is installed and intact
    build_user: Optional[BuildUser] = None  # as root: who runs configure and make
    records: Tuple[StepRecord, ...] = ()  # what resolving did that the report shows
    labelling: Labelling = NO_LABELLING  # SELinux: what the run relabels, the rule it adds


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


def resolve_latest_version(
    options: Options, fetch_page: Callable[[str], str], env_mirror: Optional[str]
) -> Tuple[Source, StepRecord]:
    """`latest` from the download page, and the report's record of it."""
    started = time.monotonic()
    source = resolve_latest(options, fetch_page, env_mirror)
    seconds = round(time.monotonic() - started, 3)
    return source, StepRecord(
        "resolve", "ok", seconds, f"latest is {source.version} ({source.origin})"
    )


def resolve(
    inputs: Inputs,
    options: Options,
    runner: Runner,
    fetch_page: Optional[Callable[[str], str]] = None,
    recovery_records: Tuple[StepRecord, ...] = (),
) -> Resolution:
    """`latest` from the download page (with `fetch_page`; without it, in a dry run, it stays
    unresolved and nothing touches the network), then what is installed and the preconditions
    of a build, each checked once."""
    inputs = named_package_now(inputs, runner)
    source, layout, records = inputs.source, inputs.layout, list(recovery_records)
    compiler_checked = False
    if not source.version_known and fetch_page is not None:
        # Never read the network only to find that the host cannot build.
        preflight.check_build(inputs.facts, options.install_deps, options.dry_run, runner)
        compiler_checked = True
        source, record = resolve_latest_version(options, fetch_page, inputs.env_mirror)
        records.append(record)
        layout = make_layout(options, source.version)
    version = source.version if source.version_known else ""
    preflight.check_not_older(version, inputs.system_lib, options.allow_abi_loss)
    if inputs.from_source:
        features = select(
            options.compat, source.version_key, inputs.system_lib.options, options.enable
        )
        request = build_request(source, options, features)
    elif inputs.artifact is not None:
        features, request = (), dict(inputs.artifact.get("request") or {})
    else:
        features, request = (), rpm_request(layout.prefix, inputs)
    up_to_date = why_up_to_date(inputs, layout, source, request, options.force)
    build_user = None
    if inputs.from_source and up_to_date is None:
        if not compiler_checked:
            preflight.check_build(inputs.facts, options.install_deps, options.dry_run, runner)
        build_user = preflight.check_build_user(options.build_user, inputs.build_dir)
    facts = inputs.facts
    labelling = plan_labelling(inputs.selinux, options.selinux, selinux_root(layout),
                               facts.os.version.split(".")[0],
                               preflight.cannot_install(facts, options.install_deps))  # fmt: skip
    return Resolution(inputs, source, layout, features, request, up_to_date, build_user,
                      tuple(records), labelling)  # fmt: skip


def named_package_now(inputs: Inputs, runner: Runner) -> Inputs:
    """install --rpm-package: is it installed, asked again under the lock (the run that held it
    may have installed it): the plan installs it only if not, and only then removes it on
    failure. One installed meanwhile is checked by rpm -V and its manifest before any use."""
    named = inputs.rpm_package
    if named is None or named.installed is not None:
        return inputs
    now = replace(named, installed=installed_package(runner, named.name))
    return replace(inputs, rpm_package=now)


def why_up_to_date(
    inputs: Inputs, layout: Layout, source: Source, request: Dict[str, Any], force: bool
) -> Optional[str]:
    """Install: the prefix holds no one else's files (exit 3), and why no build is needed (this
    build is installed and intact), or None. Build: None, it always builds."""
    if inputs.command is not Command.INSTALL:
        return None
    manifest = read_manifest(layout.prefix)
    preflight.check_prefix_is_ours(layout.prefix, manifest is not None)
    if inputs.package_name is not None:
        owner = manifest.rpm_package if manifest is not None else None
        preflight.check_prefix_takes_package(layout.prefix, owner, inputs.package_name)
    if force or not source.version_known:
        return None
    return installed_reason(layout.prefix, request)


def rpm_request(prefix: Path, inputs: Inputs) -> Dict[str, Any]:
    """install --rpm or --rpm-package: the request of the tree the package installed, when this
    very package is the prefix's (its manifest names it): then the install is up to date if
    intact."""
    manifest = read_manifest(prefix)
    name = inputs.package_name
    if name is None or manifest is None or manifest.rpm_package != name:
        return {"rpm": inputs.rpm.nevra if inputs.rpm else name}
    return dict(manifest.request)
