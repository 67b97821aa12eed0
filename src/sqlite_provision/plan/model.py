"""What a plan is: its command, its steps (each with the plan's reason to skip it), and what
its report and its dry run say it is about. Data only."""

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Optional, Tuple

from sqlite_provision.recipe.features import Selected
from sqlite_provision.results import PlanView, Report, StepRecord, StepView
from sqlite_provision.source.resolve import Source
from sqlite_provision.steps.base import PlannedStep


class Command(Enum):
    """The commands that change the host, each through a plan and the executor."""

    INSTALL = "install"
    BUILD = "build"
    ROLLBACK = "rollback"
    UNINSTALL = "uninstall"


@dataclass(frozen=True)
class Plan:
    command: Command
    steps: Tuple[PlannedStep, ...]
    summary: str  # what the plan does, in one line: the dry run's first line
    version: Optional[str]  # the version it installs, builds or switches to
    prefix: Path  # where it acts: the version's prefix, or the prefix root
    source: Optional[Source] = None  # install and build: the tarball or artifact
    library: Optional[Path] = None  # install: the library the activation points at
    profile_file: Optional[Path] = None
    pythons: Tuple[str, ...] = ()
    features: Tuple[Selected, ...] = ()
    records: Tuple[StepRecord, ...] = ()  # what resolving did (recover, resolve): shown first
    artifact_out: Optional[Path] = None
    profile_readers: Tuple[str, ...] = ()

    def view(self) -> PlanView:
        """What --dry-run shows: each step's description and its exact commands (none for a
        step the plan skips), as data; output.py renders it."""
        source = self.source
        checksum = source.checksum if source else None
        return PlanView(
            command=self.command.value,
            summary=self.summary,
            version=self.version,
            url=source.url if source else None,
            tarball=str(source.local) if source and source.local else None,
            checksum=checksum.tagged if checksum else None,
            origin=source.origin if source else "",
            prefix=str(self.prefix),
            profile_file=str(self.profile_file) if self.profile_file else None,
            pythons=self.pythons,
            features=tuple((s.feature.option, s.origin) for s in self.features),
            steps=tuple(
                StepView(
                    name=p.step.name,
                    description=p.step.describe(),
                    commands=() if p.skip else tuple(tuple(argv) for argv in p.step.commands()),
                    skipped=p.skip,
                )
                for p in self.steps
            ),
        )

    def new_report(self, log_path: Optional[Path]) -> Report:
        """The result before any step ran: what the plan is about."""
        return Report(
            changed=any(record.changed for record in self.records),
            version=self.version or "",
            prefix=str(self.prefix),
            library=str(self.library) if self.library else None,
            profile_file=str(self.profile_file) if self.profile_file else None,
            log_file=str(log_path) if log_path is not None else None,
            steps=self.records,
            artifact=str(self.artifact_out) if self.artifact_out is not None else None,
            profile_readers=self.profile_readers,
        )
