"""Layer 2: store/recovery.py alone, on a made-up prefix root. The crash matrix (tests/faults)
kills real runs between steps; a kill inside a write (a temporary sibling of an activation
file, a half-made link) is rarer there, so each leftover is laid out here by hand, together
with look-alikes that recovery must leave alone."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable, Dict, List

from sqlite_provision.config import MANIFEST_NAME
from sqlite_provision.files import swap_symlink, write_atomic
from sqlite_provision.store.recovery import (
    SWITCH_JOURNAL,
    Places,
    backup_path,
    recover,
    staging_dir,
    write_switch_journal,
)


def layout(tmp_path: Path) -> Dict[str, Path]:
    root = tmp_path / "opt"
    etc = tmp_path / "etc"
    cache = tmp_path / "cache"
    for directory in (root, etc, cache):
        directory.mkdir()
    return {"root": root, "etc": etc, "cache": cache, "profile": etc / "p.sh"}


def places(paths: Dict[str, Path], tmp_path: Path) -> Places:
    return Places(
        prefix_parent=paths["root"],
        activation_files=[paths["profile"]],
        cache_dir=paths["cache"],
        build_dir=tmp_path / "build",
    )


def version(root: Path, name: str) -> Path:
    prefix = root / name
    (prefix / "lib").mkdir(parents=True)
    (prefix / MANIFEST_NAME).write_text("{}")
    return prefix


def names(directory: Path) -> List[str]:
    return sorted(os.listdir(str(directory)))


def test_what_a_killed_run_leaves_is_removed_or_put_back(tmp_path: Path) -> None:
    paths = layout(tmp_path)
    root = paths["root"]
    installed = version(root, "3.44.2")
    staging_dir(root / "3.52.0").mkdir()
    # the old 3.45.0 moved aside, the new one not yet renamed in: it comes back
    moved = version(root, "3.45.0")
    os.rename(str(moved), str(backup_path(moved)))
    # the old 3.44.2 moved aside and the new one in place: the old one goes
    version(root, ".scratch")
    os.rename(str(root / ".scratch"), str(backup_path(installed)))
    os.symlink("3.44.2", str(root / f".current.{os.getpid()}.tmp"))  # swap_symlink's new link
    (paths["etc"] / ".p.sh.k3j2.tmp").write_text("half")  # write_atomic's temporary file
    (paths["cache"] / ".sqlite-autoconf-3520000.tar.gz.x1.part").write_bytes(b"12")
    (root / "3.46.0").mkdir()  # what an uninstall killed after its manifest left

    done = recover(places(paths, tmp_path))

    assert names(root) == ["3.44.2", "3.45.0"], done
    assert (root / "3.45.0" / MANIFEST_NAME).exists()
    assert names(paths["etc"]) == []
    assert names(paths["cache"]) == []
    assert len(done) == 7, done
    assert recover(places(paths, tmp_path)) == []  # a second pass finds nothing


def test_what_is_not_a_leftover_of_ours_is_left_alone(tmp_path: Path) -> None:
    paths = layout(tmp_path)
    root = paths["root"]
    version(root, "3.44.2")
    (root / "current").symlink_to("3.44.2")
    (root / "notes.tmp").write_text("the operator's")
    (root / ".current.1.tmp").write_text("a file, not a link of ours")
    (root / ".other.1.tmp").symlink_to("3.44.2")
    (root / "3.46.0").mkdir()
    (root / "3.46.0" / "README").write_text("not empty")
    (paths["etc"] / ".p.sh.bak").write_text("a backup the operator made")
    (paths["etc"] / ".q.sh.k3j2.tmp").write_text("another file's temporary sibling")
    (paths["cache"] / "sqlite-autoconf-3440200.tar.gz").write_bytes(b"verified")
    before = {d: names(d) for d in (root, paths["etc"], paths["cache"])}

    assert recover(places(paths, tmp_path)) == []
    assert {d: names(d) for d in before} == before


def killed_inside(write: Callable[[], None]) -> None:
    """Run `write` in a child that SIGKILLs itself where it would rename: no handler, no
    cleanup, as the OOM killer or a power cut would stop it."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns

        def die(*_args: object, **_kwargs: object) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        os.replace = os.rename = die  # type: ignore[assignment]
        try:
            write()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def test_the_names_recovery_knows_are_the_ones_the_writers_make(tmp_path: Path) -> None:
    """A kill inside write_atomic or swap_symlink leaves the sibling they made; recovery knows it
    by the writers' own naming."""
    paths = layout(tmp_path)
    killed_inside(lambda: write_atomic(paths["profile"], b"x"))
    killed_inside(lambda: swap_symlink(paths["root"] / "current", "3.44.2"))
    left = names(paths["etc"]) + names(paths["root"])
    assert len(left) == 2 and all(name.endswith(".tmp") for name in left), left

    done = recover(places(paths, tmp_path))

    assert names(paths["etc"]) == [] and names(paths["root"]) == [], done
    assert len(done) == 2, done


def test_a_killed_rollback_is_put_back_as_its_journal_says(tmp_path: Path) -> None:
    """A rollback killed between its two links, or before its verification ended: `current` and
    `previous` name again what they named before it, and its journal goes."""
    paths = layout(tmp_path)
    root = paths["root"]
    version(root, "3.44.2")
    version(root, "3.52.0")
    write_switch_journal(root, "3.52.0", "3.44.2")  # written before the switch began
    swap_symlink(root / "current", "3.44.2")  # killed after the first of the two links
    swap_symlink(root / "previous", "3.44.2")
    (root / f".{SWITCH_JOURNAL}.x9.tmp").write_text("half")  # a later journal, half written

    done = recover(places(paths, tmp_path))

    assert os.readlink(str(root / "current")) == "3.52.0"
    assert os.readlink(str(root / "previous")) == "3.44.2"
    assert names(root) == ["3.44.2", "3.52.0", "current", "previous"], done
    assert len(done) == 2 and "a killed rollback" in done[1], done
    assert recover(places(paths, tmp_path)) == []


def test_a_journal_of_a_rollback_from_no_current_removes_the_link(tmp_path: Path) -> None:
    paths = layout(tmp_path)
    root = paths["root"]
    version(root, "3.44.2")
    write_switch_journal(root, "", "3.44.2")
    swap_symlink(root / "current", "3.44.2")
    recover(places(paths, tmp_path))
    assert names(root) == ["3.44.2", "previous"]
    assert os.readlink(str(root / "previous")) == "3.44.2"
