"""Renders the activation files from templates/ and writes them atomically with explicit modes."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Callable, Optional, Tuple

from sqlite_provision import __version__
from sqlite_provision.errors import UsageError

PROFILE_TEMPLATE = "profile.sh.j2"
# Paths go into shell snippets verbatim; refusing odd characters beats quoting them for every shell.
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@-]*$")


def templates_dir() -> Path:
    """templates/ ships inside the wheel as sqlite_provision/templates; in a source checkout it is
    the repository's top-level templates/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("sqlite-provision templates are missing from the installation")


def check_safe_path(path: Path, what: str) -> None:
    if not SAFE_PATH.match(str(path)):
        raise UsageError(
            f"{what} {str(path)!r} must be an absolute path of letters, digits and ._/+@-",
            hint="choose a plain path such as /opt/sqlite",
        )


def render(template: str, **values: str) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - shell text, not HTML; inserted paths are checked
    )
    return env.get_template(template).render(tool_version=__version__, **values)


def render_profile(lib_dir: Path, sqlite_version: str) -> str:
    check_safe_path(lib_dir, "library directory")
    return render(PROFILE_TEMPLATE, lib_dir=str(lib_dir), sqlite_version=sqlite_version)


def read_bytes(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same directory, fsync, then rename over the target, so that a
    reader (a login shell) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, str(path))
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def restore(
    path: Path,
    previous: Optional[bytes],
    mode: int = 0o644,
    owner: Optional[Tuple[int, int]] = None,
) -> None:
    """Put back what was there before the run: the old bytes (with their mode and, given
    `owner`, their uid and gid), or nothing."""
    if previous is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    else:
        write_atomic(path, previous, mode)
        if owner is not None and owner != (os.getuid(), os.getgid()):
            os.chown(str(path), owner[0], owner[1])


def file_metadata(path: Path) -> Tuple[int, Tuple[int, int]]:
    """(permission bits, (uid, gid)) of an existing file, to restore it exactly."""
    info = os.stat(str(path))
    return stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def swap_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` atomically: a new link renamed over the old one."""
    tmp = link.parent / f".{link.name}.{os.getpid()}.tmp"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, str(tmp))
    try:
        os.replace(str(tmp), str(link))
    except BaseException:
        tmp.unlink()
        raise
    fsync_dir(link.parent)


def read_link(link: Path) -> Optional[str]:
    try:
        return os.readlink(str(link))
    except OSError:
        return None


def set_link(link: Path, target: Optional[str]) -> Callable[[], None]:
    """Point link at target (None removes it) atomically; return how to put it back."""
    before = read_link(link)
    if target is None:
        if before is not None:
            os.unlink(str(link))
    else:
        swap_symlink(link, target)

    def undo() -> None:
        set_link(link, before)

    return undo
