"""What the commands produce, as frozen, typed data: the only thing output.py reads.

Every command answers one `Outcome` (like pipx's `OperationResult`): the envelope, `ok`,
`changed` and `exit_code`, around the command's result, or, when it failed, around its
`Failure` and the result so far. Each result knows the fields of its JSON form (a documented
interface: see the README); output.py alone turns an `Outcome` into text or JSON. `Progress` is
how a run tells what it is doing while it runs.
"""

import shlex
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Generic, Optional, Sequence, Tuple, TypeVar, Union

Json = Dict[str, Any]


@dataclass(frozen=True)
class StepRecord:
    name: str
    status: str  # ok | skipped | failed | not-run
    seconds: float
    detail: str
    changed: bool = False  # this step changed the host


@dataclass(frozen=True)
class ProbeResult:
    """What one python loaded, and whether that is what was asked for."""

    python: str
    python_version: Optional[str]
    sqlite_version: Optional[str]
    library: Optional[str]
    ok: bool
    problem: Optional[str] = None
    compile_options: Tuple[str, ...] = ()
    reached: Optional[str] = None  # how it was started: a login shell, a bound venv, a unit...

    def to_json(self) -> Json:
        data = asdict(self)
        data.pop("compile_options")
        return data


@dataclass(frozen=True)
class StaleProcess:
    """A running process that maps another libsqlite3 than the provisioned one: restart it."""

    pid: int
    command: str
    library: str
    unit: Optional[str] = None  # its systemd unit, from its cgroup


@dataclass(frozen=True)
class BuiltRpm:
    """`build --rpm`: the package written (store/rpm.py) and what rpm says it provides and
    requires."""

    rpm: Path
    name: str
    version: str
    release: str
    arch: str
    sha256: str
    provides: Tuple[str, ...]
    requires: Tuple[str, ...]
    signed_with: Optional[str]

    def to_json(self) -> Dict[str, Any]:
        return {
            "rpm": str(self.rpm),
            "name": self.name,
            "version": self.version,
            "release": self.release,
            "arch": self.arch,
            "sha256": self.sha256,
            "provides": list(self.provides),
            "requires": list(self.requires),
            "signed_with": self.signed_with,
        }


@dataclass(frozen=True)
class Report:
    """The result of `install` (and of `build`, with `artifact`), made once by the executor
    from the plan's (`Plan.new_report`) and what the run did."""

    changed: bool
    version: str
    prefix: str
    library: Optional[str]
    profile_file: Optional[str]
    log_file: Optional[str]
    verified: Tuple[ProbeResult, ...] = ()
    steps: Tuple[StepRecord, ...] = ()
    artifact: Optional[str] = None  # `build --artifact`: the file written
    rpm: Optional[BuiltRpm] = None  # `build --rpm`: the package written
    stale_processes: Tuple[StaleProcess, ...] = ()
    profile_readers: Tuple[str, ...] = ()  # what reads the snippet
    warnings: Tuple[str, ...] = ()  # each said once, as it happened

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["version"] = self.version
        data["prefix"] = self.prefix
        data["library"] = self.library
        data["profile_file"] = self.profile_file
        data["log_file"] = self.log_file
        data["verified"] = [r.to_json() for r in self.verified]
        data["steps"] = [asdict(s) for s in self.steps]
        data["stale_processes"] = [asdict(p) for p in self.stale_processes]
        data["warnings"] = list(self.warnings)
        if self.artifact is not None:
            data["artifact"] = self.artifact
            data["sha256_file"] = self.artifact + ".sha256"
        if self.rpm is not None:
            data.update(self.rpm.to_json())
            data["version"] = self.version  # the package's version is SQLite's
            data["sha256_file"] = str(self.rpm.rpm) + ".sha256"
        return data


@dataclass(frozen=True)
class StepView:
    name: str
    description: str
    commands: Tuple[Tuple[str, ...], ...]  # the argv lists, exactly as the run executes them
    skipped: Optional[str] = None  # why the plan skips it (then it runs no command)


