"""Under the run lock, after the recovery: what a rollback or an uninstall acts on, read from
what is installed (the links, the manifests, the activation record), each refusal (exit 3)
before anything changes."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from sqlite_provision.config import ACTIVATION_RECORD
from sqlite_provision.plan.inputs import RevertInputs
from sqlite_provision.results import StepRecord
from sqlite_provision.store.installs import (
    Removal,
    activation_files,
    dangling_links,
    plan_removal,
    previous_version,
    versions_to_remove,
)
from sqlite_provision.store.records import is_managed, read_record, rule_added_by_tool


@dataclass(frozen=True)
class RollbackResolution:
    inputs: RevertInputs
    current: str  # what `current` names ("" for nothing)
    previous: str  # what `previous` names: where `current` goes
    version: str  # the release installed there
    records: Tuple[StepRecord, ...] = ()  # what resolving did that the report shows


def resolve_rollback(
    inputs: RevertInputs, recovery_records: Tuple[StepRecord, ...] = ()
) -> RollbackResolution:
    current, previous, manifest = previous_version(inputs.prefix_root)
    return RollbackResolution(inputs, current, previous, manifest.version, recovery_records)


@dataclass(frozen=True)
class UninstallResolution:
    inputs: RevertInputs
    removals: Tuple[Removal, ...]  # the versions to remove, as they are now
    links: Tuple[Tuple[Path, str], ...]  # `current`, `previous` that would name nothing
    hooks: Tuple[Path, ...]  # the venv hooks to remove (those still ours)
    forget: Tuple[str, ...]  # the hooks to take off the record
    activation: Tuple[Path, ...]  # --all: the activation files still ours
    record: bool  # --all: the record of activation files is there, to remove
    tidy: bool  # versions go or --all: the prefix root goes too, once empty
    records: Tuple[StepRecord, ...] = ()
    selinux_rule: Optional[Path] = None  # --all: the root of the SELinux rule this tool added


def resolve_uninstall(
    inputs: RevertInputs, recovery_records: Tuple[StepRecord, ...] = ()
) -> UninstallResolution:
    """The versions named (exit 3 for one not installed by this tool, or the current one
    without --all), and what the installs wrote outside them that goes too."""
    root = inputs.prefix_root
    rows = versions_to_remove(root, inputs.versions, inputs.remove_all)
    record = root / ACTIVATION_RECORD
    listed = set(read_record(record))
    everything = inputs.remove_all
    hooks = tuple(h for h in inputs.hooks if is_managed(h))
    activation = activation_files(root, inputs.profile_file) if everything else []
    return UninstallResolution(
        inputs=inputs,
        removals=tuple(plan_removal(row) for row in rows),
        links=tuple(dangling_links(root, rows)) if rows or everything else (),
        hooks=hooks,
        forget=() if everything else tuple(str(h) for h in inputs.hooks if str(h) in listed),
        activation=tuple(path for path in activation if path not in hooks),
        record=everything and record.is_file(),
        tidy=(bool(rows) or everything) and root.is_dir(),
        records=recovery_records,
        selinux_rule=rule_added_by_tool(record) if everything else None,
    )
