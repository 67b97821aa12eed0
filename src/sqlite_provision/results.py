"""What the commands produce, as plain data: the only thing output.py reads.

Each result knows its JSON form (the keys are a documented interface: see the README); the text
form is output.py's business. `Progress` is how a run tells what it is doing while it runs.
"""

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

Json = Dict[str, Any]


@dataclass
class StepRecord:
    name: str
    status: str  # ok | skipped | failed | not-run
    seconds: float
    detail: str
    changed: bool = False  # this step changed the host


@dataclass
class ProbeResult:
    """What one python loaded, and whether that is what was asked for."""

    python: str
    python_version: Optional[str]
    sqlite_version: Optional[str]
    library: Optional[str]
    ok: bool
    problem: Optional[str] = None
    compile_options: List[str] = field(default_factory=list)
    reached: Optional[str] = None  # how it was started: a login shell, a bound venv, a unit...

    def to_json(self) -> Json:
        data = asdict(self)
        data.pop("compile_options")
        return data


@dataclass
class StaleProcess:
    """A running process that maps another libsqlite3 than the provisioned one: restart it."""

    pid: int
    command: str
    library: str
    unit: Optional[str] = None  # its systemd unit, from its cgroup


@dataclass
class Report:
    """The result of `install` (and of `build`, with `artifact`)."""

    changed: bool
    version: str
    prefix: str
    library: Optional[str]
    profile_file: Optional[str]
    log_file: Optional[str]
    verified: List[ProbeResult] = field(default_factory=list)
    steps: List[StepRecord] = field(default_factory=list)
    ok: bool = True
    error: Optional[str] = None
    exit_code: int = 0
    artifact: Optional[str] = None  # `build --artifact`: the file written
    stale_processes: List[StaleProcess] = field(default_factory=list)
    profile_readers: List[str] = field(default_factory=list)  # what reads the snippet
    warnings: List[str] = field(default_factory=list)  # each said once, as it happened

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["changed"] = self.changed
        data["version"] = self.version
        data["prefix"] = self.prefix
        data["library"] = self.library
        data["profile_file"] = self.profile_file
        data["log_file"] = self.log_file
        data["verified"] = [r.to_json() for r in self.verified]
        data["steps"] = [asdict(s) for s in self.steps]
        data["ok"] = self.ok
        data["error"] = self.error
        data["exit_code"] = self.exit_code
        data["stale_processes"] = [asdict(p) for p in self.stale_processes]
        data["warnings"] = list(self.warnings)
        if self.artifact is not None:
            data["artifact"] = self.artifact
            data["sha256_file"] = self.artifact + ".sha256"
        return data


@dataclass
class StepView:
    name: str
    description: str
    commands: List[List[str]]  # the argv lists, exactly as the run executes them (and logs them)
    skipped: Optional[str] = None  # why the plan skips it (then it runs no command)


@dataclass
class PlanView:
    """What --dry-run shows: the plan's steps with their exact commands."""

    command: str  # install | build | rollback | uninstall
    summary: str  # what the plan does, in one line
    version: Optional[str]
    url: Optional[str]
    tarball: Optional[str]
    checksum: Optional[str]  # "sha3_256:<hex>"
    origin: str
    prefix: str
    profile_file: Optional[str]
    pythons: List[str]
    features: List[Tuple[str, str]]  # (option, where it came from)
    steps: List[StepView]


@dataclass
class VerifyReport:
    ok: bool
    prefix: str
    version: Optional[str]
    profile_file: Optional[str]
    verified: List[ProbeResult]

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["ok"] = self.ok
        data["changed"] = False
        data["prefix"] = self.prefix
        data["version"] = self.version
        data["profile_file"] = self.profile_file
        data["verified"] = [r.to_json() for r in self.verified]
        return data


@dataclass
class InstalledVersion:
    version: str
    prefix: str
    features: List[List[str]]  # [option, where it came from]
    compile_options: List[str]
    selinux_type: Optional[str] = None  # the library's SELinux type, where it has a label


@dataclass
class StatusReport:
    os: Json  # id, version, name, rhel_family
    root: bool
    tools: Dict[str, Optional[str]]
    system_sqlite: Json  # path, version (and error)
    pythons: List[ProbeResult]  # without our environment
    pythons_with_profile: List[ProbeResult]  # after sourcing the snippet
    prefix_root: str
    installed: List[InstalledVersion]
    current: Optional[str]
    prefix: Optional[Json]  # path, version: with --prefix
    profile_file: Json  # path, present, managed
    venvs: List[Json] = field(default_factory=list)  # path, bound, reason, what it loads
    stale_processes: List[StaleProcess] = field(default_factory=list)
    unreadable_processes: int = 0  # processes whose maps this user cannot read
    selinux: Json = field(default_factory=dict)  # where enabled: enabled, warnings

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["os"] = self.os
        data["root"] = self.root
        data["tools"] = self.tools
        data["system_sqlite"] = self.system_sqlite
        data["pythons"] = [r.to_json() for r in self.pythons]
        data["pythons_with_profile"] = [r.to_json() for r in self.pythons_with_profile]
        data["prefix_root"] = self.prefix_root
        data["installed"] = [installed_json(row) for row in self.installed]
        data["current"] = self.current
        data["prefix"] = self.prefix
        data["profile_file"] = self.profile_file
        data["venvs"] = self.venvs
        data["stale_processes"] = [asdict(p) for p in self.stale_processes]
        data["unreadable_processes"] = self.unreadable_processes
        if self.selinux:
            data["selinux"] = self.selinux
        return data


def installed_json(row: InstalledVersion) -> Json:
    """An installed version; its SELinux type only where its library has a label."""
    data = asdict(row)
    if row.selinux_type is None:
        del data["selinux_type"]
    return data


@dataclass
class ReleaseRow:
    version: str
    released: str
    url: str
    sha3_256: Optional[str]
    sha256: Optional[str]
    withdrawn: bool
    default: bool
    note: str


@dataclass
class RollbackResult:
    from_version: str  # what `current` pointed at
    version: str
    verified: List[ProbeResult]

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["ok"] = True
        data["changed"] = True
        data["from"] = self.from_version
        data["version"] = self.version
        data["verified"] = [r.to_json() for r in self.verified]
        return data


@dataclass
class UninstallResult:
    removed_versions: List[str] = field(default_factory=list)
    removed_files: int = 0
    kept_foreign: List[str] = field(default_factory=list)  # files we did not install, left alone
    changed_since_install: List[str] = field(default_factory=list)
    removed_activation: List[str] = field(default_factory=list)

    def to_json(self) -> Json:
        data: Json = OrderedDict()
        data["changed"] = bool(self.removed_versions or self.removed_activation)
        data["removed_versions"] = self.removed_versions
        data["removed_files"] = self.removed_files
        data["kept_foreign"] = self.kept_foreign
        data["changed_since_install"] = self.changed_since_install
        data["removed_activation"] = self.removed_activation
        data["ok"] = True
        return data


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
