"""The pure plans of `rollback` and `uninstall`, from their resolutions, with no I/O: the same
Plan feeds --dry-run and the executor, as for install. And what an uninstall reports, which its
resolution already knows (the files to remove were read under the lock)."""

from typing import List

from sqlite_provision.config import ACTIVATION_RECORD, CURRENT_LINK_NAME
from sqlite_provision.plan.model import Command, Plan
from sqlite_provision.plan.resolve_revert import RollbackResolution, UninstallResolution
from sqlite_provision.results import UninstallResult
from sqlite_provision.steps.base import Step, planned
from sqlite_provision.steps.gate import Verify
from sqlite_provision.steps.install import SwitchToPrevious
from sqlite_provision.steps.remove import (
    ForgetActivation,
    RemoveActivation,
    RemoveEmptyRoot,
    RemoveLink,
    RemoveVersion,
)
from sqlite_provision.steps.rpm import RemoveRpm
from sqlite_provision.steps.selinux import RemoveEquivalence
from sqlite_provision.store.records import Command as Followup
from sqlite_provision.store.records import ld_so_conf_followup, systemd_followup


def rollback_plan(res: RollbackResolution) -> Plan:
    """Switch `current` and `previous`, then verify each python loads the version switched to;
    a failed verification is undone by the executor (exit 6)."""
    inputs, root = res.inputs, res.inputs.prefix_root
    verify = Verify(
        inputs.reaches,
        inputs.min_version,
        root / res.previous,
        res.version,
        failure=f"rollback to {res.version} failed verification",
        after=f"; `current` was left at {res.current}",
        hint="check --min-version, or install the version you need",
    )
    steps = planned([SwitchToPrevious(root, res.current, res.previous), verify])
    return Plan(
        Command.ROLLBACK, tuple(steps),
        f"`current` from {res.current or 'nothing'} back to {res.previous}", res.version,
        root / res.previous, library=root / CURRENT_LINK_NAME / "lib" / "libsqlite3.so.0",
        profile_file=inputs.profile_file, records=res.records,
    )  # fmt: skip


def uninstall_plan(res: UninstallResolution) -> Plan:
    """What the installs wrote outside the versions first (hooks, links, activation files, the
    record), each undone on failure; then each version's files, which cannot be; then the
    prefix root if it is empty."""
    root = res.inputs.prefix_root
    steps: List[Step] = [RemoveActivation(hook, name="unbind") for hook in res.hooks]
    if res.forget:
        steps.append(ForgetActivation(root / ACTIVATION_RECORD, res.forget))
    steps += [RemoveLink(link, target) for link, target in res.links]
    steps += deactivation_steps(res)
    if res.selinux_rule is not None:
        steps.append(RemoveEquivalence(res.selinux_rule))
    if res.record:
        steps.append(RemoveActivation(root / ACTIVATION_RECORD, marked=False, name="record"))
    tool = res.inputs.package_manager
    steps += [
        RemoveRpm(r.rpm, r.version, r.prefix, tool) if r.rpm
        else RemoveVersion(r.prefix, r.version, r.files)
        for r in res.removals
    ]  # fmt: skip
    if res.tidy:
        steps.append(RemoveEmptyRoot(root))
    versions = ", ".join(r.version for r in res.removals) or "no version"
    return Plan(Command.UNINSTALL, tuple(planned(steps)), f"remove {versions} under {root}",
                None, root, records=res.records)  # fmt: skip


def deactivation_steps(res: UninstallResolution) -> List[Step]:
    """Each activation file still ours; daemon-reload after the last drop-in, ldconfig after
    the loader's file, where the real directories changed."""
    inputs = res.inputs
    units = [p for p in res.activation if p.parent.parent == inputs.units_dir]
    steps: List[Step] = []
    for path in res.activation:
        after: List[Followup] = []
        if units and path == units[-1]:
            after += systemd_followup(inputs.units_dir, inputs.systemd_running)
        if path.parent == inputs.conf_dir:
            after += ld_so_conf_followup(inputs.conf_dir)
        steps.append(RemoveActivation(path, tuple(after)))
    return steps


def uninstall_result(res: UninstallResolution) -> UninstallResult:
    """What an uninstall that ran its plan did: its resolution read it under the lock."""
    removed = [str(hook) for hook in res.hooks]
    removed += [str(link) for link, _ in res.links]
    removed += [str(path) for path in res.activation]
    return UninstallResult(
        removed_versions=tuple(r.version for r in res.removals),
        removed_files=sum(len(r.files) for r in res.removals),
        kept_foreign=tuple(path for r in res.removals for path in r.foreign),
        changed_since_install=tuple(path for r in res.removals for path in r.changed),
        removed_activation=tuple(removed),
        removed_rpms=tuple(r.rpm for r in res.removals if r.rpm),
    )
