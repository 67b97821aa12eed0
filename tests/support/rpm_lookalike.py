"""What a look-alike's rpm database needs before a real package can go in: stand-in packages for
the system libraries RHEL's own packages provide, so that rpm and dnf resolve an RPM's automatic
Requires (`libc.so.6(GLIBC_2.34)(64bit)`, `libz.so.1()(64bit)`, `rtld(GNU_HASH)`) as on RHEL.

A look-alike's libraries are its base's (Debian's), which no package of its RHEL-style rpmdb
owns. Each stand-in is an empty package named as on RHEL (glibc, zlib, readline, sqlite-libs)
whose Provides are exactly what rpm's own dependency generator (elfdeps, the one rpmbuild ran
when Red Hat built glibc) reads from the root's real library files: the soname and every symbol
version the file defines. The glibc stand-in also provides `rtld(GNU_HASH)`, as glibc.spec
does. `glibc_max` makes a glibc older than the root's (RHEL 8's 2.28): the GLIBC_x.y versions
above it are left out, and rpm then refuses a package built against a newer glibc with its own
"Failed dependencies" message, as on a real RHEL 8.

    standins = build_standins(root.tree, workdir)                    # from the root's own files
    old = build_standins(root.tree, workdir / "old", glibc_max=(2, 28))
    install_standins(root, standins)                                 # rpm -i in the root
"""

# Optional/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from support import need_tool
from support.look_alike import MULTIARCH, copy_in, inside
from support.rhel_root import NamespacedRoot

# RHEL's package of each library an SQLite build (or its shell) needs, and the system library.
LD_SO = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}.get(
    platform.machine(), "ld-linux.so.2"
)
STANDINS: Dict[str, Tuple[str, ...]] = {
    "glibc": ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", LD_SO),
    "zlib": ("libz.so.1",),
    "readline": ("libreadline.so.8",),
    "sqlite-libs": ("libsqlite3.so.0",),
}
EXTRA_PROVIDES = {"glibc": ("rtld(GNU_HASH)",)}
LIBRARY_DIRS = (f"/usr/lib/{MULTIARCH}", f"/lib/{MULTIARCH}", "/usr/lib64", "/lib64", "/usr/lib")
STANDIN_DIR = "/srv/pseudo-rhel/standins"
GLIBC_VERSION = re.compile(r"\(GLIBC_([0-9]+(?:\.[0-9]+)*)\)")

SPEC = """\
Name: {name}
Version: {version}
Release: 0.standin
Summary: look-alike stand-in for RHEL's {name}: the Provides of the root's own {files}
License: MIT
BuildArch: {arch}
AutoReqProv: no
{provides}
%description
The root's {files} are its base's; this empty package gives the RHEL-style rpm database
what RHEL's {name} provides for them (read by rpm's elfdeps from the files themselves).

%files
"""


@dataclass(frozen=True)
class Standin:
    name: str
    version: str
    provides: Tuple[str, ...]
    rpm: Path


def find_library(tree: Path, soname: str) -> Optional[Path]:
    """The root's file for `soname` (links followed inside the root), or None."""
    for directory in LIBRARY_DIRS:
        found = inside(tree, f"{directory}/{soname}", follow=True)
        if found.is_file():
            return found
    return None


