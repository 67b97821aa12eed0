"""Every text and JSON the tool prints, from the `Outcome`s of results.py and the errors of
errors.py: the result on stdout (with --json, one object: the envelope `ok`, `changed`,
`exit_code` and `error` around the result's fields; this is the only place that writes JSON),
progress and errors on stderr."""

import json
import sys
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sqlite_provision.errors import CommandOutput, ProvisionError
from sqlite_provision.results import (
    BuiltRpm,
    Failure,
    Json,
    Outcome,
    PlanView,
    ProbeResult,
    Progress,
    Releases,
    Report,
    RollbackResult,
    StatusReport,
    StepRecord,
    UninstallResult,
    VenvBinding,
    VerifyReport,
    shell_line,
)

# --- the envelope ------------------------------------------------------------------------------


def render(outcome: "Outcome[Any]", json_out: bool) -> Tuple[Optional[str], Optional[str]]:
    """(stdout, stderr) of a command's outcome: with --json one JSON object on stdout whatever
    happened; else the result's text, or the error on stderr (a failed verify still lists each
    python on stdout, as a passing one does)."""
    err = failure_text(outcome.failure) if outcome.failure is not None else None
    if json_out:
        return as_json(outcome), err
    result = outcome.result
    if outcome.failure is not None and not isinstance(result, VerifyReport):
        return None, err
    return (TEXT[type(result)](result) if result is not None else None), err


def as_json(outcome: "Outcome[Any]") -> str:
    """The one JSON object of a command: the envelope, then the result's fields; a failure
    adds its message, hint and log file to the result so far."""
    data: Json = OrderedDict()
    data["ok"] = outcome.ok
    data["changed"] = outcome.changed
    data["exit_code"] = outcome.exit_code
    data["error"] = None
    if outcome.result is not None:
        data.update(outcome.result.to_json())
    failure = outcome.failure
    if failure is not None:
        data.update(error=failure.message, hint=failure.hint, log_file=failure.log_file)
    return json.dumps(data, indent=2)


def failed(exc: ProvisionError) -> "Outcome[Any]":
    """The outcome of a command that raised `exc`: its failure, and the result so far."""
    failure = Failure(
        message=exc.message,
        hint=exc.hint,
        exit_code=exc.exit_code,
        log_file=str(exc.log_path) if exc.log_path is not None else None,
        tail=exc.tail if isinstance(exc, CommandOutput) else "",
    )
    return Outcome(exc.partial, failure)


def failure_text(failure: Failure) -> str:
    """The error and its fix, the log's last lines when a command's own output explains the
    failure (a CommandOutput), and the log's path."""
    err = [f"error: {failure.message}"]
    if failure.hint:
        err.append(f"  fix: {failure.hint}")
    if failure.tail:
        err.append("--- last lines of the log ---")
        err.append(failure.tail.rstrip("\n"))
    if failure.log_file is not None:
        err.append(f"full log: {failure.log_file}")
    return "\n".join(err)


# --- install and build ---------------------------------------------------------------------------


def plan(view: PlanView) -> str:
    """--dry-run: the steps with their exact commands, and the options built in."""
    lines = [
        f"sqlite-provision {view.command} --dry-run: {view.summary}",
        "nothing will be downloaded or written; the real run does these steps:",
    ]
    for index, step in enumerate(view.steps, 1):
        lines.append(f"{index:>2}. {step.name}: {step.description}")
        if step.skipped:
            lines.append(f"      skipped: {step.skipped}")
        for argv in step.commands:
            lines.append(f"      $ {shell_line(brief(argv))}")
    if view.features:
        lines.append("SQLite options built in, and why:")
        for option, origin in view.features:
            lines.append(f"      {option:<28} {origin}")
    lines.append("Steps already satisfied at run time are skipped with their reason.")
    return "\n".join(lines)


def brief(argv: Sequence[str]) -> List[str]:
    """argv for a person to read: a script given with -c is shown by its size."""
    return [
        f"<a python script of {len(arg.strip().splitlines())} lines>"
        if index and argv[index - 1] == "-c" and "\n" in arg
        else arg
        for index, arg in enumerate(argv)
    ]


