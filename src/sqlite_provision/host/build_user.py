"""Who runs the build. As root, configure, make and `make install DESTDIR=...` run a 9 MB
generated C file and a shell script from a download, so they run as an unprivileged user
(`nobody` unless --build-user names another) through setpriv, as rpmbuild, makepkg and
Homebrew never build as root. Root keeps yum, reading the verified tarball, taking the staged
tree over (root:root, nothing writable by group or others) and activation.

A user that cannot be had (no such user, uid 0, no setpriv) is exit 3, said with the fix.
"""

import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from sqlite_provision.errors import HostError, UsageError

DEFAULT_BUILD_USER = "nobody"


@dataclass(frozen=True)
class BuildUser:
    name: str
    uid: int
    gid: int
    setpriv: str  # the setpriv binary (util-linux): drops to uid/gid, no groups, no new privs

    def wrap(self, argv: List[str]) -> List[str]:
        """`argv` as the build user runs it: setpriv sets the ids and execs (same pid, so the
        runner's process-group handling and exit status are argv's own)."""
        return [
            self.setpriv,
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
            *argv,
        ]


def find_build_user(requested: Optional[str], euid: int) -> Optional[BuildUser]:
    """The build user of this run: None when the tool is not root (it builds as itself)."""
    if euid != 0:
        if requested:
            raise UsageError(
                f"--build-user {requested} needs root (this run builds as uid {euid} already)",
                hint="drop --build-user, or run as root",
            )
        return None
    name = requested or DEFAULT_BUILD_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise HostError(
            f"cannot build as {name}: there is no such user on this host (as root, the build "
            "runs as an unprivileged user)",
            hint=f"create it (useradd --system --no-create-home {name}), or name an existing "
            "unprivileged user with --build-user",
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise HostError(
            f"cannot build as {name}: its uid or gid is 0, and the build never runs as root",
            hint="name an unprivileged user with --build-user",
        )
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise HostError(
            f"cannot build as {name}: setpriv is not installed (as root, the build runs as an "
            "unprivileged user through setpriv)",
            hint="install util-linux (yum install -y util-linux), which provides setpriv",
        )
    return BuildUser(name, entry.pw_uid, entry.pw_gid, setpriv)


def build_owner_uids(requested: Optional[str], euid: int) -> List[int]:
    """Whose build directory a dead run may have left: this user's, and, as root, the build
    user's (never raises: a run that cannot build has nothing of its own to recover)."""
    uids = [euid]
    if euid == 0:
        try:
            uids.append(pwd.getpwnam(requested or DEFAULT_BUILD_USER).pw_uid)
        except KeyError:
            pass
    return uids


def can_search(info: os.stat_result, user: BuildUser) -> bool:
    """The user may pass through a directory with this stat (mode bits; ACLs aside)."""
    mode = info.st_mode
    if info.st_uid == user.uid:
        return bool(mode & stat.S_IXUSR)
    if info.st_gid == user.gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def check_reachable(build_dir: Path, user: BuildUser) -> None:
    """The build user must reach the build directory, which root creates and hands over: every
    existing directory above it must let the user pass (a TMPDIR under /root does not)."""
    for directory in reversed(build_dir.parents):
        try:
            info = os.stat(str(directory))
        except FileNotFoundError:
            break
        if not can_search(info, user):
            raise HostError(
                f"the build runs as {user.name}, who cannot reach {build_dir}: {directory} "
                f"(mode {stat.S_IMODE(info.st_mode):04o}, uid {info.st_uid}) lets only its "
                "owner through",
                hint="set TMPDIR to a directory every user can reach (e.g. TMPDIR=/var/tmp), "
                "or name a --build-user who can reach it",
            )


def hand_over(top: Path, user: BuildUser) -> None:
    """Give `top` and everything below it (never following a link) to the build user."""
    os.lchown(str(top), user.uid, user.gid)
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), user.uid, user.gid)


def take_back(directory: Path) -> None:
    """After `make install`: the build directory is root's again (mode 0700), so that nothing
    the build user left running can reach into it while root copies the result out. Opened
    through no link: the entry in TMPDIR was the build user's until now."""
    descriptor = os.open(str(directory), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(descriptor, os.geteuid(), os.getegid())
        os.fchmod(descriptor, 0o700)
    finally:
        os.close(descriptor)
