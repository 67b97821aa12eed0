"""Look-alike RHEL hosts whose own system libsqlite3 and python3 are the release's: the hosts this
tool exists for (../shared/testing/PSEUDO-RHEL.md, section 7).

| name  | base                                  | system SQLite                  | python3             |
|-------|---------------------------------------|--------------------------------|---------------------|
| rhel7 | this machine's `/` (an overlay)       | 3.7.17, RHEL 7's spec flags    | CPython 3.6 (pyenv) |
| rhel8 | this machine's `/` (an overlay)       | 3.26.0, RHEL 8's, with JSON1   | CPython 3.6 (pyenv) |
| rhel9 | a real Debian 11 root from mmdebstrap | 3.34.1, Debian 11's own        | 3.9.2, Debian 11's  |

(RHEL 7 stands for Amazon Linux 2 too: the same 3.7.17.) Each has its major's os-release,
redhat-release and system-release, owned by a `redhat-release` test-double RPM in an RHEL-style
rpm database (/var/lib/rpm); no gcc, cc, cpp, make or tclsh, the real compiler driver and make
being kept in /usr/hidden/ for the `gcc` and `make` doubles of the local dnf repository
(/srv/pseudo-rhel/repo, /etc/yum.repos.d/pseudo-rhel.repo) to link to; and `yum` is the real dnf:
a link to dnf-3 on 8 and 9, and on 7 (which has no dnf) a script running dnf on a private copy of
the base's own SQLite (/usr/lib/pseudo-rhel/yum), since Debian's libdnf calls
sqlite3_expanded_sql (3.14) and RHEL 7's real yum never loads SQLite through rpm. Where python3 is
replaced (7, 8), dnf keeps the base's python (as RHEL 8's dnf runs on platform-python). root's
dot files are RHEL's (no pyenv on a login shell's PATH).

Two steps make one, so that the same tree serves a chroot now and `podman import` later:

    parts = prepare_parts(LOOK_ALIKES["rhel8"], workdir)   # outside the root, once per session
    with LookAlikeRoot(LOOK_ALIKES["rhel8"], parts, tmp / "ns") as root:
        root.check(["python3", "-c", "import sqlite3; print(sqlite3.sqlite_version)"])  # 3.26.0

- `prepare_parts(spec, workdir)`: the dnf repository of that major's doubles (rpmbuild,
  createrepo_c), the system library built with the release's spec flags (support.system_sqlite,
  cached under build/system-sqlite/), and the base: `/`, or the Debian 11 tree unpacked once from
  `debian11_tarball()` (cached under build/look-alike/, keyed by its package list).
- `make_look_alike(tree, spec, parts, enter)` turns a writable tree into the look-alike, in place:
  `tree` is the root as this process sees it (every link in it resolved as the root would, by
  `inside`, never through this process's `/`), `enter(argv)` runs a command in it as root.
- `LookAlikeRoot` (a support.rhel_root.NamespacedRoot) mounts an overlay of the base on a tmpfs in
  private mount, PID, UTS and IPC namespaces, with proc, /dev, a tmpfs /tmp and /run, and calls
  make_look_alike on it: nothing is written outside the namespace, and it is gone with it. The
  network namespace is shared, so the loopback mirror on 127.0.0.1 is reachable inside. Enter
  it with `root.run/check` (nsenter + chroot) or from outside through `root.tree`.
- For podman: support.look_alike_trees unpacks a base into a directory, runs
  `make_look_alike(tree, spec, parts, chroot_runner(tree))` and keeps the tree under
  build/look-alike/trees/, which the fleet tier runs with `podman run --rootfs TREE:O` (an
  overlay: no import). make_look_alike copies CPython 3.6 into a tree that lacks it (at its own
  path: its RUNPATH names it). The 7 and 8 bases are then a Debian 12 tree (debian12_tarball):
  the system libraries and CPython 3.6 built on this machine need glibc 2.34, and Debian 11 has
  2.31.
"""

# Optional/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

