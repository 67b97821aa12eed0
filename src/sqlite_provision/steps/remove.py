"""The steps of `uninstall`: what the installs wrote outside the versions (venv hooks, the
activation files, their record, the `current` and `previous` links), each put back by the undo;
then the versions' own files, which cannot be put back. Those come last: once a version's files
start to go, the run rolls forward (the executor keeps what came before), and a run that fails
or is killed there is finished by the next one, since the manifest goes last."""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from sqlite_provision.files import set_link, snapshot_file
from sqlite_provision.steps.base import Argv, RunState, Step
from sqlite_provision.store.installs import remove_files
from sqlite_provision.store.records import Command, forget, is_managed


@dataclass(frozen=True)
class RemoveActivation(Step):
    """Remove a file an install wrote, only while it still carries our marker (the record
    itself is ours by its name), then its follow-up commands (daemon-reload, ldconfig), whose
    failure changes nothing: the file is gone either way. The undo puts it back as it was."""

    path: Path
    after: Tuple[Command, ...] = ()
    marked: bool = True  # False for the record, which is ours by its name
    name: str = "deactivate"
    changes_host = True

    def describe(self) -> str:
        return f"remove {self.path}" + (" (while it carries the marker)" if self.marked else "")

    def commands(self) -> List[Argv]:
        return [list(argv) for argv in self.after]

    def run(self, state: RunState) -> str:
        if self.marked and not is_managed(self.path):
            return f"kept {self.path}: it no longer carries the marker"
        put_back = snapshot_file(self.path)
        self.path.unlink()
        if self.path.parent.name.endswith(".service.d"):
            try:
                self.path.parent.rmdir()
            except OSError:
                pass

        def undo() -> None:
            put_back()
            self.run_after(state)

        state.undo.append((f"put back {self.path}", undo))
        self.run_after(state)
        return f"removed {self.path}"

    def run_after(self, state: RunState) -> None:
        for argv in self.commands():
            state.runner.capture(argv)  # logged; its outcome changes nothing


@dataclass(frozen=True)
class ForgetActivation(Step):
    """Take unbound venvs' hooks off the record of activation files."""

    record: Path
    files: Tuple[str, ...]
    name = "forget-activation"
    changes_host = True

    def describe(self) -> str:
        return f"take {len(self.files)} hook(s) off {self.record}"

    def run(self, state: RunState) -> str:
        state.undo.append((f"put back {self.record}", snapshot_file(self.record)))
        forget(self.record, list(self.files))
        return f"{len(self.files)} hook(s) off the record"


@dataclass(frozen=True)
class RemoveLink(Step):
    """Remove `current` or `previous` where it would name a version the uninstall removes."""

    link: Path
    target: str  # what it names
    name = "remove-link"
    changes_host = True

    def describe(self) -> str:
        return f"remove {self.link} (it names {self.target})"

    def run(self, state: RunState) -> str:
        state.undo.append((f"put back {self.link}", set_link(self.link, None)))
        return f"removed {self.link}"


@dataclass(frozen=True)
class RemoveVersion(Step):
    """Exactly the files a version's manifest lists, the manifest last. It cannot be undone."""

    prefix: Path
    version: str
    files: Tuple[str, ...]  # relative to the prefix
    name = "remove-version"
    changes_host = True
    reversible = False

    def describe(self) -> str:
        return (
            f"remove the {len(self.files)} files of SQLite {self.version} in {self.prefix} "
            "that its manifest lists, then the directories left empty, the manifest last"
        )

    def run(self, state: RunState) -> str:
        removed = remove_files(self.prefix, self.files)
        return f"removed {removed} files of SQLite {self.version} from {self.prefix}"


@dataclass(frozen=True)
class RemoveEmptyRoot(Step):
    """The prefix root, once nothing is left in it."""

    root: Path
    name = "remove-empty-root"

    def describe(self) -> str:
        return f"remove {self.root} if nothing is left in it"

    def run(self, state: RunState) -> str:
        try:
            self.root.rmdir()
        except OSError:
            return f"kept {self.root}: it is not empty"
        return f"removed {self.root}"
