"""Layer 3: engine.executor.execute with real steps and a real Log in tmp_path.

The test steps are small frozen dataclasses, like the tool's own: they change real files and
register undo actions that put them back. No runner is needed, so none is faked. The tool's own
WriteProfile and LinkCurrent steps are run the same way, followed by a step that fails.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from sqlite_provision import files
from sqlite_provision.config import Options, make_layout
from sqlite_provision.engine.executor import execute
from sqlite_provision.errors import (
    EXIT_COMMAND,
    CommandFailed,
    Interrupted,
    ProvisionError,
)
from sqlite_provision.output import StderrProgress, as_json, failed
from sqlite_provision.results import Outcome, Report
from sqlite_provision.runner import Log, Runner
from sqlite_provision.steps.activation import WriteProfile, render_profile
from sqlite_provision.steps.base import PlannedStep, RunState, Step, planned
from sqlite_provision.steps.install import LinkCurrent
from support.plans import TEMPLATES

EXIT_SIGINT = 128 + signal.SIGINT
VERSION = "3.44.2"

Journal = List[Tuple[str, str]]

# --- steps defined for these tests ----------------------------------------------------------------


class Labelled(Step):
    """Each test step names itself (the executor reports steps by `name`)."""

    label: str

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.label


@dataclass(frozen=True)
class WriteFile(Labelled):
    """Replace a file's bytes; the undo puts back the old bytes, or removes the file."""

    label: str
    path: Path
    content: bytes
    journal: Journal = field(compare=False)
    changes_host = True

    def describe(self) -> str:
        return f"write {self.path}"

    def run(self, state: RunState) -> str:
        previous = files.read_bytes(self.path)
        self.path.write_bytes(self.content)
        self.journal.append(("run", self.label))

        def undo() -> None:
            self.journal.append(("undo", self.label))
            if previous is None:
                self.path.unlink()
            else:
                self.path.write_bytes(previous)

        state.undo.append((f"restore {self.path}", undo))
        return f"wrote {len(self.content)} bytes"


@dataclass(frozen=True)
class ScratchFile(Labelled):
    """Uses a scratch directory (a work dir, like the build dir) that is removed after the run,
    success or failure; changes nothing on the host."""

    label: str
    path: Path
    journal: Journal = field(compare=False)

    def describe(self) -> str:
        return f"use scratch {self.path}"

    def run(self, state: RunState) -> str:
        self.path.mkdir()
        (self.path / "object.o").write_bytes(b"scratch")
        self.journal.append(("run", self.label))
        state.work_dirs.append(self.path)
        return "scratch in use"


@dataclass(frozen=True)
class SkipIfExists(Labelled):
    """Satisfied when `path` exists, checked just before it would run."""

    label: str
    path: Path
    journal: Journal = field(compare=False)
    changes_host = True

    def describe(self) -> str:
        return f"create {self.path} unless present"

    def is_satisfied(self, state: RunState) -> Optional[str]:
        if self.path.exists():
            return f"{self.path.name} is already there"
        return None

    def run(self, state: RunState) -> str:
        self.journal.append(("run", self.label))
        self.path.write_bytes(b"made")
        state.undo.append((f"remove {self.path}", self.path.unlink))
        return "created"


@dataclass(frozen=True)
class Raise(Labelled):
    label: str
    error: BaseException = field(compare=False)
    journal: Journal = field(compare=False)

    def describe(self) -> str:
        return f"raise {type(self.error).__name__}"

    def run(self, state: RunState) -> str:
        self.journal.append(("run", self.label))
        raise self.error


@dataclass(frozen=True)
class BrokenUndo(Labelled):
    """Registers an undo action that itself fails."""

    label: str
    journal: Journal = field(compare=False)
    changes_host = True

    def describe(self) -> str:
        return "register a failing undo"

    def run(self, state: RunState) -> str:
        def undo() -> None:
            self.journal.append(("undo", self.label))
            raise OSError("undo could not finish")

        state.undo.append(("do the impossible", undo))
        return "registered"


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    run_log = Log(tmp_path / "logs" / "run.log")
    yield run_log
    run_log.close()


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A directory standing for the host's files."""
    path = tmp_path / "host"
    path.mkdir()
    return path


def options_for(tmp_path: Path) -> Options:
    return Options(
        version="3.44.2",
        prefix_root=tmp_path / "opt" / "sqlite",
        profile_file=tmp_path / "etc" / "profile.d" / "sqlite-provision.sh",
    )