@dataclass(frozen=True)
class PlanView:
    """What --dry-run shows: the plan's steps with their exact commands. It changes nothing."""

    command: str  # install | build | rollback | uninstall
    summary: str  # what the plan does, in one line
    version: Optional[str]
    url: Optional[str]
    tarball: Optional[str]
    checksum: Optional[str]  # "sha3_256:<hex>"
    origin: str
    prefix: str
    profile_file: Optional[str]
    pythons: Tuple[str, ...]
    features: Tuple[Tuple[str, str], ...]  # (option, where it came from)
    steps: Tuple[StepView, ...]
    changed = False

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["dry_run"] = True
        data["version"] = self.version
        data["source"] = {
            "url": self.url,
            "tarball": self.tarball,
            "checksum": self.checksum,
            "origin": self.origin,
        }
        data["prefix"] = self.prefix
        data["profile_file"] = self.profile_file
        data["pythons"] = list(self.pythons)
        data["features"] = [{"option": o, "origin": w} for o, w in self.features]
        data["steps"] = [
            {
                "name": s.name,
                "description": s.description,
                "commands": [shell_line(argv) for argv in s.commands],
                "skipped": s.skipped,
            }
            for s in self.steps
        ]
        return data


def shell_line(argv: Sequence[str]) -> str:
    """A copy-pasteable shell rendering of argv, as the log writes it."""
    return " ".join(shlex.quote(str(a)) for a in argv)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    prefix: str
    version: Optional[str]
    profile_file: Optional[str]
    verified: Tuple[ProbeResult, ...]
    changed = False

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["prefix"] = self.prefix
        data["version"] = self.version
        data["profile_file"] = self.profile_file
        data["verified"] = [r.to_json() for r in self.verified]
        return data


@dataclass(frozen=True)
class InstalledVersion:
    version: str
    prefix: str
    features: Tuple[Tuple[str, str], ...]  # (option, where it came from)
    compile_options: Tuple[str, ...]
    selinux_type: Optional[str] = None  # the library's SELinux type, where it has a label
    rpm: Optional[str] = None  # the package that owns it (install --rpm), else None
    damaged: Tuple[str, ...] = ()  # what rpm -V says of an RPM-owned version's files


@dataclass(frozen=True)
class HostOs:
    id: str
    version: str
    name: str
    rhel_family: bool


@dataclass(frozen=True)
class SystemSqlite:
    """The system libsqlite3: where the loader finds it, and its version (or why unread)."""

    path: Optional[str]
    version: Optional[str] = None
    error: Optional[str] = None

    def to_json(self) -> Json:
        data: Json = OrderedDict([("path", self.path), ("version", self.version)])
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class PrefixState:
    """--prefix: the path, and the version whose manifest is there (None: not ours)."""

    path: str
    version: Optional[str]


@dataclass(frozen=True)
class ProfileState:
    path: str
    present: bool
    managed: bool  # written by this tool


@dataclass(frozen=True)
class VenvBinding:
    """Whether a venv's python, started with no environment, loads the provisioned library;
    `loads` is None when the venv could not be read (then `reason` says why)."""

    path: str
    bound: bool
    reason: Optional[str]
    hook: Optional[str] = None
    loads: Optional[ProbeResult] = None

    def to_json(self) -> Json:
        data: Json = OrderedDict([("path", self.path), ("bound", self.bound)])
        data["reason"] = self.reason
        if self.loads is not None:
            data["hook"] = self.hook
            data["python_version"] = self.loads.python_version
            data["sqlite_version"] = self.loads.sqlite_version
            data["library"] = self.loads.library
        return data


@dataclass(frozen=True)
class StatusReport:
    os: HostOs
    root: bool
    tools: Tuple[Tuple[str, Optional[str]], ...]  # (gcc | make | yum | dnf, its path or None)
    system_sqlite: SystemSqlite
    pythons: Tuple[ProbeResult, ...]  # without our environment
    pythons_with_profile: Tuple[ProbeResult, ...]  # after sourcing the snippet
    prefix_root: str
    installed: Tuple[InstalledVersion, ...]
    current: Optional[str]
    prefix: Optional[PrefixState]  # with --prefix
    profile_file: ProfileState
    venvs: Tuple[VenvBinding, ...] = ()
    stale_processes: Tuple[StaleProcess, ...] = ()
    unreadable_processes: int = 0  # processes whose maps this user cannot read
    selinux: Optional["SelinuxState"] = None  # where SELinux is enabled
    changed = False

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["os"] = asdict(self.os)
        data["root"] = self.root
        data["tools"] = dict(self.tools)
        data["system_sqlite"] = self.system_sqlite.to_json()
        data["pythons"] = [r.to_json() for r in self.pythons]
        data["pythons_with_profile"] = [r.to_json() for r in self.pythons_with_profile]
        data["prefix_root"] = self.prefix_root
        data["installed"] = [installed_json(row) for row in self.installed]
        data["current"] = self.current
        data["prefix"] = asdict(self.prefix) if self.prefix is not None else None
        data["profile_file"] = asdict(self.profile_file)
        data["venvs"] = [venv.to_json() for venv in self.venvs]
        data["stale_processes"] = [asdict(p) for p in self.stale_processes]
        data["unreadable_processes"] = self.unreadable_processes
        if self.selinux is not None:
            data["selinux"] = OrderedDict(
                [("enabled", self.selinux.enabled), ("warnings", list(self.selinux.warnings))]
            )
        return data


