"""Every text and JSON the tool prints, from the results of results.py and the errors of
errors.py: the result on stdout (one JSON object with --json), progress and errors on stderr."""

import json
import shlex
import sys
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sqlite_provision.errors import CommandOutput, ProvisionError
from sqlite_provision.results import (
    PlanView,
    ProbeResult,
    Progress,
    ReleaseRow,
    Report,
    RollbackResult,
    StatusReport,
    StepRecord,
    UninstallResult,
    VerifyReport,
)


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2)


# --- install and build ---------------------------------------------------------------------------


def plan(view: PlanView, json_out: bool) -> str:
    """--dry-run: the steps with their exact commands, and the options built in."""
    if json_out:
        return as_json(
            {
                "dry_run": True,
                "changed": False,
                "version": view.version,
                "source": {
                    "url": view.url,
                    "tarball": view.tarball,
                    "checksum": view.checksum,
                    "origin": view.origin,
                },
                "prefix": view.prefix,
                "profile_file": view.profile_file,
                "pythons": view.pythons,
                "features": [{"option": o, "origin": w} for o, w in view.features],
                "steps": [
                    {
                        "name": s.name,
                        "description": s.description,
                        "commands": [shell_line(argv) for argv in s.commands],
                        "skipped": s.skipped,
                    }
                    for s in view.steps
                ],
            }
        )
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


def shell_line(argv: Sequence[str]) -> str:
    """A copy-pasteable shell rendering of argv, as the log writes it."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def brief(argv: Sequence[str]) -> List[str]:
    """argv for a person to read: a script given with -c is shown by its size."""
    return [
        f"<a python script of {len(arg.strip().splitlines())} lines>"
        if index and argv[index - 1] == "-c" and "\n" in arg
        else arg
        for index, arg in enumerate(argv)
    ]


def report(result: Report, json_out: bool) -> str:
    if json_out:
        return as_json(result.to_json())
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


def verify(result: VerifyReport, json_out: bool) -> str:
    if json_out:
        return as_json(result.to_json())
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


def status(result: StatusReport, json_out: bool) -> str:
    if json_out:
        return as_json(result.to_json())
    tools = result.tools
    lines = [
        "OS:            {} ({}{})".format(
            result.os["name"], result.os["id"], ", RHEL family" if result.os["rhel_family"] else ""
        ),
        "root:          {}".format("yes" if result.root else "no"),
        "build tools:   "
        + ", ".join(
            "{} {}".format(name, "yes" if tools[name] else "missing") for name in sorted(tools)
        ),
        "system SQLite: {} {}".format(
            result.system_sqlite["version"] or "?", result.system_sqlite["path"] or "(not found)"
        ),
    ]
    for py in result.pythons:
        lines.append(f"python:        {loads(py)} (without our environment)")
    for py in result.pythons_with_profile:
        lines.append(
            f"               ... and SQLite {py.sqlite_version} from {py.library} after sourcing the snippet"
        )
    installed = ", ".join(row.version for row in result.installed) or "none"
    lines.append(f"installed:     {installed} under {result.prefix_root}")
    for row in result.installed:
        if row.selinux_type:
            lines.append(f"  {row.version} SELinux type: {row.selinux_type}")
        if row.features:
            lines.append(f"  {row.version} built with:")
            for option, origin in row.features:
                lines.append(f"    {option:<28} {origin}")
    lines.append("current:       {}".format(result.current or "(no current link)"))
    if result.prefix:
        lines.append(
            "prefix:        {} ({})".format(
                result.prefix["path"], result.prefix["version"] or "not ours"
            )
        )
    for venv in result.venvs:
        lines.append(
            "venv:          {} ({})".format(
                venv["path"], "bound" if venv["bound"] else "NOT bound: " + str(venv["reason"])
            )
        )
    lines.append(
        "processes:     {} running process(es) still map another libsqlite3{}".format(
            len(result.stale_processes),
            f" ({result.unreadable_processes} could not be read)"
            if result.unreadable_processes
            else "",
        )
    )
    for proc in result.stale_processes:
        unit = f" [{proc.unit}]" if proc.unit else ""
        lines.append(f"  pid {proc.pid}{unit}: {proc.command[:80]} -> {proc.library}")
    lines += ["warning: " + text for text in result.selinux.get("warnings", [])]
    profile = result.profile_file
    lines.append(
        "profile:       {} ({})".format(
            profile["path"],
            "managed by sqlite-provision"
            if profile["managed"]
            else ("present, not ours" if profile["present"] else "absent"),
        )
    )
    return "\n".join(lines)


def versions(rows: Sequence[ReleaseRow], json_out: bool) -> str:
    if json_out:
        return as_json([asdict(row) for row in rows])
    lines = ["{:<10} {:<11} {:<9} {}".format("VERSION", "RELEASED", "HASH", "NOTE")]
    for row in rows:
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


def rollback(result: RollbackResult, json_out: bool) -> str:
    if json_out:
        return as_json(result.to_json())
    lines = [f"Rolled back: current now points at {result.version} (was {result.from_version})."]
    lines += [f"  {loads(r)}" for r in result.verified]
    return "\n".join(lines)


def uninstall(result: UninstallResult, json_out: bool) -> str:
    if json_out:
        return as_json(result.to_json())
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


# --- errors ------------------------------------------------------------------------------------


def failure(exc: ProvisionError, json_out: bool) -> Tuple[Optional[str], str]:
    """(stdout, stderr) for a failed command: the error, its fix, the log's last lines when a
    command's own output explains the failure (a CommandOutput), and the log's path, on stderr;
    with --json the one JSON object (the result so far, with the error) on stdout. A failed
    verify still lists each python, as a passing one does."""
    err = [f"error: {exc.message}"]
    if exc.hint:
        err.append(f"  fix: {exc.hint}")
    if isinstance(exc, CommandOutput) and exc.tail:
        err.append("--- last lines of the log ---")
        err.append(exc.tail.rstrip("\n"))
    if exc.log_path is not None:
        err.append(f"full log: {exc.log_path}")
    out: Optional[str] = None
    partial = exc.partial
    if json_out:
        data: Dict[str, Any] = dict(partial.to_json()) if partial is not None else {}
        data.update(
            {
                "ok": False,
                "changed": False,
                "error": exc.message,
                "hint": exc.hint,
                "exit_code": exc.exit_code,
                "log_file": str(exc.log_path) if exc.log_path is not None else None,
            }
        )
        out = as_json(data)
    elif isinstance(partial, VerifyReport):
        out = verify(partial, False)
    return out, "\n".join(err)


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