def run(tmp_path: Path, log: Log, steps: List[Step]) -> Report:
    layout = make_layout(options_for(tmp_path), VERSION)
    report = Report(False, VERSION, str(layout.prefix), None, None, str(log.path))
    return execute(planned(steps), report, Runner(os.environ, log), StderrProgress())


def run_failing(tmp_path: Path, log: Log, steps: List[Step], error: type) -> BaseException:
    with pytest.raises(error) as caught:
        run(tmp_path, log, steps)
    return caught.value


def statuses(report: Report) -> List[Tuple[str, str]]:
    return [(r.name, r.status) for r in report.steps]


# --- executor with the test steps -----------------------------------------------------------------


def test_success_runs_every_step_and_the_cleanup(tmp_path: Path, log: Log, host: Path) -> None:
    journal: Journal = []
    target, scratch = host / "a.conf", host / "scratch"
    target.write_bytes(b"old")
    report = run(
        tmp_path,
        log,
        [
            WriteFile("write-a", target, b"new", journal),
            ScratchFile("scratch", scratch, journal),
        ],
    )
    envelope = json.loads(as_json(Outcome(report)))
    assert envelope["ok"] and envelope["exit_code"] == 0 and envelope["error"] is None
    assert report.changed is True
    assert statuses(report) == [("write-a", "ok"), ("scratch", "ok")]
    assert report.steps[0].detail == "wrote 3 bytes"
    assert target.read_bytes() == b"new"
    assert journal == [("run", "write-a"), ("run", "scratch")]
    assert not scratch.exists(), "the work dir was not removed on success"
    text = (tmp_path / "logs" / "run.log").read_text()
    assert "== step write-a" in text and "== scratch ok" in text
    assert report.log_file == str(tmp_path / "logs" / "run.log")


def test_failure_undoes_earlier_steps_newest_first(tmp_path: Path, log: Log, host: Path) -> None:
    journal: Journal = []
    shared, fresh, scratch = host / "shared.conf", host / "fresh.conf", host / "scratch"
    shared.write_bytes(b"original\x00bytes")
    failure = CommandFailed("make failed with exit status 2", argv=["make"], returncode=2)
    steps: List[Step] = [
        WriteFile("first", shared, b"first", journal),
        ScratchFile("scratch", scratch, journal),
        WriteFile("second", shared, b"second", journal),  # undo order matters for this file
        WriteFile("third", fresh, b"third", journal),
        Raise("boom", failure, journal),
        WriteFile("never", host / "never", b"x", journal),
    ]
    error = run_failing(tmp_path, log, steps, CommandFailed)

    assert error.__context__ is failure  # the same error, with the result so far
    assert type(error) is CommandFailed
    same = {k: v for k, v in vars(error).items() if k != "partial"}
    assert same == {k: v for k, v in vars(failure).items() if k != "partial"}
    assert shared.read_bytes() == b"original\x00bytes"
    assert not fresh.exists()
    assert not (host / "never").exists()
    assert not scratch.exists(), "the work dir was not removed on failure"
    assert sorted(os.listdir(str(host))) == ["shared.conf"]
    assert [entry for entry in journal if entry[0] == "undo"] == [
        ("undo", "third"),
        ("undo", "second"),
        ("undo", "first"),
    ]
    report: Report = error.partial
    assert statuses(report) == [
        ("first", "ok"),
        ("scratch", "ok"),
        ("second", "ok"),
        ("third", "ok"),
        ("boom", "failed"),
        ("never", "not-run"),
    ]
    assert report.steps[4].detail == "make failed with exit status 2"
    outcome = failed(error)
    assert not outcome.ok and report.changed is False and outcome.changed is False
    assert outcome.exit_code == EXIT_COMMAND and outcome.result is report
    assert "undone: restore" in (tmp_path / "logs" / "run.log").read_text()


def test_a_non_provision_error_is_rolled_back_and_re_raised(
    tmp_path: Path, log: Log, host: Path
) -> None:
    journal: Journal = []
    target = host / "a.conf"
    error = run_failing(
        tmp_path,
        log,
        [WriteFile("write", target, b"new", journal), Raise("bug", ValueError("bug"), journal)],
        ValueError,
    )
    assert str(error) == "bug"
    assert not target.exists()
    assert journal[-1] == ("undo", "write")


