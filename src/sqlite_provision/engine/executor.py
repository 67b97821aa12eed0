"""Runs the steps of a plan: decides whether each one runs (the one place that does), times it,
logs it, tells the progress, and on any failure (an interrupt included) undoes what the run
changed, newest first, then re-raises with the result so far."""

import shutil
import signal
import time
from types import FrameType
from typing import Optional, Sequence

from sqlite_provision.errors import Interrupted, ProvisionError
from sqlite_provision.faultpoints import crash_point
from sqlite_provision.results import Progress, Report, StepRecord
from sqlite_provision.runner import Runner
from sqlite_provision.steps.base import PlannedStep, RunState


def _raise_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Interrupted(signum)


def execute(
    steps: Sequence[PlannedStep],
    report: Report,
    runner: Runner,
    progress: Optional[Progress] = None,
    keep_failed: bool = False,
) -> Report:
    """Run `steps` into `report` (the plan's, with what resolving did already in it)."""
    progress = progress or Progress()
    state = RunState(runner, progress)
    done = 0
    previous_handler = signal.signal(signal.SIGTERM, _raise_sigterm)
    try:
        for index, planned in enumerate(steps, 1):
            done = index
            run_step(planned, index, len(steps), state, report)
        remove_work_dirs(state, keep=False)
        run_success_cleanup(state)
        report.verified = list(state.verified)
        report.stale_processes = list(state.stale)
        for result in state.verified:
            if result.library:
                report.library = result.library
                break
        return report
    except BaseException as exc:
        for later in steps[done:]:
            report.steps.append(StepRecord(later.step.name, "not-run", 0.0, ""))
        report.verified = list(state.verified)
        # Work dirs first: the staging dir sits beside the prefix, and a directory this run
        # created there can only be removed once it is empty again.
        remove_work_dirs(state, keep=keep_failed)
        undo_all(state)
        report.ok = False
        report.changed = False
        if isinstance(exc, ProvisionError):
            report.error = str(exc)
            report.exit_code = exc.exit_code
            exc.partial = report
        raise
    finally:
        report.warnings = list(state.warnings)
        signal.signal(signal.SIGTERM, previous_handler)


def run_step(planned: PlannedStep, index: int, total: int, state: RunState, report: Report) -> None:
    """Run one step, or skip it with its reason, into a record of the report; log and tell."""
    step, log = planned.step, state.runner.log
    description = step.describe()
    state.progress.step_started(index, total, step.name, description)
    log.write(f"== step {step.name}: {description}")
    started = time.monotonic()
    record = StepRecord(step.name, "failed", 0.0, "")
    report.steps.append(record)
    try:
        reason = skip_reason(planned, state)
        if reason:
            record.status, record.detail = "skipped", reason
        else:
            if not step.reversible:
                commit(state)
            crash_point(f"before:{step.name}")
            record.detail = step.run(state)
            crash_point(f"after:{step.name}")
            record.status = "ok"
            record.changed = step.changes_host
            report.changed = report.changed or step.changes_host
            state.changed = report.changed
    except KeyboardInterrupt as exc:
        raise Interrupted(signal.SIGINT) from exc
    except BaseException as exc:
        record.detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise
    finally:
        record.seconds = round(time.monotonic() - started, 3)
        log.write(f"== {step.name} {record.status} ({record.seconds:.2f}s): {record.detail}")
        state.progress.step_ended(record)


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
