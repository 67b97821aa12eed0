"""The Step base and the run state.

A step is a small frozen dataclass that runs exactly from its own fields: `describe()` and
`commands()` are what --dry-run shows, `is_satisfied(state)` skips it with a reason (what makes
re-runs idempotent), and `run(state)` does it and registers how to undo what it changed. The run
state holds only what the run produces (the tarball, the build tree, the staged prefix, the
verification results) and the undo stack; the steps' inputs never travel through it.
"""

from pathlib import Path
from typing import Callable, List, Optional, Tuple

from sqlite_provision.recipe.flags import BuildConfig
from sqlite_provision.results import ProbeResult, Progress, StaleProcess
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
        self.config: Optional[BuildConfig] = None  # the configure that ran
        self.staged: Optional[Path] = None  # the staged prefix tree, before the rename
        self.verified: List[ProbeResult] = []
        self.stale: List[StaleProcess] = []  # processes still on another libsqlite3
        self.warnings: List[str] = []
        self.changed = False  # set by the executor once a step that changes the host has run

    def warn(self, text: str) -> None:
        """Said once: on stderr as it happens, in the log, and in the result."""
        self.warnings.append(text)
        self.runner.log.write("warning: " + text)
        self.progress.warning(text)


class Step:
    name = "step"
    changes_host = False  # does running it count as `changed`?

    def describe(self) -> str:
        raise NotImplementedError

    def commands(self) -> List[Argv]:
        """Every command `run` executes, in order, exactly as it runs them."""
        return []

    def is_satisfied(self, state: RunState) -> Optional[str]:
        return None

    def run(self, state: RunState) -> str:
        raise NotImplementedError