def test_a_failing_undo_does_not_stop_the_others(
    tmp_path: Path, log: Log, host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal: Journal = []
    target = host / "a.conf"
    run_failing(
        tmp_path,
        log,
        [
            WriteFile("write", target, b"new", journal),
            BrokenUndo("broken", journal),
            Raise("boom", CommandFailed("boom"), journal),
        ],
        CommandFailed,
    )
    assert [e for e in journal if e[0] == "undo"] == [("undo", "broken"), ("undo", "write")]
    assert not target.exists()
    assert "warning: undo could not do the impossible" in capsys.readouterr().err
    assert "undo FAILED: do the impossible" in (tmp_path / "logs" / "run.log").read_text()


def test_skipped_steps_keep_their_reason_and_change_nothing(
    tmp_path: Path, log: Log, host: Path
) -> None:
    journal: Journal = []
    marker = host / "marker"
    marker.write_bytes(b"there")
    report = run(tmp_path, log, [SkipIfExists("ensure-marker", marker, journal)])
    assert statuses(report) == [("ensure-marker", "skipped")]
    assert report.steps[0].detail == "marker is already there"
    assert report.changed is False and Outcome(report).ok
    assert journal == []
    assert marker.read_bytes() == b"there"


def test_is_satisfied_is_checked_just_before_the_step(tmp_path: Path, log: Log, host: Path) -> None:
    """Facts go stale: a step made satisfied by an earlier step of the same run is skipped."""
    journal: Journal = []
    marker = host / "marker"
    report = run(
        tmp_path,
        log,
        [
            SkipIfExists("first", marker, journal),
            SkipIfExists("again", marker, journal),
        ],
    )
    assert statuses(report) == [("first", "ok"), ("again", "skipped")]
    assert journal == [("run", "first")]
    assert report.changed is True


@pytest.mark.parametrize(
    "kinds, changed",
    [
        pytest.param(["scratch"], False, id="only-a-step-that-changes-nothing"),
        pytest.param(["skipped-host-step"], False, id="host-step-skipped"),
        pytest.param(["scratch", "skipped-host-step"], False, id="both"),
        pytest.param(["scratch", "host-step"], True, id="a-host-step-ran"),
    ],
)
def test_changed_only_when_a_host_changing_step_ran(
    tmp_path: Path, log: Log, host: Path, kinds: List[str], changed: bool
) -> None:
    journal: Journal = []
    (host / "present").write_bytes(b"x")
    make = {
        "scratch": lambda: ScratchFile("scratch", host / "scratch", journal),
        "skipped-host-step": lambda: SkipIfExists("skipped", host / "present", journal),
        "host-step": lambda: WriteFile("write", host / "a.conf", b"a", journal),
    }
    report = run(tmp_path, log, [make[kind]() for kind in kinds])
    assert Outcome(report).ok
    assert report.changed is changed


def test_keyboard_interrupt_becomes_interrupted_and_rolls_back(
    tmp_path: Path, log: Log, host: Path
) -> None:
    journal: Journal = []
    target, scratch = host / "a.conf", host / "scratch"
    target.write_bytes(b"before")
    error = run_failing(
        tmp_path,
        log,
        [
            ScratchFile("scratch", scratch, journal),
            WriteFile("write", target, b"after", journal),
            Raise("ctrl-c", KeyboardInterrupt(), journal),
            WriteFile("never", host / "never", b"x", journal),
        ],
        Interrupted,
    )
    assert isinstance(error, ProvisionError)
    assert error.exit_code == EXIT_SIGINT == 130
    assert error.signum == signal.SIGINT  # type: ignore[attr-defined]
    assert isinstance(error.__cause__, KeyboardInterrupt)
    assert target.read_bytes() == b"before"
    assert not scratch.exists()
    assert not (host / "never").exists()
    report: Report = error.partial
    assert failed(error).exit_code == 130 and not failed(error).ok
    assert statuses(report)[-2:] == [("ctrl-c", "failed"), ("never", "not-run")]


def test_signal_handlers_are_restored(tmp_path: Path, log: Log, host: Path) -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    journal: Journal = []
    run(tmp_path, log, [ScratchFile("scratch", host / "s", journal)])
    run_failing(
        tmp_path,
        log,
        [
            WriteFile("w", host / "w", b"w", journal),
            Raise("boom", CommandFailed("boom"), journal),
        ],
        CommandFailed,
    )
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# --- the tool's WriteProfile and LinkCurrent, then a failure ---------------------------------------


PROFILE_BEFORE = [
    pytest.param(None, id="no-profile-before"),
    pytest.param(b"# an older snippet\nexport LD_LIBRARY_PATH=/old/lib\n", id="profile-before"),
]
LINK_BEFORE = [
    pytest.param(None, id="no-link-before"),
    pytest.param("3.40.0", id="link-before"),
]


def real_steps(tmp_path: Path) -> Tuple[WriteProfile, LinkCurrent]:
    options = options_for(tmp_path)
    layout = make_layout(options, VERSION)
    assert layout.profile_file is not None and layout.current_link is not None
    content = render_profile(TEMPLATES, layout.active_lib_dir, "")
    return (
        WriteProfile(layout.profile_file, content, layout.active_lib_dir),
        LinkCurrent(layout.current_link, VERSION),
    )


def prepare(tmp_path: Path, profile: Optional[bytes], link: Optional[str]) -> None:
    options = options_for(tmp_path)
    options.prefix_root.mkdir(parents=True)
    (options.prefix_root / VERSION).mkdir()
    if link is not None:
        (options.prefix_root / link).mkdir(exist_ok=True)
        os.symlink(link, str(options.prefix_root / "current"))
    if profile is not None:
        options.profile_file.parent.mkdir(parents=True)
        options.profile_file.write_bytes(profile)
        os.chmod(str(options.profile_file), 0o644)


def tree(root: Path) -> List[Tuple[str, str]]:
    entries = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            kind = "link:" + os.readlink(str(path)) if path.is_symlink() else path.suffix
            entries.append((str(path.relative_to(root)), kind))
    return sorted(entries)


@pytest.mark.parametrize("profile", PROFILE_BEFORE)
@pytest.mark.parametrize("link", LINK_BEFORE)
def test_real_activation_steps_are_undone_after_a_later_failure(
    tmp_path: Path, log: Log, profile: Optional[bytes], link: Optional[str]
) -> None:
    prepare(tmp_path, profile, link)
    options = options_for(tmp_path)
    before = tree(tmp_path / "opt"), tree(tmp_path / "etc") if (tmp_path / "etc").exists() else []
    write_profile, link_current = real_steps(tmp_path)
    journal: Journal = []

    error = run_failing(
        tmp_path,
        log,
        [link_current, write_profile, Raise("verify", CommandFailed("verify failed"), journal)],
        CommandFailed,
    )

    report: Report = error.partial
    # Both real steps did run before the failure, so there was something to undo.
    assert statuses(report) == [("link-current", "ok"), ("profile", "ok"), ("verify", "failed")]
    if profile is None:
        assert not os.path.lexists(str(options.profile_file))
        assert not (tmp_path / "etc").exists(), "directories created for the profile remain"
    else:
        assert options.profile_file.read_bytes() == profile
        assert os.stat(str(options.profile_file)).st_mode & 0o777 == 0o644
    current = options.prefix_root / "current"
    if link is None:
        assert not os.path.lexists(str(current))
    else:
        assert os.readlink(str(current)) == link
    assert not os.path.lexists(str(options.prefix_root / "previous"))
    after = tree(tmp_path / "opt"), tree(tmp_path / "etc") if (tmp_path / "etc").exists() else []
    assert after == before


@pytest.mark.parametrize("profile", PROFILE_BEFORE)
@pytest.mark.parametrize("link", LINK_BEFORE)
def test_real_activation_steps_succeed(
    tmp_path: Path, log: Log, profile: Optional[bytes], link: Optional[str]
) -> None:
    """The same steps without the failure: what the rollback test undoes really happened."""
    prepare(tmp_path, profile, link)
    options = options_for(tmp_path)
    write_profile, link_current = real_steps(tmp_path)
    report = run(tmp_path, log, [link_current, write_profile])
    assert Outcome(report).ok and report.changed
    assert options.profile_file.read_bytes() == write_profile.content.encode()
    assert os.stat(str(options.profile_file)).st_mode & 0o777 == 0o644
    assert os.readlink(str(options.prefix_root / "current")) == VERSION


def test_real_steps_already_done_are_skipped_and_left_alone(tmp_path: Path, log: Log) -> None:
    write_profile, link_current = real_steps(tmp_path)
    prepare(tmp_path, write_profile.content.encode(), VERSION)
    options = options_for(tmp_path)
    journal: Journal = []
    error = run_failing(
        tmp_path,
        log,
        [link_current, write_profile, Raise("verify", CommandFailed("verify failed"), journal)],
        CommandFailed,
    )
    report: Report = error.partial
    assert statuses(report)[:2] == [("link-current", "skipped"), ("profile", "skipped")]
    assert options.profile_file.read_bytes() == write_profile.content.encode()
    assert os.readlink(str(options.prefix_root / "current")) == VERSION


@dataclass(frozen=True)
class KeepBackup(Labelled):
    """Like Install: keeps a backup for the undo, discarded only once the whole run succeeded."""

    label: str
    backup: Path
    journal: Journal = field(compare=False)

    def describe(self) -> str:
        return f"keep {self.backup}"

    def run(self, state: RunState) -> str:
        self.backup.write_bytes(b"previous build")
        state.cleanup.append(lambda: self.backup.unlink())
        return "backup kept"


def test_success_cleanup_never_runs_on_failure(tmp_path: Path, log: Log, host: Path) -> None:
    journal: Journal = []
    backup = host / "backup"
    failure = CommandFailed("verify failed", argv=["python"], returncode=1)
    run_failing(
        tmp_path, log, [KeepBackup("keep", backup, journal), Raise("boom", failure, journal)],
        CommandFailed,
    )  # fmt: skip
    assert backup.read_bytes() == b"previous build"


# --- where skipping is decided, and a step that cannot be undone ----------------------------------


@dataclass(frozen=True)
class ProvesAChange(Labelled):
    """Like the smoke test: a check worth running only in a run that changed the host."""

    label: str
    journal: Journal = field(compare=False)
    unless_changed = "nothing changed since the run that passed it"

    def describe(self) -> str:
        return "check the change"

    def run(self, state: RunState) -> str:
        self.journal.append(("run", self.label))
        return "checked"


@dataclass(frozen=True)
class Irreversible(Labelled):
    """Like removing a version's files: no undo; once it starts, the run rolls forward."""

    label: str
    path: Path
    journal: Journal = field(compare=False)
    changes_host = True
    reversible = False

    def describe(self) -> str:
        return f"remove {self.path}"

    def run(self, state: RunState) -> str:
        self.path.unlink()
        self.journal.append(("run", self.label))
        return "removed"


def test_the_plans_reason_skips_a_step_that_would_run(tmp_path: Path, log: Log, host: Path) -> None:
    journal: Journal = []
    step = WriteFile("write", host / "a.conf", b"new", journal)
    layout = make_layout(options_for(tmp_path), VERSION)
    base = Report(False, VERSION, str(layout.prefix), None, None, str(log.path))
    report = execute(
        [PlannedStep(step, "this build is installed and intact")], base, Runner(os.environ, log)
    )
    assert statuses(report) == [("write", "skipped")]
    assert report.steps[0].detail == "this build is installed and intact"
    assert journal == [] and not (host / "a.conf").exists() and report.changed is False


@pytest.mark.parametrize("changed", [False, True], ids=["nothing-changed", "a-step-changed"])
def test_a_check_that_proves_a_change_runs_only_after_one(
    tmp_path: Path, log: Log, host: Path, changed: bool
) -> None:
    journal: Journal = []
    (host / "present").write_bytes(b"x")
    first: Step = (
        WriteFile("write", host / "a.conf", b"a", journal)
        if changed
        else SkipIfExists("skipped", host / "present", journal)
    )
    report = run(tmp_path, log, [first, ProvesAChange("smoke", journal)])
    assert statuses(report)[-1] == ("smoke", "ok" if changed else "skipped")
    assert (("run", "smoke") in journal) is changed
    if not changed:
        assert report.steps[-1].detail == "nothing changed since the run that passed it"


def test_a_step_that_cannot_be_undone_keeps_what_came_before(
    tmp_path: Path, log: Log, host: Path
) -> None:
    """A failure after an irreversible step started undoes only what came after it began: what
    came before stays (a snippet is not put back around a half-removed tree)."""
    journal: Journal = []
    before, after, gone = host / "before.conf", host / "after.conf", host / "gone"
    gone.write_bytes(b"ours")
    steps: List[Step] = [
        WriteFile("before", before, b"1", journal),
        Irreversible("remove", gone, journal),
        WriteFile("after", after, b"3", journal),
        Raise("boom", CommandFailed("boom"), journal),
    ]
    run_failing(tmp_path, log, steps, CommandFailed)
    assert before.read_bytes() == b"1"  # kept: it came before the irreversible step
    assert not after.exists()  # undone: it came after
    assert not gone.exists()
    assert [e for e in journal if e[0] == "undo"] == [("undo", "after")]
    text = (tmp_path / "logs" / "run.log").read_text()
    assert f"kept (a step that cannot be undone follows): restore {before}" in text
