"""The host as it is: the OS, root or not, the build and package tools, CPUs, systemd, arch and
glibc. Gathered once per run, read-only; nothing here runs a command."""

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision.config import Environment, is_root

# distro reports Oracle Linux (ID=ol) as "oracle".
RHEL_IDS = frozenset(
    {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "oracle", "amzn", "cloudlinux"}
)
RHEL_LIKE = frozenset({"rhel", "centos", "fedora"})


@dataclass(frozen=True)
class OsInfo:
    id: str
    version: str
    like: Tuple[str, ...]
    name: str

    @property
    def rhel_family(self) -> bool:
        return self.id in RHEL_IDS or bool(RHEL_LIKE.intersection(self.like))


@dataclass(frozen=True)
class Facts:
    os: OsInfo
    root: bool
    gcc: Optional[str]
    make: Optional[str]
    yum: Optional[str]
    dnf: Optional[str]
    cpus: int
    rpm: Optional[str] = None
    systemd_running: bool = False
    arch: str = ""
    glibc: Optional[Tuple[int, ...]] = None
    yum_is_dnf: bool = False  # yum is a link to dnf (RHEL 8 on): one tool, smoke-tested once

    def smoke_tools(self) -> Tuple[Tuple[str, ...], ...]:
        """The host's package tools, as the smoke test runs them. `rpm -qa` reads the whole
        database (SQLite on RHEL 9) and, unlike `rpm -q rpm`, succeeds on any database, even one
        where rpm is not itself a package (containers, the pseudo-RHEL test roots)."""
        tools = []
        if self.rpm:
            tools.append(("rpm", "-qa"))
        if self.dnf:
            tools.append(("dnf", "--version"))
        if self.yum and not self.yum_is_dnf:
            tools.append(("yum", "--version"))
        return tuple(tools)

    @property
    def compiler_missing(self) -> Tuple[str, ...]:
        return tuple(n for n, p in (("gcc", self.gcc), ("make", self.make)) if p is None)

    @property
    def package_manager(self) -> Optional[str]:
        """`yum` as the issue and RHEL docs say; `dnf` only where there is no yum."""
        if self.yum:
            return "yum"
        if self.dnf:
            return "dnf"
        return None


def read_os(root: str = "/") -> OsInfo:
    """Read the OS through distro, pointed at `root` (tests use a fake root with a RHEL
    os-release). The module-level distro functions always read the real host."""
    import distro

    try:
        dist = distro.LinuxDistribution(
            include_lsb=False, include_uname=False, root_dir=root, include_oslevel=False
        )
    except TypeError:  # distro < 1.8 has no root_dir/include_oslevel
        dist = distro.LinuxDistribution(
            include_lsb=False, os_release_file=os.path.join(root, "etc/os-release")
        )
    like = tuple(dist.like().split()) if dist.like() else ()
    return OsInfo(id=dist.id(), version=dist.version(), like=like, name=dist.name(pretty=True))


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def glibc_version() -> Optional[Tuple[int, ...]]:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    if not text.startswith("glibc "):
        return None
    try:
        return tuple(int(p) for p in text.split()[1].split("."))
    except ValueError:
        return None


def gather(env: Environment) -> Facts:
    """The host as the environment `env` shows it: the tools on its PATH, the OS of its root."""
    path = env.search_path
    yum, dnf = shutil.which("yum", path=path), shutil.which("dnf", path=path)
    return Facts(
        os=read_os(str(env.paths.os_root)),
        root=is_root(),
        gcc=shutil.which("gcc", path=path),
        make=shutil.which("make", path=path),
        yum=yum,
        dnf=dnf,
        cpus=cpu_count(),
        rpm=shutil.which("rpm", path=path),
        systemd_running=os.path.isdir("/run/systemd/system"),
        arch=platform.machine(),
        glibc=glibc_version(),
        yum_is_dnf=bool(yum) and os.path.realpath(yum or "") == os.path.realpath(dnf or ""),
    )


# The start-up files that may source a snippet kept elsewhere than /etc/profile.d.
SHELL_STARTUP = ("/etc/profile", "/etc/bashrc", "/etc/bash.bashrc", "~/.profile", "~/.bash_profile",
                 "~/.bash_login", "~/.bashrc", "~/.zprofile", "~/.zshrc")  # fmt: skip
PROFILE_D = "/etc/profile.d"


def profile_readers(profile: Path, home: Path) -> List[str]:
    """What reads the profile snippet: login shells when it is in /etc/profile.d, else the shell
    start-up files (the user's under `home`) that name it. Empty when nothing does (yet)."""
    if str(profile.parent) == PROFILE_D and profile.suffix == ".sh":
        return [f"login shells ({PROFILE_D})"]
    found = []
    for name in SHELL_STARTUP:
        path = home / name[2:] if name.startswith("~/") else Path(name)
        try:
            if str(profile) in path.read_text(encoding="utf-8", errors="replace"):
                found.append(name)
        except OSError:
            continue
    return found
