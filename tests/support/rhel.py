"""What the RHEL look-alikes of the tests share: RHEL 9's os-release and the compiler family
that must be absent until the tool's own `yum install -y gcc make` runs."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

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
