"""The steps that change the host: move the staged tree into the prefix, swap `current`,
write the activation files. Each registers how to undo itself."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision import activate
from sqlite_provision.activate import read_link, set_link
from sqlite_provision.options import PREVIOUS_LINK_NAME
from sqlite_provision.steps import Argv, Context, Step, make_parents, remove_empty


@dataclass(frozen=True)
class Install(Step):
    prefix: Path
    name = "install"
    changes_host = True

    def describe(self) -> str:
        return f"move the staged tree into {self.prefix} in one rename"

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        assert ctx.staged_prefix is not None  # noqa: S101
        prefix = ctx.layout.prefix
        backup: Optional[Path] = None
        if os.path.lexists(str(prefix)):
            # An older build of ours (checked by preflight): keep it until the run succeeds.
            backup = prefix.parent / f".{prefix.name}.previous-{os.getpid()}"
            os.rename(str(prefix), str(backup))
        os.rename(str(ctx.staged_prefix), str(prefix))
        activate.fsync_dir(prefix.parent)

        def undo() -> None:
            shutil.rmtree(str(prefix), ignore_errors=True)
            if backup is not None:
                os.rename(str(backup), str(prefix))

        ctx.undo.append((f"remove {prefix}", undo))
        if backup is not None:
            kept = backup
            ctx.cleanup.append(lambda: shutil.rmtree(str(kept), ignore_errors=True))
            return f"replaced the previous build in {prefix}"
        return f"installed into {prefix}"


@dataclass(frozen=True)
class LinkCurrent(Step):
    link: Path
    target: str
    name = "link"
    changes_host = True

    def describe(self) -> str:
        return f"point {self.link} at {self.target} (a new link renamed over the old)"

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        try:
            if os.readlink(str(self.link)) == self.target:
                return f"{self.link} already points at {self.target}"
        except OSError:
            pass
        return None

    def run(self, ctx: Context) -> str:
        old_target = read_link(self.link)
        undo_current = set_link(self.link, self.target)
        ctx.undo.append((f"restore {self.link}", undo_current))
        if old_target is not None and old_target != self.target:
            # `previous` remembers what `current` pointed at, for `sqlite-provision rollback`.
            undo_previous = set_link(self.link.parent / PREVIOUS_LINK_NAME, old_target)
            ctx.undo.append(("restore the previous link", undo_previous))
            return f"{self.link} -> {self.target} (previous: {old_target})"
        return f"{self.link} -> {self.target}"


@dataclass(frozen=True)
class WriteActivation(Step):
    """Write one activation file atomically (profile snippets, systemd drop-ins, an env file,
    ld.so.conf.d), run its follow-up commands (daemon-reload, ldconfig), and undo both."""

    path: Path
    content: str
    lib_dir: Path
    name: str = "activate"
    purpose: str = "prepend {lib} to LD_LIBRARY_PATH"
    after: Tuple[Tuple[str, ...], ...] = ()
    mode: int = 0o644
    changes_host = True

    def describe(self) -> str:
        return (
            f"write {self.path} (mode {self.mode:04o}) to {self.purpose.format(lib=self.lib_dir)}"
        )

    def commands(self) -> List[Argv]:
        return [list(a) for a in self.after]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        if activate.read_bytes(self.path) == self.content.encode("utf-8"):
            return f"{self.path} is already up to date"
        return None

    def run(self, ctx: Context) -> str:
        previous = activate.read_bytes(self.path)
        # The undo puts back the old file as it was: its mode and owner too, not ours.
        mode: int = self.mode
        owner: Optional[Tuple[int, int]] = None
        if previous is not None:
            mode, owner = activate.file_metadata(self.path)
        created = make_parents(self.path.parent)
        activate.write_atomic(self.path, self.content.encode("utf-8"), self.mode)

        def undo() -> None:
            activate.restore(self.path, previous, mode, owner)
            remove_empty(created)
            self.run_after(ctx)

        ctx.undo.append((f"restore {self.path}", undo))
        self.run_after(ctx)
        return "{} {}".format("replaced" if previous is not None else "wrote", self.path)

    def run_after(self, ctx: Context) -> None:
        for argv in self.after:
            ctx.runner.run(list(argv), what=argv[0])


@dataclass(frozen=True)
class WriteProfile(WriteActivation):
    name: str = "profile"
