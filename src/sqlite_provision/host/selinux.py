"""SELinux as the host has it, read through the runner: whether it is enabled (`selinuxenabled`,
asked only where the kernel shows selinuxfs, so that a host without SELinux runs no new command),
where restorecon, semanage and matchpathcon are, the type the policy gives the new library's
path (`matchpathcon -n`), and whether the local store already holds an equivalence rule for the
prefix root (`semanage fcontext -l -C`). And what the run does with that (`Labelling`): relabel,
add the rule `semanage fcontext -a -e /usr ROOT` where the policy's type for ROOT/VERSION/lib is
not a library type, or stop (exit 3) for a missing tool that cannot be installed."""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sqlite_provision.errors import HostError
from sqlite_provision.runner import Runner

SELINUXFS = Path("/sys/fs/selinux")
XATTR = "security.selinux"
EQUIVALENT_TO = "/usr"  # what the Software Collections guide makes a tree's root equal to
# The types a confined domain may map a shared library from (RHEL's libraries.fc, miscfiles).
LIBRARY_TYPES = frozenset({"lib_t", "shlib_t", "textrel_shlib_t", "ld_so_t"})
RESTORECON_PACKAGE = "policycoreutils"
MATCHPATHCON_PACKAGE = "libselinux-utils"


def semanage_package(major: str) -> str:
    """semanage's package: policycoreutils-python on RHEL 7, -python-utils from RHEL 8 on."""
    return "policycoreutils-python" if major == "7" else "policycoreutils-python-utils"


@dataclass(frozen=True)
class SELinux:
    """What the host's SELinux is, for one prefix root. Disabled: nothing else was asked."""

    enabled: bool = False
    restorecon: Optional[str] = None
    semanage: Optional[str] = None
    matchpathcon: Optional[str] = None
    library_type: Optional[str] = None  # the policy's type for PREFIX/lib/libsqlite3.so.0
    rule: Optional[str] = None  # the local store's equivalence for the root: its target


SELINUX_ABSENT = SELinux()


def context_type(context: str) -> Optional[str]:
    """`system_u:object_r:lib_t:s0` -> `lib_t`; None for `<<none>>` or anything else."""
    parts = context.strip().strip("\0").split(":")
    return parts[2] if len(parts) >= 3 and parts[2] else None


def parse_equivalences(text: str) -> Dict[str, str]:
    """`semanage fcontext -l -C -n`'s equivalence lines (`/srv/sqlite = /usr`): path -> target."""
    found = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" = ")
        if sep and left.strip().startswith("/") and right.strip().startswith("/"):
            found[left.strip()] = right.strip()
    return found


def file_type(path: Path) -> Optional[str]:
    """The type in a file's own `security.selinux` attribute (not following a last link), or
    None where it has none (a filesystem or a kernel without labels)."""
    try:
        raw = os.getxattr(str(path), XATTR, follow_symlinks=False)
    except OSError:
        return None
    return context_type(raw.decode("utf-8", "replace"))


def is_enabled(runner: Runner, search_path: str) -> bool:
    """`selinuxenabled` exits 0; asked only where selinuxfs is there to be asked about."""
    tool = shutil.which("selinuxenabled", path=search_path)
    if not SELINUXFS.is_dir() or tool is None:
        return False
    return runner.capture([tool], timeout=30).returncode == 0


def default_type(runner: Runner, matchpathcon: str, path: Path) -> Optional[str]:
    """The policy's type for `path` (which need not exist), as matchpathcon answers."""
    done = runner.capture([matchpathcon, "-n", str(path)], timeout=60)
    return context_type(done.stdout) if done.returncode == 0 else None


def probe(runner: Runner, search_path: str, root: Path, library: Path) -> SELinux:
    """The host's SELinux for a tree under `root` whose library will be `library`."""
    if not is_enabled(runner, search_path):
        return SELINUX_ABSENT
    tools = {
        n: shutil.which(n, path=search_path) for n in ("restorecon", "semanage", "matchpathcon")
    }
    wanted = default_type(runner, tools["matchpathcon"], library) if tools["matchpathcon"] else None
    rule = None
    if tools["semanage"]:
        listed = runner.capture([tools["semanage"], "fcontext", "-l", "-C", "-n"], timeout=120)
        rule = parse_equivalences(listed.stdout).get(str(root).rstrip("/") or "/")
    return SELinux(
        True, tools["restorecon"], tools["semanage"], tools["matchpathcon"], wanted, rule
    )


@dataclass(frozen=True)
class Labelling:
    """What a run does for SELinux: nothing (disabled, or --no-selinux), or relabel what it
    writes, first adding the equivalence for `root` if `add_rule`; `packages` to install."""

    relabel: bool = False
    root: Optional[Path] = None  # the tree the equivalence is for
    add_rule: bool = False
    rule_existed: bool = False  # an equivalence for root was there before the tool came
    packages: Tuple[str, ...] = ()

    @property
    def recorded_rule(self) -> Optional[Dict[str, str]]:
        """What the activation record says of the rule, or None when there is none to say."""
        if self.root is None or not (self.add_rule or self.rule_existed):
            return None
        added = "sqlite-provision" if self.add_rule else "pre-existing"
        return {"path": str(self.root), "equal": EQUIVALENT_TO, "added_by": added}


NO_LABELLING = Labelling()


def plan_labelling(
    selinux: SELinux, wanted: bool, root: Path, major: str, can_install: Optional[str]
) -> Labelling:
    """What to do on this host; exit 3 for a missing tool that will not be installed
    (`can_install`: None, or why the tools cannot be installed here)."""
    if not selinux.enabled or not wanted:
        return NO_LABELLING
    if selinux.matchpathcon is None:
        raise missing_tools(["matchpathcon"], [MATCHPATHCON_PACKAGE], "")
    add_rule = selinux.rule is None and selinux.library_type not in LIBRARY_TYPES
    missing: List[str] = []
    packages: List[str] = []
    if selinux.restorecon is None:
        missing.append("restorecon")
        packages.append(RESTORECON_PACKAGE)
    if add_rule and selinux.semanage is None:
        missing.append("semanage")
        packages.append(semanage_package(major))
    if packages and can_install is not None:
        raise missing_tools(missing, packages, can_install)
    return Labelling(True, root, add_rule, selinux.rule is not None, tuple(packages))


def missing_tools(tools: List[str], packages: List[str], why: str) -> HostError:
    names = " and ".join(tools)
    command = "yum install -y " + " ".join(packages)
    return HostError(
        f"SELinux is enabled and {names} ({', '.join(packages)}) is missing{why}",
        hint=f"run `{command}` first, or pass --no-selinux to leave the labels as they are",
    )
