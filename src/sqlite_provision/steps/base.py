"""The Step base, the planned step and the run state.

A step is a small frozen dataclass that runs exactly from its own fields: `describe()` and
`commands()` are what --dry-run shows, and `run(state)` does it and registers how to undo what
it changed. Whether a step runs is decided in one place, the executor, from three sources only:
the plan's reason (`PlannedStep.skip`, from what resolving found: this build is installed and
intact, there is no compiler to install), the run's (`unless_changed`: a check that proves a
change is skipped in a run that changed nothing), and the host's (`is_satisfied`: what the step
makes is already there, read just before it would run, as a link that points where it should).

The run state holds only what the run produces (the tarball, the build tree, the staged prefix,
the verification results) and the undo stack; the steps' inputs never travel through it.
"""

from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Tuple

from sqlite_provision.results import BuiltRpm, ProbeResult, Progress, StaleProcess
from sqlite_provision.runner import Runner

Argv = List[str]
Undo = Tuple[str, Callable[[], None]]


class RunState:
    """What a run produces as it goes. Created by the executor, never by --dry-run."""

    def __init__(self, runner: Runner, progress: Optional[Progress] = None) -> None:
        self.runner = runner
        self.progress = progress or Progress()
        self.undo: List[Undo] = []  # how to put the host back, newest last
        self.cleanup: List[Callable[[], None]] = []  # what only a successful run may discard
        self.work_dirs: List[Path] = []  # build and staging dirs (kept with --keep-failed)
        self.tarball: Optional[Path] = None  # the verified tarball
        self.srcdir: Optional[Path] = None  # the unpacked source tree
        self.shell_overlay: bool = False  # the tree's Makefile fits the shell.c overlay
        self.staged: Optional[Path] = None  # the staged prefix tree, before the rename
        self.verified: List[ProbeResult] = []
        self.stale: List[StaleProcess] = []  # processes still on another libsqlite3
        self.warnings: List[str] = []
        self.rpm: Optional[BuiltRpm] = None  # build --rpm: the package written
        self.changed = False  # set by the executor once a step that changes the host has run

    def warn(self, text: str) -> None:
        """Said once: on stderr as it happens, in the log, and in the result."""
        self.warnings.append(text)
        self.runner.log.write("warning: " + text)
        self.progress.warning(text)


class Step:
    name = "step"
    changes_host = False  # does running it count as `changed`?
    # A check that proves a change (the smoke test) is skipped, with this reason, in a run
    # that has changed nothing on the host.
    unless_changed: Optional[str] = None
    # False for a step whose effect cannot be undone (a version's files removed): once it
    # starts, what the run changed before it is kept, and a failure is finished by the next run.
    reversible = True

    def describe(self) -> str:
        raise NotImplementedError

    def commands(self) -> List[Argv]:
        """Every command `run` executes, in order, exactly as it runs them."""
        return []

    def is_satisfied(self, state: RunState) -> Optional[str]:
        """Why what this step makes is already on the host (read just before it would run), or
        None. Only for a state the host itself shows; the plan's reasons are its own."""
        return None

    def run(self, state: RunState) -> str:
        raise NotImplementedError


class PlannedStep(NamedTuple):
    """A step of a plan, with the plan's reason to skip it (None: it runs, unless the run or
    the host says otherwise)."""

    step: Step
    skip: Optional[str] = None


def planned(steps: List[Step], skip: Optional[str] = None) -> List[PlannedStep]:
    """The steps, each skipped for `skip` (None: each runs)."""
    return [PlannedStep(step, skip) for step in steps]