def report(result: Report) -> str:
    if result.rpm is not None:
        return rpm_report(result, result.rpm)
    if result.artifact is not None:
        return "\n".join([
            f"Built SQLite {result.version} for {result.prefix} into {result.artifact}",
            f"  checksum: {result.artifact}.sha256",
            f"  install it on each host: sqlite-provision install --artifact {result.artifact}",
            f"  log: {result.log_file}",
        ])  # fmt: skip
    lines = []
    if result.changed:
        lines.append(f"SQLite {result.version} installed in {result.prefix} and verified.")
        for step in result.steps:
            if step.changed:
                lines.append(f"  changed: {step.detail}")
    else:
        lines.append(
            f"Nothing to change: SQLite {result.version} in {result.prefix} is installed and "
            "verified."
        )
    lines += [f"  {loads(r)}" for r in result.verified]
    if result.profile_file:
        lines.append(profile_note(result.profile_file, result.profile_readers))
    lines.append(
        "  services, cron and sudo do not read /etc/profile.d: --venv, --systemd-unit or "
        "--env-file reach them (README: 'Who sees the new library')."
    )
    if result.stale_processes:
        lines.append(
            f"  {len(result.stale_processes)} running process(es) still use another "
            "libsqlite3; `sqlite-provision status` lists them (restart them to use the new one)."
        )
    if result.log_file:
        lines.append(f"  log: {result.log_file}")
    return "\n".join(lines)


def profile_note(profile: str, readers: Sequence[str]) -> str:
    """Who gets the snippet: the truth, not a promise (a snippet outside /etc/profile.d is read
    by nothing until a start-up file sources it)."""
    if any(reader.startswith("login shells") for reader in readers):
        return f"  new login shells get it from {profile}; in this shell run: . {profile}"
    if readers:
        return (
            f"  {', '.join(readers)} source(s) {profile}: new shells get it; in this shell "
            f"run: . {profile}"
        )
    return (
        f"  nothing reads {profile} yet: add `. {profile}` to ~/.profile (login shells) or "
        f"~/.bashrc; in this shell run: . {profile}"
    )


def loads(result: ProbeResult) -> str:
    return f"{result.python} (Python {result.python_version}) loads SQLite {result.sqlite_version} from {result.library}"


# --- verify, status, versions ------------------------------------------------------------------


def verify(result: VerifyReport) -> str:
    return "\n".join(
        "{} {} (Python {}): SQLite {} from {}{}".format(
            "ok  " if r.ok else "FAIL",
            r.python,
            r.python_version,
            r.sqlite_version,
            r.library,
            "" if r.ok else " -- " + str(r.problem),
        )
        for r in result.verified
    )


def status(result: StatusReport) -> str:
    system = result.system_sqlite
    lines = [
        "OS:            {} ({}{})".format(
            result.os.name, result.os.id, ", RHEL family" if result.os.rhel_family else ""
        ),
        "root:          {}".format("yes" if result.root else "no"),
        "build tools:   "
        + ", ".join(
            "{} {}".format(name, "yes" if path else "missing")
            for name, path in sorted(result.tools)
        ),
        "system SQLite: {} {}".format(system.version or "?", system.path or "(not found)"),
    ]
    for py in result.pythons:
        lines.append(f"python:        {loads(py)} (without our environment)")
    for py in result.pythons_with_profile:
        lines.append(
            f"               ... and SQLite {py.sqlite_version} from {py.library} after sourcing the snippet"
        )
    lines += installed_lines(result)
    lines += [venv_line(venv) for venv in result.venvs]
    lines += process_lines(result)
    profile = result.profile_file
    lines.append(
        "profile:       {} ({})".format(
            profile.path,
            "managed by sqlite-provision"
            if profile.managed
            else ("present, not ours" if profile.present else "absent"),
        )
    )
    return "\n".join(lines)


def installed_lines(result: StatusReport) -> List[str]:
    """The versions under the prefix root, each with its options, `current` and --prefix."""
    installed = ", ".join(row.version for row in result.installed) or "none"
    lines = [f"installed:     {installed} under {result.prefix_root}"]
    for row in result.installed:
        if row.rpm:
            lines.append(f"  {row.version} is RPM-owned: {row.rpm} (remove it with uninstall)")
        for problem in row.damaged:
            lines.append(f"  {row.version} DAMAGED (rpm -V): {problem}")
        if row.selinux_type:
            lines.append(f"  {row.version} SELinux type: {row.selinux_type}")
        if row.features:
            lines.append(f"  {row.version} built with:")
            for option, origin in row.features:
                lines.append(f"    {option:<28} {origin}")
    lines.append("current:       {}".format(result.current or "(no current link)"))
    if result.prefix:
        lines.append(
            "prefix:        {} ({})".format(result.prefix.path, result.prefix.version or "not ours")
        )
    return lines


