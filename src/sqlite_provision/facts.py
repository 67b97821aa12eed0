"""Host facts, gathered once and read-only. Probes are a command plus a pure parser."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Tuple

from sqlite_provision.options import ENV_OS_ROOT, default_jobs, is_root

RHEL_IDS = frozenset({"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn", "cloudlinux"})
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

    @property
    def major(self) -> str:
        return self.version.split(".", 1)[0]


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

    def smoke_tools(self) -> Tuple[Tuple[str, ...], ...]:
        """The host's package tools, as the smoke test runs them. `rpm -qa` reads the whole
        database (SQLite on RHEL 9) and, unlike `rpm -q rpm`, succeeds on any database, even one
        where rpm is not itself a package (containers, the pseudo-RHEL test roots)."""
        tools = []
        if self.rpm:
            tools.append(("rpm", "-qa"))
        if self.dnf:
            tools.append(("dnf", "--version"))
        if self.yum and os.path.realpath(self.yum) != os.path.realpath(self.dnf or ""):
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


def gather(env: Mapping[str, str] = os.environ) -> Facts:
    path = env.get("PATH", os.defpath)
    return Facts(
        os=read_os(env.get(ENV_OS_ROOT) or "/"),
        root=is_root(),
        gcc=shutil.which("gcc", path=path),
        make=shutil.which("make", path=path),
        yum=shutil.which("yum", path=path),
        dnf=shutil.which("dnf", path=path),
        cpus=default_jobs(),
        rpm=shutil.which("rpm", path=path),
    )


def installed_link_target(link: Optional[Path]) -> Optional[str]:
    if link is None:
        return None
    try:
        return os.readlink(str(link))
    except OSError:
        return None
