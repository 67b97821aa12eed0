"""The steps that put a staged tree in place: one rename into the prefix, then `current` swapped
to it (and `previous` kept for `sqlite-provision rollback`); and the rollback's switch of the
two. Each registers its undo."""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlite_provision.config import CURRENT_LINK_NAME, PREVIOUS_LINK_NAME
from sqlite_provision.faultpoints import crash_point
from sqlite_provision.files import fsync_dir, read_link, set_link
from sqlite_provision.steps.base import RunState, Step
from sqlite_provision.store.recovery import backup_path, write_switch_journal


@dataclass(frozen=True)
class Install(Step):
    prefix: Path
    name = "install"
    changes_host = True

    def describe(self) -> str:
        return f"move the staged tree into {self.prefix} in one rename"

    def run(self, state: RunState) -> str:
        assert state.staged is not None  # noqa: S101 - Stage or Unpack ran
        prefix = self.prefix
        backup: Optional[Path] = None
        if os.path.lexists(str(prefix)):
            # An older build of ours (checked by preflight): keep it until the run succeeds.
            backup = backup_path(prefix)
            shutil.rmtree(str(backup), ignore_errors=True)
            os.rename(str(prefix), str(backup))
            crash_point("during:install")
        os.rename(str(state.staged), str(prefix))
        fsync_dir(prefix.parent)

        def undo() -> None:
            shutil.rmtree(str(prefix), ignore_errors=True)
            if backup is not None:
                os.rename(str(backup), str(prefix))

        state.undo.append((f"remove {prefix}", undo))
        if backup is not None:
            kept = backup
            state.cleanup.append(lambda: shutil.rmtree(str(kept), ignore_errors=True))
            return f"replaced the previous build in {prefix}"
        return f"installed into {prefix}"


@dataclass(frozen=True)
class LinkCurrent(Step):
    link: Path
    target: str
    name = "link-current"
    changes_host = True

    def describe(self) -> str:
        return f"point {self.link} at {self.target} (a new link renamed over the old)"

    def is_satisfied(self, state: RunState) -> Optional[str]:
        if read_link(self.link) == self.target:
            return f"{self.link} already points at {self.target}"
        return None

    def run(self, state: RunState) -> str:
        old_target = read_link(self.link)
        undo_current = set_link(self.link, self.target)
        state.undo.append((f"restore {self.link}", undo_current))
        if old_target is not None and old_target != self.target:
            # `previous` remembers what `current` pointed at, for `sqlite-provision rollback`.
            undo_previous = set_link(self.link.parent / PREVIOUS_LINK_NAME, old_target)
            state.undo.append(("restore the previous link", undo_previous))
            return f"{self.link} -> {self.target} (previous: {old_target})"
        return f"{self.link} -> {self.target}"


@dataclass(frozen=True)
class SwitchToPrevious(Step):
    """`rollback`: `current` to what `previous` names, and `previous` to what `current` named.
    A journal of the two waits beside them until the whole run succeeded: the next run's
    recovery puts back a rollback killed before it was verified (store/recovery.py)."""

    root: Path
    current: str  # what `current` names now ("" for nothing)
    previous: str  # what `previous` names: where `current` goes
    name = "switch-to-previous"
    changes_host = True

    def describe(self) -> str:
        return "point {} at {} and {} at {}".format(
            self.root / CURRENT_LINK_NAME,
            self.previous,
            self.root / PREVIOUS_LINK_NAME,
            self.current or "nothing (remove it)",
        )

    def run(self, state: RunState) -> str:
        journal = write_switch_journal(self.root, self.current, self.previous)
        undo_current = set_link(self.root / CURRENT_LINK_NAME, self.previous)
        crash_point("during:switch-to-previous")
        undo_previous = set_link(self.root / PREVIOUS_LINK_NAME, self.current or None)

        def undo() -> None:
            undo_previous()
            undo_current()
            journal.unlink()

        state.undo.append(("switch `current` and `previous` back", undo))
        state.cleanup.append(journal.unlink)
        return f"{self.root / CURRENT_LINK_NAME} -> {self.previous} (previous: {self.current})"