@dataclass(frozen=True)
class SelinuxState:
    """SELinux on an enabled host: a warning for each library whose type is not the policy's
    default for its path."""

    enabled: bool
    warnings: Tuple[str, ...] = ()


def installed_json(row: InstalledVersion) -> Json:
    """An installed version; its SELinux type only where its library has a label."""
    data = asdict(row)
    if row.selinux_type is None:
        del data["selinux_type"]
    data["damaged"] = list(row.damaged)
    return data


@dataclass(frozen=True)
class ReleaseRow:
    version: str
    released: str
    url: str
    sha3_256: Optional[str]
    sha256: Optional[str]
    withdrawn: bool
    default: bool
    note: str


@dataclass(frozen=True)
class Releases:
    """`versions`: the releases of the built-in catalog, newest first."""

    rows: Tuple[ReleaseRow, ...]
    changed = False

    def to_json(self) -> Json:
        return {"releases": [asdict(row) for row in self.rows]}


@dataclass(frozen=True)
class RollbackResult:
    from_version: str  # what `current` pointed at
    version: str
    verified: Tuple[ProbeResult, ...]
    changed = True

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["from"] = self.from_version
        data["version"] = self.version
        data["verified"] = [r.to_json() for r in self.verified]
        return data


@dataclass(frozen=True)
class UninstallResult:
    removed_versions: Tuple[str, ...] = ()
    removed_files: int = 0
    kept_foreign: Tuple[str, ...] = ()  # files we did not install, left alone
    changed_since_install: Tuple[str, ...] = ()
    removed_activation: Tuple[str, ...] = ()
    removed_rpms: Tuple[str, ...] = ()  # the packages removed with dnf, yum or rpm

    @property
    def changed(self) -> bool:
        return bool(self.removed_versions or self.removed_activation)

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["removed_versions"] = list(self.removed_versions)
        data["removed_files"] = self.removed_files
        data["kept_foreign"] = list(self.kept_foreign)
        data["changed_since_install"] = list(self.changed_since_install)
        data["removed_activation"] = list(self.removed_activation)
        data["removed_rpms"] = list(self.removed_rpms)
        return data


# What a command returns; a failure carries the same, as far as it got.
Result = Union[
    Report, PlanView, VerifyReport, StatusReport, Releases, RollbackResult, UninstallResult
]
R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class Failure:
    """What the envelope says of an error (errors.ProvisionError, or click's usage error)."""

    message: str
    hint: Optional[str]
    exit_code: int
    log_file: Optional[str] = None
    tail: str = ""  # the log's last lines, when a command's own output explains the failure


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """The one answer of every command: `ok`, `changed` and `exit_code` around its result, or
    around its failure and the result so far (`result`, None if it got nowhere)."""

    result: Optional[R]
    failure: Optional[Failure] = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def changed(self) -> bool:
        """A failed run was undone: it changed nothing."""
        return self.ok and self.result is not None and self.result.changed

    @property
    def exit_code(self) -> int:
        return self.failure.exit_code if self.failure is not None else 0


class Progress:
    """What a run tells while it runs. This one says nothing; output.py's prints to stderr."""

    def step_started(self, index: int, total: int, name: str, description: str) -> None:
        pass

    def step_ended(self, record: StepRecord) -> None:
        pass

    def warning(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def download(self, name: str, done: int, total: Optional[int], finished: bool) -> None:
        pass