from support import REPO_ROOT, unavailable
from support.interpreters import interpreter
from support.pseudo_rhel_image import DEBIAN_MIRROR_ENV, PYTHON36_SKIP
from support.rhel import COMPILER_GLOBS, RHEL_RELEASES, RhelRelease
from support.rhel_root import ROOT_PATH, NamespacedRoot, build_rpms, make_repo
from support.system_sqlite import build_system_sqlite

Enter = Callable[[Sequence[str]], str]  # runs argv as root inside the root, returns stdout

REPO_DIR = "/srv/pseudo-rhel/repo"
TOOLS_DIR = "/srv/pseudo-rhel"  # where a test puts the pyz and the application checks
YUM_DIR = "/usr/lib/pseudo-rhel/yum"  # RHEL 7's yum: dnf-3 and the base's own SQLite
HIDDEN_DIR = "/usr/hidden"  # one level below /usr: the gcc driver finds cc1 from there
MULTIARCH = f"{platform.machine()}-linux-gnu"
LIBRARY_LINK = f"/usr/lib/{MULTIARCH}/libsqlite3.so.0"

# The Debian 11 base: python3 3.9.2, SQLite 3.34.1, rpm 4.16.1, dnf 4.5.2 (RHEL 9's versions);
# gcc, make and libc6-dev to hide, python3-venv for venvs, and a CA bundle as every RHEL has.
DEBIAN11_SUITE = "bullseye"
DEBIAN12_SUITE = "bookworm"  # the podman base of the RHEL 7 and 8 look-alikes
DEBIAN11_PACKAGES = ("python3", "python3-venv", "rpm", "dnf", "gcc", "make", "libc6-dev",
                     "ca-certificates")  # fmt: skip
CACHE = REPO_ROOT / "build" / "look-alike"

PROBE = "import sqlite3; print(sqlite3.sqlite_version)"


@dataclass(frozen=True)
class LookAlike:
    name: str
    release: RhelRelease
    base: str  # "host" (an overlay of this machine's /) or "debian11"
    system_sqlite: str  # the version python3 loads with no environment
    build_library: bool  # build it with the release's spec flags (else: the base's own)
    python: Optional[str]  # "3.6": pyenv's CPython becomes /usr/bin/python3; None: the base's
    yum_own_sqlite: bool  # yum runs on a private copy of the base's library (see the docstring)
    older: Tuple[str, ...]  # catalog releases older than the system library
    app: str  # the key in support.apps.APPS of the application check that refuses it
    real_app: Optional[str] = None  # a key in support.apps.REAL_APPS, installable here

    @property
    def major(self) -> int:
        return self.release.major


LOOK_ALIKES = {
    "rhel7": LookAlike("rhel7", RHEL_RELEASES[7], "host", "3.7.17", True, "3.6", True, (),
                       "prefect2", "django32"),
    "rhel8": LookAlike("rhel8", RHEL_RELEASES[8], "host", "3.26.0", True, "3.6", False,
                       ("3.25.3", "3.24.0"), "django51"),
    "rhel9": LookAlike("rhel9", RHEL_RELEASES[9], "debian11", "3.34.1", False, None, False,
                       ("3.33.0",), "chromadb"),
}  # fmt: skip


@dataclass(frozen=True)
class Parts:
    """What a look-alike is made from, outside the root."""

    repo: Path  # the dnf repository of the major's doubles
    lower: Path  # the base tree
    library: Optional[Path]  # the system library to put in (lib/libsqlite3.so.0), if built
    python: Optional[str]  # the interpreter to make /usr/bin/python3 (its own path)


# --- the parts -----------------------------------------------------------------------------


def debian_key(suite: str = DEBIAN11_SUITE) -> str:
    recipe = json.dumps([suite, DEBIAN11_PACKAGES, bootstrap_excludes()])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def debian11_key() -> str:
    return debian_key(DEBIAN11_SUITE)


