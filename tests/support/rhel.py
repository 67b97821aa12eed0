"""What the RHEL look-alikes of the tests share: each major release's identity (os-release,
redhat-release, and the versions of the gcc, make, rpm and redhat-release packages its test
doubles carry), and the compiler family that must be absent until the tool's own
`yum install -y gcc make` runs."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

RHEL9_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
"""
REDHAT_RELEASE = "Red Hat Enterprise Linux release 9.4 (Plow)\n"

RHEL8_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux"
VERSION="8.10 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.10"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.10 (Ootpa)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"
HOME_URL="https://www.redhat.com/"
"""

RHEL7_OS_RELEASE = """\
NAME="Red Hat Enterprise Linux Server"
VERSION="7.9 (Maipo)"
ID="rhel"
ID_LIKE="fedora"
VARIANT="Server"
VARIANT_ID="server"
VERSION_ID="7.9"
PRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:redhat:enterprise_linux:7.9:GA:server"
HOME_URL="https://www.redhat.com/"
"""


@dataclass(frozen=True)
class RhelRelease:
    """One major release as its look-alikes show it: the files `redhat-release` owns and the
    (version, release) of each test-double package, as that release's own packages number them
    (make carries Epoch 1 on every major)."""

    major: int
    version: str  # VERSION_ID
    os_release: str
    redhat_release: str
    packages: Dict[str, Tuple[str, str]]  # name -> (version, release)

    @property
    def dist(self) -> str:
        return f"el{self.major}"


RHEL_RELEASES = {
    7: RhelRelease(
        7, "7.9", RHEL7_OS_RELEASE, "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
        {"gcc": ("4.8.5", "44.el7"), "make": ("3.82", "24.el7"),
         "redhat-release": ("7.9", "6.el7"), "rpm": ("4.11.3", "48.el7_9")},
    ),
    8: RhelRelease(
        8, "8.10", RHEL8_OS_RELEASE, "Red Hat Enterprise Linux release 8.10 (Ootpa)\n",
        {"gcc": ("8.5.0", "22.el8_10"), "make": ("4.2.1", "11.el8"),
         "redhat-release": ("8.10", "0.3.el8"), "rpm": ("4.14.3", "31.el8")},
    ),
    9: RhelRelease(
        9, "9.4", RHEL9_OS_RELEASE, REDHAT_RELEASE,
        {"gcc": ("11.4.1", "3.el9"), "make": ("4.3", "8.el9"),
         "redhat-release": ("9.4", "0.5.el9"), "rpm": ("4.16.1.3", "29.el9")},
    ),
}  # fmt: skip

# Compiler drivers, make, and tclsh (RHEL's minimal images have no Tcl; the 3.49+ configure would
# use it), with their versioned aliases. Globs on names in /usr/bin and friends.
COMPILER_GLOBS = (
    "gcc", "gcc-*", "cc", "c89", "c89-*", "c99", "c99-*", "cpp", "cpp-*",
    "x86_64-linux-gnu-gcc*", "x86_64-linux-gnu-cpp*", "make", "gmake", "tclsh*",
)  # fmt: skip
# The Debian host's own package tools, hidden where the fake yum must be the only one.
PACKAGE_TOOL_GLOBS = ("rpm", "rpm*", "dnf", "dnf-*", "yum", "yum-*")
SYSTEM_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")


def mirror_system_path(dest: Path) -> None:
    """Fill `dest` with links to every command of the system directories except the compiler
    family and the host's package tools: a PATH on which gcc is really absent. (A hand-picked
    minimal PATH breaks in odd ways: without `expr`, 3.44's configure loops forever.)"""
    hidden = COMPILER_GLOBS + PACKAGE_TOOL_GLOBS
    dest.mkdir()
    seen = set()
    for directory in SYSTEM_DIRS:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name in seen or any(fnmatch.fnmatchcase(name, p) for p in hidden):
                continue
            seen.add(name)
            os.symlink(os.path.join(directory, name), str(dest / name))