def elf_provides(path: Path) -> List[str]:
    """What rpmbuild would have the file provide: `rpm`'s own elfdeps --provides, in order,
    without repeats (it prints a version defined twice, once per definition)."""
    configdir = subprocess.run(["rpm", "--eval", "%{_rpmconfigdir}"], capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
    elfdeps = need_tool(os.path.join(configdir, "elfdeps"))
    done = subprocess.run([elfdeps, "--provides"], input=f"{path}\n", capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    seen: List[str] = []
    for line in done.stdout.splitlines():
        if line and line not in seen:
            seen.append(line)
    return seen


def glibc_key(provide: str) -> Optional[Tuple[int, ...]]:
    found = GLIBC_VERSION.search(provide)
    return tuple(int(p) for p in found.group(1).split(".")) if found else None


def standin_provides(
    tree: Path, name: str, glibc_max: Optional[Tuple[int, ...]] = None
) -> Tuple[str, List[str]]:
    """(version, provides) of `name`'s stand-in from the root's files; the version is the
    newest GLIBC_x.y for glibc (or glibc_max), else the library file's own (libz.so.1.2.13)."""
    provides: List[str] = list(EXTRA_PROVIDES.get(name, ()))
    version = ""
    for soname in STANDINS[name]:
        path = find_library(tree, soname)
        if path is None:
            continue
        for provide in elf_provides(path):
            key = glibc_key(provide)
            if glibc_max is not None and key is not None and key > glibc_max:
                continue
            provides.append(provide)
        if not version and ".so." in path.name:
            version = path.name.split(".so.", 1)[1]  # libz.so.1.2.13 -> 1.2.13
    if not [p for p in provides if p not in EXTRA_PROVIDES.get(name, ())]:
        raise RuntimeError(f"the root has none of {STANDINS[name]} for the {name} stand-in")
    glibc = [k for k in map(glibc_key, provides) if k]
    if name == "glibc":
        version = ".".join(map(str, glibc_max or max(glibc)))
    return version or "0", provides


def build_standins(
    tree: Path, workdir: Path, glibc_max: Optional[Tuple[int, ...]] = None,
    names: Sequence[str] = tuple(STANDINS), versions: Optional[Dict[str, str]] = None,
) -> Dict[str, Standin]:  # fmt: skip
    """Each stand-in of `names`, built with rpmbuild from the root at `tree`'s libraries;
    `versions` names a package's version where the file's name does not tell it (sqlite-libs:
    libsqlite3.so.0.8.6 is any 3.x)."""
    workdir.mkdir(parents=True, exist_ok=True)
    built: Dict[str, Standin] = {}
    for name in names:
        version, provides = standin_provides(tree, name, glibc_max)
        version = (versions or {}).get(name, version)
        files = ", ".join(STANDINS[name])
        spec = workdir / f"{name}.spec"
        spec.write_text(SPEC.format(name=name, version=version, files=files,
                                    arch=platform.machine(),
                                    provides="".join(f"Provides: {p}\n" for p in provides)),
                        encoding="utf-8")  # fmt: skip
        done = subprocess.run(
            ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {workdir / 'top'}",
             "--define", f"_tmppath {workdir / 'tmp'}", str(spec)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"rpmbuild of the {name} stand-in: {done.stderr}")
        rpm = workdir / "top" / "RPMS" / platform.machine()
        found = sorted(rpm.glob(f"{name}-{version}-0.standin.*.rpm"))
        if len(found) != 1:
            raise RuntimeError(f"rpmbuild made {found} for the {name} stand-in")
        built[name] = Standin(name, version, tuple(provides), found[0])
    return built


def install_standins(root: NamespacedRoot, standins: Dict[str, Standin]) -> None:
    """`rpm -i` them in the root (they require nothing); an older glibc replaces the one there."""
    paths = []
    for standin in standins.values():
        path = f"{STANDIN_DIR}/{standin.rpm.name}"
        copy_in(root.tree, standin.rpm, path, 0o644)
        paths.append(path)
        if root.run(["rpm", "-q", standin.name]).returncode == 0:
            root.check(["rpm", "-e", "--nodeps", standin.name])
    root.check(["rpm", "-i", *paths])


@contextlib.contextmanager
def build_user_dir() -> Iterator[Path]:
    """A directory for store/rpm.py's work directory that the build user (nobody, when the tests
    run as root) can reach: pytest's own tmp_path is under a 0700 directory of root's."""
    parent = Path(tempfile.mkdtemp(prefix="sqlite-provision-rpm-test-", dir="/tmp"))
    try:
        parent.chmod(0o755)
        yield parent
    finally:
        shutil.rmtree(str(parent), ignore_errors=True)