def venv_line(venv: VenvBinding) -> str:
    return "venv:          {} ({})".format(
        venv.path, "bound" if venv.bound else "NOT bound: " + str(venv.reason)
    )


def process_lines(result: StatusReport) -> List[str]:
    lines = [
        "processes:     {} running process(es) still map another libsqlite3{}".format(
            len(result.stale_processes),
            f" ({result.unreadable_processes} could not be read)"
            if result.unreadable_processes
            else "",
        )
    ]
    for proc in result.stale_processes:
        unit = f" [{proc.unit}]" if proc.unit else ""
        lines.append(f"  pid {proc.pid}{unit}: {proc.command[:80]} -> {proc.library}")
    if result.selinux is not None:
        lines += ["warning: " + text for text in result.selinux.warnings]
    return lines


def versions(releases: Releases) -> str:
    lines = ["{:<10} {:<11} {:<9} {}".format("VERSION", "RELEASED", "HASH", "NOTE")]
    for row in releases.rows:
        flags = []
        if row.default:
            flags.append("default")
        if row.withdrawn:
            flags.append("WITHDRAWN upstream")
        hash_kind = "sha3-256" if row.sha3_256 else ("sha256" if row.sha256 else "none")
        note = "; ".join(flags + ([row.note] if row.note else []))
        lines.append(f"{row.version:<10} {row.released:<11} {hash_kind:<9} {note}".rstrip())
    return "\n".join(lines)


# --- rollback and uninstall ----------------------------------------------------------------------


def rollback(result: RollbackResult) -> str:
    lines = [f"Rolled back: current now points at {result.version} (was {result.from_version})."]
    lines += [f"  {loads(r)}" for r in result.verified]
    return "\n".join(lines)


def uninstall(result: UninstallResult) -> str:
    lines = [
        "Removed SQLite {} ({} files).".format(
            ", ".join(result.removed_versions), result.removed_files
        )
    ]
    lines += [f"  removed {path}" for path in result.removed_activation]
    lines += [f"  kept {path}: not installed by sqlite-provision" for path in result.kept_foreign]
    lines += [
        f"  note: {path} had changed since the install" for path in result.changed_since_install
    ]
    return "\n".join(lines)


# The text of each result, by its type.
TEXT: Dict[type, Callable[[Any], str]] = {
    PlanView: plan,
    Report: report,
    VerifyReport: verify,
    StatusReport: status,
    Releases: versions,
    RollbackResult: rollback,
    UninstallResult: uninstall,
}


# --- progress on stderr --------------------------------------------------------------------------


class StderrProgress(Progress):
    """Step lines on stderr, one when a step starts and one when it ends; warnings; a download
    meter that rewrites its line, on a terminal only."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._meter_at = 0.0

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def step_started(self, index: int, total: int, name: str, description: str) -> None:
        self._line(f"[{index}/{total}] {name}: {description}")

    def step_ended(self, record: StepRecord) -> None:
        self._line(f"      {record.status} ({record.seconds:.1f}s) {record.detail}")

    def warning(self, text: str) -> None:
        self._line(f"warning: {text}")

    def note(self, text: str) -> None:
        self._line(text)

    def download(self, name: str, done: int, total: Optional[int], finished: bool) -> None:
        if not self.stream.isatty():
            return
        now = time.monotonic()
        if not finished and done and now - self._meter_at < 0.1:
            return
        self._meter_at = now
        if total:
            percent = min(100, done * 100 // total)
            text = f"\r{name}: {mib(done)} / {mib(total)} ({percent:3d}%)"
        else:
            text = f"\r{name}: {mib(done)}"
        self.stream.write(text)
        if finished:
            self.stream.write("\n")
        self.stream.flush()


def mib(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB"


def rpm_report(result: Report, built: BuiltRpm) -> str:
    """`build --rpm`: the package's path first, alone on its line, for scripts."""
    signed = f", signed with {built.signed_with}" if built.signed_with else ""
    return "\n".join([
        str(built.rpm),
        f"  {built.name}-{built.version}-{built.release}.{built.arch}: SQLite {result.version} "
        f"for {result.prefix}{signed}",
        f"  checksum: {built.rpm}.sha256 (sha256 {built.sha256})",
        f"  provides: {', '.join(built.provides)}",
        f"  install it on each host: sqlite-provision install --rpm {built.rpm}",
        f"  log: {result.log_file}",
    ])  # fmt: skip
