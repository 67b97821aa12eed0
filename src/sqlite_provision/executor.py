"""Runs a Plan: re-checks each step just before it runs, times it, logs it, shows progress, and on
any failure (an interrupt included) undoes what the run changed, newest first, then re-raises."""

from __future__ import annotations

import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, Dict, List, Optional

from sqlite_provision.errors import Interrupted, ProvisionError
from sqlite_provision.facts import Facts
from sqlite_provision.options import Options
from sqlite_provision.plan import Plan
from sqlite_provision.runner import Log, Runner
from sqlite_provision.steps import Context


@dataclass
class StepRecord:
    name: str
    status: str  # ok | skipped | failed | planned | not-run
    seconds: float
    detail: str
    changed: bool = False  # this step changed the host


@dataclass
class Report:
    changed: bool
    version: str
    prefix: str
    library: Optional[str]
    profile_file: Optional[str]
    log_file: Optional[str]
    verified: List[Dict[str, Any]] = field(default_factory=list)
    steps: List[StepRecord] = field(default_factory=list)
    dry_run: bool = False
    ok: bool = True
    error: Optional[str] = None
    exit_code: int = 0

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["steps"] = [asdict(s) for s in self.steps]
        return data


class Progress:
    """Step lines on stderr: one when a step starts, one when it ends, with its seconds."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total = total
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def start(self, index: int, name: str, description: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"[{index}/{self.total}] {name}: {description}\n")
            sys.stderr.flush()

    def end(self, record: StepRecord) -> None:
        if not self.quiet:
            sys.stderr.write(f"      {record.status} ({record.seconds:.1f}s) {record.detail}\n")
            sys.stderr.flush()


def _raise_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Interrupted(signum)


def new_report(plan: Plan, log: Optional[Log]) -> Report:
    layout = plan.layout
    return Report(
        changed=False,
        version=plan.source.version,
        prefix=str(layout.prefix),
        library=str(layout.active_lib_dir / "libsqlite3.so.0"),
        profile_file=str(layout.profile_file) if layout.profile_file else None,
        log_file=str(log.path) if log is not None and log.path is not None else None,
    )


def execute(plan: Plan, options: Options, facts: Facts, log: Log, quiet: bool = False) -> Report:
    report = new_report(plan, log)
    ctx = Context(
        options=options,
        facts=facts,
        source=plan.source,
        layout=plan.layout,
        pythons=plan.pythons,
        jobs=plan.jobs,
        request=plan.request,
        runner=Runner(log),
        log=log,
    )
    progress = Progress(len(plan.steps), quiet)
    previous_handler = signal.signal(signal.SIGTERM, _raise_sigterm)
    try:
        for index, step in enumerate(plan.steps, 1):
            progress.start(index, step.name, step.describe())
            log.write(f"== step {step.name}: {step.describe()}")
            started = time.monotonic()
            record = StepRecord(step.name, "failed", 0.0, "")
            report.steps.append(record)
            try:
                reason = step.is_satisfied(ctx)
                if reason:
                    record.status, record.detail = "skipped", reason
                else:
                    record.detail = step.run(ctx)
                    record.status = "ok"
                    record.changed = step.changes_host
                    report.changed = report.changed or step.changes_host
                    ctx.changed = report.changed
            except KeyboardInterrupt as exc:
                raise Interrupted(signal.SIGINT) from exc
            except BaseException as exc:
                record.detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise
            finally:
                record.seconds = round(time.monotonic() - started, 3)
                log.write(
                    f"== {step.name} {record.status} ({record.seconds:.2f}s): {record.detail}"
                )
                progress.end(record)
        remove_work_dirs(ctx, keep=False)
        run_success_cleanup(ctx)
        report.verified = [r.to_json() for r in ctx.verified]
        for r in ctx.verified:
            if r.library:
                report.library = r.library
                break
        return report
    except BaseException as exc:
        for later in plan.steps[len(report.steps) :]:
            report.steps.append(StepRecord(later.name, "not-run", 0.0, ""))
        report.verified = [r.to_json() for r in ctx.verified]
        # Work dirs first: the staging dir sits beside the prefix, and a directory this run
        # created there can only be removed once it is empty again.
        remove_work_dirs(ctx, keep=options.keep_failed)
        rollback(ctx)
        report.ok = False
        report.changed = False
        if isinstance(exc, ProvisionError):
            report.error = str(exc)
            report.exit_code = exc.exit_code
            exc.report = report  # type: ignore[attr-defined]
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def rollback(ctx: Context) -> None:
    """Undo in reverse order. Signals are held off so that a second Ctrl-C cannot cut it short."""
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        while ctx.undo:
            description, action = ctx.undo.pop()
            try:
                action()
                ctx.log.write(f"rollback: {description}")
            except Exception as exc:  # keep undoing the rest; report what could not be undone
                ctx.log.write(f"rollback FAILED: {description}: {exc}")
                sys.stderr.write(f"warning: rollback could not {description}: {exc}\n")
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def remove_work_dirs(ctx: Context, keep: bool) -> None:
    for directory in ctx.work_dirs:
        if keep:
            sys.stderr.write(f"--keep-failed: kept {directory} for debugging\n")
            ctx.log.write(f"kept {directory} (--keep-failed)")
        else:
            shutil.rmtree(str(directory), ignore_errors=True)
    ctx.work_dirs.clear()


def run_success_cleanup(ctx: Context) -> None:
    """What only a successful run may discard, such as the previous build kept for the undo."""
    while ctx.cleanup:
        action = ctx.cleanup.pop()
        try:
            action()
        except Exception as exc:
            ctx.log.write(f"cleanup failed: {exc}")
