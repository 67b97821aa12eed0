"""build_plan: (options, facts, source) -> Plan. Pure: no network, no writes.

The same Plan is printed by --dry-run and run by the executor, so what --dry-run shows is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sqlite_provision import activate, activation, build
from sqlite_provision.checks import AbiGate, SmokeTest, Verify
from sqlite_provision.facts import Facts
from sqlite_provision.features import Selected, select
from sqlite_provision.hostlib import HostLibrary
from sqlite_provision.install_steps import Install, LinkCurrent
from sqlite_provision.options import Layout, Options, cache_dir, make_layout
from sqlite_provision.runner import quote_argv
from sqlite_provision.source import Source
from sqlite_provision.steps import Configure, Extract, Fetch, InstallCompiler, Make, Stage, Step


@dataclass(frozen=True)
class Plan:
    source: Source
    layout: Layout
    steps: Tuple[Step, ...]
    pythons: Tuple[str, ...]
    jobs: int
    request: Dict[str, Any]

    def to_json(self) -> List[Dict[str, Any]]:
        return [
            {
                "name": step.name,
                "description": step.describe(),
                "commands": [quote_argv(argv) for argv in step.commands()],
            }
            for step in self.steps
        ]


def build_request(
    source: Source, options: Options, features: Tuple[Selected, ...]
) -> Dict[str, Any]:
    """The inputs that define a build; the manifest records them so a re-run can compare."""
    checksum = source.checksum
    return {
        "version": source.version,
        "source_hash": f"{checksum.algorithm}:{checksum.hexdigest}" if checksum else None,
        "cflags": options.env_cflags.strip(),
        "features": sorted(s.feature.option for s in features),
    }


def build_plan(
    options: Options,
    facts: Facts,
    source: Source,
    pythons: Tuple[str, ...],
    cache: Optional[Path] = None,
    host: Optional[HostLibrary] = None,
    artifact_metadata: Optional[Dict[str, Any]] = None,
) -> Plan:
    """The install plan: build from source, or (with --artifact) unpack a prebuilt tree; then
    the same gate, install, activation and verification either way."""
    layout = make_layout(options, source.version)
    activate.check_safe_path(layout.prefix, "--prefix")
    host = host or HostLibrary(None, None, problem="not probed")
    jobs = options.jobs or facts.cpus
    if artifact_metadata is not None and source.local is not None:
        from sqlite_provision.artifact_steps import UnpackArtifact

        sha = options.sha256 or None
        steps: List[Step] = [UnpackArtifact(source.local, artifact_metadata, sha)]
        request = dict(artifact_metadata.get("request") or {})
    else:
        steps, request = build_steps(options, facts, source, layout, host, jobs, cache)
    steps += [AbiGate(host, options.allow_abi_loss), Install(layout.prefix)]
    steps += activation_steps(options, facts, source, layout, pythons)
    return Plan(
        source=source, layout=layout, steps=tuple(steps), pythons=pythons, jobs=jobs,
        request=request,
    )  # fmt: skip


def build_steps(
    options: Options,
    facts: Facts,
    source: Source,
    layout: Layout,
    host: HostLibrary,
    jobs: int,
    cache: Optional[Path],
    beside_prefix: bool = True,
) -> Tuple[List[Step], Dict[str, Any]]:
    """Fetch to staged install: what `install` and `build` share."""
    features = select(options.compat, source.version_key, host.options, options.enable)
    era = build.predict_era(source.version_key)
    predicted = build.make_build_config(
        era=era,
        prefix=str(layout.prefix),
        version=source.version_key,
        supported=build.predicted_supported(era, source.version_key),
        env_cflags=options.env_cflags,
        predicted=True,
        features=features,
    )
    steps: List[Step] = [
        Fetch(source, cache or cache_dir()),
        InstallCompiler(facts.package_manager or "yum", facts.compiler_missing),
        Extract(source.filename),
        Configure(predicted, features),
        Make(jobs, era),
        Stage(layout.prefix, beside_prefix),
    ]
    return steps, build_request(source, options, features)


def activation_steps(
    options: Options, facts: Facts, source: Source, layout: Layout, pythons: Tuple[str, ...]
) -> List[Step]:
    steps: List[Step] = []
    if layout.current_link is not None:
        steps.append(LinkCurrent(layout.current_link, layout.prefix.name))
    # With `current`, the snippet names no version, so upgrades and rollbacks never rewrite it.
    shown = "" if layout.current_link is not None else source.version
    written: List[Step] = activation.profile_steps(layout, shown)
    written += activation.service_steps(options, layout)
    steps += written
    steps.append(SmokeTest(facts.smoke_tools()))
    ld_so_conf = activation.ld_so_conf_step(options, layout)
    if ld_so_conf is not None:
        steps.append(ld_so_conf)
        written.append(ld_so_conf)
    steps.append(Verify(pythons, options.min_version))
    if layout.activation_record is not None and written:
        files = tuple(str(getattr(step, "path")) for step in written)  # noqa: B009
        steps.append(activation.RecordActivation(layout.activation_record, files))
    return steps


def build_artifact_plan(
    options: Options,
    facts: Facts,
    source: Source,
    out: Path,
    host: Optional[HostLibrary] = None,
) -> Plan:
    """`build --artifact`: the build steps, staged in a temporary directory, then packed. The ABI
    gate only warns here; it decides on each host at `install --artifact`."""
    from sqlite_provision.artifact_steps import PackArtifact

    layout = make_layout(options, source.version)
    activate.check_safe_path(layout.prefix, "--prefix")
    host = host or HostLibrary(None, None, problem="not probed")
    jobs = options.jobs or facts.cpus
    steps, request = build_steps(
        options, facts, source, layout, host, jobs, None, beside_prefix=False
    )
    steps += [AbiGate(host, allow_loss=True), PackArtifact(out)]
    return Plan(
        source=source, layout=layout, steps=tuple(steps), pythons=(), jobs=jobs, request=request
    )