def bootstrap_excludes() -> List[str]:
    return [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")]


def debian11_tarball() -> Path:
    """build/look-alike/debian11-KEY.tar: `mmdebstrap --variant=minbase bullseye` with
    DEBIAN11_PACKAGES (about 40 s and 400 MB), made once per package list."""
    return debian_tarball(DEBIAN11_SUITE, "debian11")


def debian12_tarball() -> Path:
    """build/look-alike/debian12-KEY.tar: the same packages from bookworm (glibc 2.36), the base
    of the RHEL 7 and 8 look-alikes as podman roots (see the module docstring)."""
    return debian_tarball(DEBIAN12_SUITE, "debian12")


def debian_tarball(suite: str, name: str) -> Path:
    tarball = CACHE / f"{name}-{debian_key(suite)}.tar"
    if tarball.is_file():
        return tarball
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap is not installed (scripts/test installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get(DEBIAN_MIRROR_ENV) or "http://deb.debian.org/debian"
    partial = tarball.with_name(f"{tarball.name}.part{os.getpid()}.tar")
    argv = ["mmdebstrap", "--quiet", "--variant=minbase",
            "--include=" + ",".join(DEBIAN11_PACKAGES), *bootstrap_excludes(), suite,
            str(partial), mirror]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        if partial.exists():
            partial.unlink()
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    partial.replace(tarball)
    for old in CACHE.glob(f"{name}-*.tar"):
        if old != tarball:
            old.unlink()
    return tarball


def unpack(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "-C", str(dest), "-xf", str(tarball)], check=True)
    return dest


def prepare_parts(spec: LookAlike, workdir: Path, debian11: Optional[Path] = None) -> Parts:
    """The parts of `spec` under `workdir`; `debian11` is the unpacked Debian 11 tree, which
    look-alikes on it may share (it is only ever a read-only lower layer)."""
    repo = make_repo(workdir / "repo", build_rpms(workdir / "rpmbuild", spec.release))
    library = None
    if spec.build_library:
        library = build_system_sqlite(spec.system_sqlite, workdir / "system-sqlite")
    python = None
    if spec.python:
        python = interpreter(spec.python)
        if python is None:
            unavailable(f"no CPython {spec.python} under pyenv: {spec.name}'s python3")
    if spec.base == "host":
        lower = Path("/")
    else:
        lower = debian11 or unpack(debian11_tarball(), workdir / "debian11")
    return Parts(repo, lower, library, python)


# --- paths inside a tree --------------------------------------------------------------------


def inside(tree: Path, path: str, follow: bool = False) -> Path:
    """`path` of the root at `tree`, as the root itself resolves it: every link among the
    parents (and the last component too if `follow`) is followed inside the tree, an absolute
    link from the tree's top. Never through this process's `/`."""
    pending = [p for p in path.split("/") if p]
    resolved: List[str] = []
    hops = 0
    while pending:
        name = pending.pop(0)
        if name == ".":
            continue
        if name == "..":
            resolved = resolved[:-1]
            continue
        candidate = tree.joinpath(*resolved, name)
        if candidate.is_symlink() and (pending or follow):
            hops += 1
            if hops > 40:
                raise RuntimeError(f"too many links resolving {path} in {tree}")
            target = os.readlink(str(candidate))
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        resolved.append(name)
    return tree.joinpath(*resolved)


def remove(tree: Path, path: str) -> None:
    found = inside(tree, path)
    if found.is_symlink() or found.is_file():
        found.unlink()
    elif found.is_dir():
        shutil.rmtree(str(found))


def write(tree: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = inside(tree, path)
    remove(tree, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(mode)


def link(tree: Path, path: str, to: str) -> None:
    remove(tree, path)
    inside(tree, path).symlink_to(to)


def copy_in(tree: Path, source: Path, path: str, mode: int = 0o755) -> None:
    """A file of this machine (links followed) to `path` in the tree."""
    target = inside(tree, path)
    remove(tree, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(str(source), str(target))
    target.chmod(mode)


# --- making one -----------------------------------------------------------------------------

REPO_FILE = """\
[pseudo-rhel-local]
name=pseudo-RHEL {major} local repository of test doubles
baseurl=file://{repo}
enabled=1
gpgcheck=0
metadata_expire=0
"""

# RHEL 7's yum, played by the base's dnf on the base's own SQLite (see the module docstring).
YUM7 = """\
#!/bin/sh
# pseudo-RHEL 7 yum: the base's dnf, on the base's own libsqlite3 (Debian's libdnf needs 3.14+;
# RHEL 7's yum never loads the 3.7.17 system library through rpm).
LD_LIBRARY_PATH={yum_dir}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}
export LD_LIBRARY_PATH
exec {python} {yum_dir}/dnf-3 "$@"
"""

# root's dot files as RHEL ships them (/etc/skel and root's .bashrc), without this machine's
# pyenv: a login shell's python3 is /usr/bin/python3.
BASH_PROFILE = """\
# .bash_profile
if [ -f ~/.bashrc ]; then
	. ~/.bashrc
fi
"""
BASHRC = """\
# .bashrc
alias rm='rm -i'
alias cp='cp -i'
alias mv='mv -i'
if [ -f /etc/bashrc ]; then
	. /etc/bashrc
fi
"""


def make_look_alike(tree: Path, spec: LookAlike, parts: Parts, enter: Enter) -> None:
    """Turn the writable root at `tree` into `spec`'s look-alike; see the module docstring."""
    identity(tree, spec.release)
    hide_compiler(tree)
    base_python = package_tools(tree, spec, parts.repo)
    system_library(tree, spec, parts.library)
    python3(tree, parts.python, base_python)
    for name in (".bashrc", ".profile", ".bash_profile", ".bash_login"):
        remove(tree, f"/root/{name}")
    write(tree, "/root/.bash_profile", BASH_PROFILE)
    write(tree, "/root/.bashrc", BASHRC)
    enter(["ldconfig"])
    doubles = [f"{REPO_DIR}/{p.name}" for p in sorted(parts.repo.glob("*.rpm"))
               if p.name.startswith(("redhat-release-", "rpm-"))]  # fmt: skip
    enter(["rpm", "-i", "--nodeps", *doubles])
    check_look_alike(spec, enter)


def identity(tree: Path, release: RhelRelease) -> None:
    """No Debian identity left; the redhat-release double brings /etc/os-release,
    /etc/redhat-release and /etc/system-release (installed by make_look_alike)."""
    for path in ("/etc/os-release", "/etc/redhat-release", "/etc/system-release",
                 "/etc/debian_version", "/etc/lsb-release"):  # fmt: skip
        remove(tree, path)
    write(tree, "/usr/lib/os-release", release.os_release)


def hide_compiler(tree: Path) -> None:
    """gcc and make to /usr/hidden/; the whole compiler family off every bin directory."""
    for tool in ("gcc", "make"):
        real = inside(tree, f"/usr/bin/{tool}", follow=True)
        if not real.is_file():
            raise RuntimeError(f"the base has no {tool} to hide (at {real})")
        copy_in(tree, real, f"{HIDDEN_DIR}/{tool}")
    for directory in ("/usr/bin", "/usr/local/bin", "/etc/alternatives"):
        found = inside(tree, directory, follow=True)
        if not found.is_dir():
            continue
        for pattern in COMPILER_GLOBS:
            for path in found.glob(pattern):
                if path.is_symlink() or path.is_file():
                    path.unlink()


def package_tools(tree: Path, spec: LookAlike, repo: Path) -> str:
    """The dnf repository, rpm's database in the system, and yum; returns the base's python
    (the one dnf runs on)."""
    shutil.copytree(str(repo), str(inside(tree, REPO_DIR)))
    write(tree, "/etc/yum.repos.d/pseudo-rhel.repo", REPO_FILE.format(major=spec.major,
                                                                      repo=REPO_DIR))  # fmt: skip
    # RHEL keeps the rpm database in the system; Debian's rpm defaults to ~/.rpmdb.
    write(tree, "/etc/rpm/macros.dbpath", "%_dbpath /var/lib/rpm\n")
    inside(tree, "/var/lib/rpm").mkdir(parents=True, exist_ok=True)
    base_python = "/usr/bin/" + os.readlink(str(inside(tree, "/usr/bin/python3")))
    dnf = inside(tree, "/usr/bin/dnf-3").read_text(encoding="utf-8")
    dnf = dnf.replace("#!/usr/bin/python3\n", f"#!{base_python}\n", 1)
    if spec.yum_own_sqlite:
        library = inside(tree, LIBRARY_LINK, follow=True)
        copy_in(tree, library, f"{YUM_DIR}/libsqlite3.so.0", 0o644)
        write(tree, f"{YUM_DIR}/dnf-3", dnf, 0o755)
        write(tree, "/usr/bin/yum", YUM7.format(yum_dir=YUM_DIR, python=base_python), 0o755)
        for name in ("dnf", "dnf-3"):
            remove(tree, f"/usr/bin/{name}")
    else:
        write(tree, "/usr/bin/dnf-3", dnf, 0o755)
        link(tree, "/usr/bin/yum", "dnf-3")
    return base_python


def system_library(tree: Path, spec: LookAlike, library: Optional[Path]) -> None:
    """The release's library in place of the base's, under the same file name."""
    if library is None:
        return
    current = inside(tree, LIBRARY_LINK, follow=True)
    built = Path(os.path.realpath(str(library)))
    if current.name != built.name:
        raise RuntimeError(f"the base's {current.name} is not the build's {built.name}")
    copy_in(tree, built, str(current.relative_to(tree)), 0o644)


def python3(tree: Path, python: Optional[str], base_python: str) -> None:
    """/usr/bin/python3 -> python3.X -> the interpreter, copied into the tree at its own path
    when the tree lacks it."""
    if python is None:
        return
    prefix = Path(python).parent.parent
    if not inside(tree, python).exists():
        shutil.copytree(str(prefix), str(inside(tree, str(prefix))), symlinks=True,
                        ignore=shutil.ignore_patterns(*PYTHON36_SKIP))  # fmt: skip
    name = os.path.basename(python)
    if f"/usr/bin/{name}" == base_python:
        raise RuntimeError(f"{python} would replace the base's own {base_python}")
    link(tree, f"/usr/bin/{name}", python)
    link(tree, "/usr/bin/python3", name)


def check_look_alike(spec: LookAlike, enter: Enter) -> None:
    """What every look-alike promises before a test starts."""
    script = 'for t in gcc cc c99 cpp make gmake tclsh; do command -v "$t" || true; done'
    found = enter(["sh", "-c", script]).split()
    if found:
        raise RuntimeError(f"{spec.name} still has {found}")
    version = enter(["python3", "-c", PROBE]).strip()
    if version != spec.system_sqlite:
        raise RuntimeError(
            f"{spec.name}'s python3 loads SQLite {version}, not {spec.system_sqlite}"
        )
    enter(["rpm", "-q", "redhat-release", "rpm"])


def chroot_runner(tree: Path, env: Optional[Mapping[str, str]] = None) -> Enter:
    """`enter` for a plain directory: chroot, a clean environment, stdout back; fails loudly."""

    def run(argv: Sequence[str]) -> str:
        clean = {"PATH": ROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        full = ["chroot", str(tree), "/usr/bin/env", "-i",
                *[f"{k}={v}" for k, v in clean.items()], *argv]  # fmt: skip
        done = subprocess.run(full, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(full)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    return run


# --- entering one now -----------------------------------------------------------------------

# The holder: an overlay of LOWER on a tmpfs at BASE/root, with proc, /dev, /tmp and /run.
_SETUP = r"""
set -eu
base=$1 lower=$2 name=$3
mount -t tmpfs -o mode=0755 look-alike "$base"
mkdir "$base/upper" "$base/work" "$base/root"
root=$base/root
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$base/upper,workdir=$base/work" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mkdir -m 1777 "$root/run/lock"
mount --rbind /dev "$root/dev"
hostname "$name"
echo ready
exec sleep 2147483647
"""


class LookAlikeRoot(NamespacedRoot):
    """`spec`'s look-alike as a throw-away overlay of its base; see the module docstring."""

    what = "the look-alike root"

    def __init__(self, spec: LookAlike, parts: Parts, base: Path) -> None:
        super().__init__(base)
        self.spec = spec
        self.parts = parts

    def setup(self) -> List[str]:
        return [_SETUP, str(self.base), str(self.parts.lower), f"pseudo-{self.spec.name}"]

    def prepare(self) -> None:
        make_look_alike(self.tree, self.spec, self.parts, self.check)

    def __enter__(self) -> LookAlikeRoot:
        self.start()
        return self
