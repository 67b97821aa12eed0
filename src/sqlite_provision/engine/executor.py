"""Runs the steps of a plan: decides whether each one runs (the one place that does), times it,
logs it, tells the progress, and on any failure (an interrupt included) undoes what the run
changed, newest first, then re-raises with the result so far."""

import shutil
import signal
import time
from dataclasses import replace
from types import FrameType
from typing import List, Optional, Sequence

from sqlite_provision.errors import Interrupted, ProvisionError
from sqlite_provision.faultpoints import crash_point
from sqlite_provision.results import Progress, Report, StepRecord
from sqlite_provision.runner import Runner
from sqlite_provision.steps.base import PlannedStep, RunState


def _raise_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Interrupted(signum)


def execute(
    steps: Sequence[PlannedStep],
    base: Report,
    runner: Runner,
    progress: Optional[Progress] = None,
    keep_failed: bool = False,
) -> Report:
    """Run `steps`; the report is `base` (the plan's, with what resolving did already in it)
    with what the run did, made once at the end. A failure is raised again carrying the
    report so far (`partial`), with the run undone."""
    progress = progress or Progress()
    state = RunState(runner, progress)
    records = list(base.steps)
    previous_handler = signal.signal(signal.SIGTERM, _raise_sigterm)
    try:
        changed = base.changed
        for index, planned in enumerate(steps, 1):
            if run_step(planned, index, len(steps), state, records).status == "ok":
                changed = changed or records[-1].changed
                state.changed = changed
        remove_work_dirs(state, keep=False)
        run_success_cleanup(state)
        return finished(base, records, state, changed)
    except BaseException as exc:
        ran = len(records) - len(base.steps)
        records += [StepRecord(later.step.name, "not-run", 0.0, "") for later in steps[ran:]]
        # Work dirs first: the staging dir sits beside the prefix, and a directory this run
        # created there can only be removed once it is empty again.
        remove_work_dirs(state, keep=keep_failed)
        undo_all(state)
        if isinstance(exc, ProvisionError):  # undone: it changed nothing
            raise exc.with_context(partial=partial(base, records, state)) from exc.__cause__
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def finished(base: Report, records: List[StepRecord], state: RunState, changed: bool) -> Report:
    """A run's report: the plan's, each step's record, what it verified, found and warned."""
    library = next((r.library for r in state.verified if r.library), None)
    return replace(
        base,
        changed=changed,
        library=library or base.library,
        steps=tuple(records),
        verified=tuple(state.verified),
        stale_processes=tuple(state.stale),
        warnings=tuple(state.warnings),
        rpm=state.rpm,
    )


def partial(base: Report, records: List[StepRecord], state: RunState) -> Report:
    """A failed run's report, once it was undone: it changed nothing."""
    return replace(
        base,
        changed=False,
        steps=tuple(records),
        verified=tuple(state.verified),
        warnings=tuple(state.warnings),
    )


def run_step(
    planned: PlannedStep, index: int, total: int, state: RunState, records: List[StepRecord]
) -> StepRecord:
    """Run one step, or skip it with its reason, into its record (added to `records` even if
    it fails); log and tell."""
    step, log = planned.step, state.runner.log
    description = step.describe()
    state.progress.step_started(index, total, step.name, description)
    log.write(f"== step {step.name}: {description}")
    started = time.monotonic()
    status, detail, changed = "failed", "", False
    try:
        reason = skip_reason(planned, state)
        if reason:
            status, detail = "skipped", reason
        else:
            if not step.reversible:
                commit(state)
            crash_point(f"before:{step.name}")
            detail = step.run(state)
            crash_point(f"after:{step.name}")
            status, changed = "ok", step.changes_host
    except KeyboardInterrupt as exc:
        raise Interrupted(signal.SIGINT) from exc
    except BaseException as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise
    finally:
        record = StepRecord(
            step.name, status, round(time.monotonic() - started, 3), detail, changed
        )
        records.append(record)
        log.write(f"== {step.name} {record.status} ({record.seconds:.2f}s): {record.detail}")
        state.progress.step_ended(record)
    return record


def skip_reason(planned: PlannedStep, state: RunState) -> Optional[str]:
    """Whether a step is skipped, and why; the one place that decides it. The plan's reason
    first (what resolving found), then the run's (a check that proves a change, in a run that
    changed nothing), then the host's (what the step makes is there already)."""
    step = planned.step
    if planned.skip:
        return planned.skip
    if step.unless_changed and not state.changed:
        return step.unless_changed
    return step.is_satisfied(state)


def commit(state: RunState) -> None:
    """Before a step that cannot be undone: what the run changed so far is kept, since putting
    it back around a half-done irreversible step would leave the host worse (a snippet naming
    a half-removed tree). From here on the run rolls forward; a failure is finished by the next
    run."""
    for description, _ in state.undo:
        state.runner.log.write(f"kept (a step that cannot be undone follows): {description}")
    state.undo.clear()


def undo_all(state: RunState) -> None:
    """Undo in reverse order. Signals are held off so that a second Ctrl-C cannot cut it short."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while state.undo:
            description, action = state.undo.pop()
            try:
                action()
                state.runner.log.write(f"undone: {description}")
            except Exception as exc:  # keep undoing the rest; report what could not be undone
                state.runner.log.write(f"undo FAILED: {description}: {exc}")
                state.progress.warning(f"undo could not {description}: {exc}")
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def remove_work_dirs(state: RunState, keep: bool) -> None:
    for directory in state.work_dirs:
        if keep:
            state.progress.note(f"--keep-failed: kept {directory} for debugging")
            state.runner.log.write(f"kept {directory} (--keep-failed)")
        else:
            shutil.rmtree(str(directory), ignore_errors=True)
    state.work_dirs.clear()


def run_success_cleanup(state: RunState) -> None:
    """What only a successful run may discard, such as the previous build kept for the undo."""
    while state.cleanup:
        action = state.cleanup.pop()
        try:
            action()
        except Exception as exc:
            state.runner.log.write(f"cleanup failed: {exc}")
