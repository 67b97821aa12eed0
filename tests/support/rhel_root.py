"""The pseudo-RHEL tier's machinery: test-double RPMs, a local dnf repository, and a throw-away
RHEL 9 look-alike of the host's own root (../shared/testing/PSEUDO-RHEL.md). The tool comes
from a wheelhouse (tests/wheelhouse.py) built for the root's system python.

    repo = make_repo(tmp / "repo", build_rpms(tmp / "rpmbuild"))
    with PseudoRhelRoot(tmp / "ns", repo, wheelhouse) as root:
        root.run(["rpm", "-q", "gcc"])

A `PseudoRhelRoot` is an overlay of `/` (lowerdir=/, upper and work dirs on a tmpfs) mounted in
a private mount, PID, UTS and IPC namespace that one holder process keeps alive; every command
enters that namespace with nsenter and runs under `chroot`. Nothing is written to the host: the
overlay's writes land on the namespace's tmpfs, and the namespace (mounts, tmpfs, processes)
goes away with the holder. In the root:

- /etc/os-release, /etc/redhat-release and /etc/system-release say RHEL 9.4; they belong to the
  `redhat-release` double, installed into an RHEL-style rpm database (/var/lib/rpm) together
  with an empty `rpm` double, so `rpm -q rpm`, `rpm -qf /etc/os-release` and dnf's $releasever
  answer as on RHEL;
- gcc, cc, c89, c99, cpp, x86_64-linux-gnu-gcc*, make and tclsh* are gone (overlay whiteouts);
  the real compiler driver and make are copied to /usr/hidden/, one level below /usr so the
  driver still finds cc1, for the `gcc` and `make` doubles to link to;
- `yum` is a link to dnf-3, with the local repository in /etc/yum.repos.d (gpgcheck=0,
  metadata_expire=0), bind-mounted read-only at /srv/pseudo-rhel/repo;
- the wheelhouse is bind-mounted read-only at /srv/pseudo-rhel/wheels.

The network namespace is NOT unshared: the loopback mirror that the test process serves on
127.0.0.1 stays reachable from inside, so the tool downloads through its real HTTP path.
"""

# Optional/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from stat import S_IMODE, S_ISDIR, S_ISLNK, S_ISREG
from types import TracebackType
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Type

from support.rhel import COMPILER_GLOBS, RHEL_RELEASES, RhelRelease

# Where things live inside the root.
REPO_MOUNT = "/srv/pseudo-rhel/repo"
WHEELS_MOUNT = "/srv/pseudo-rhel/wheels"
HIDDEN_DIR = "/usr/hidden"
TOOL_VENV = "/opt/sqlite-provision-venv"
TOOL = TOOL_VENV + "/bin/sqlite-provision"
INNER_PYTHON = "/usr/bin/python3"  # the root's system python, as /usr/bin/python3 on RHEL
SETUP_TIMEOUT = 60.0  # seconds for the mounts and copies, normally well under one
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

HOST_TOOLS = (
    "unshare",
    "nsenter",
    "chroot",
    "mount",
    "rpm",
    "rpmbuild",
    "createrepo_c",
    "dnf-3",
    "gcc",
    "make",
    "as",
    "ld",
)

# What the root must not have before the tool runs: compiler drivers, make, and tclsh (RHEL's
# minimal images have no Tcl; the 3.49+ configure would use it). Globs in /usr/bin.


_SPEC_HEAD = """\
Name: {name}
Version: {version}
Release: {release}
Summary: pseudo-RHEL test double of {name}
License: MIT
BuildArch: noarch
# Without this rpmbuild adds Requires: /bin/sh, which the Debian rpm database cannot satisfy.
AutoReqProv: no
{extra}
%description
A test double of RHEL {major}'s {name} for sqlite-provision's pseudo-RHEL tier.

%install
mkdir -p %{{buildroot}}/usr/bin %{{buildroot}}/etc
{install}

%files
{files}
"""

# name -> (extra header lines, %install body, %files body); versions come from the release.
_DOUBLES = {
    "gcc": (
        "",
        "ln -s {hidden}/gcc %{{buildroot}}/usr/bin/gcc\nln -s gcc %{{buildroot}}/usr/bin/cc",
        "/usr/bin/gcc\n/usr/bin/cc",
    ),
    "make": (
        "Epoch: 1\n",
        "ln -s {hidden}/make %{{buildroot}}/usr/bin/make\nln -s make %{{buildroot}}/usr/bin/gmake",
        "/usr/bin/make\n/usr/bin/gmake",
    ),
    "redhat-release": (
        "Provides: system-release = {version}\nProvides: system-release(releasever) = {major}\n",
        "cat > %{{buildroot}}/etc/os-release <<'EOF'\n{os_release}EOF\n"
        "cat > %{{buildroot}}/etc/redhat-release <<'EOF'\n{redhat_release}EOF\n"
        "ln -s redhat-release %{{buildroot}}/etc/system-release",
        "/etc/os-release\n/etc/redhat-release\n/etc/system-release",
    ),
    # On RHEL rpm owns itself (`rpm -q rpm` answers). The root's rpm is Debian's, which no
    # package in the RHEL-style database owns: this empty double stands in for it.
    "rpm": ("", ":", ""),
}

PRE_INSTALLED = ("redhat-release", "rpm")


def host_problems() -> List[str]:
    """What this machine lacks for the tier (empty when it can run)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (mount namespaces, overlayfs and chroot need it)")
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append(
            "missing {} (apt-get install rpm dnf createrepo-c gcc make binutils)".format(
                ", ".join(missing)
            )
        )
    if not Path(INNER_PYTHON).is_file():
        problems.append(f"no {INNER_PYTHON} for the root's system python")
    if "overlay" not in Path("/proc/filesystems").read_text(encoding="utf-8"):
        try:
            subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
        except OSError:
            pass
        if "overlay" not in Path("/proc/filesystems").read_text(encoding="utf-8"):
            problems.append("the kernel has no overlay filesystem")
    return problems


def _spec(name: str, release: RhelRelease) -> str:
    extra, install, files = _DOUBLES[name]
    version, rpm_release = release.packages[name]
    return _SPEC_HEAD.format(
        name=name,
        version=version,
        release=rpm_release,
        extra=extra.format(version=release.version, major=release.major),
        install=install.format(
            hidden=HIDDEN_DIR,
            os_release=release.os_release,
            redhat_release=release.redhat_release,
        ),
        files=files,
        major=release.major,
    )


def build_rpms(workdir: Path, release: RhelRelease = RHEL_RELEASES[9]) -> Dict[str, Path]:
    """Build every double of `release` with rpmbuild -bb; name -> .rpm file."""
    workdir.mkdir(parents=True, exist_ok=True)
    built: Dict[str, Path] = {}
    for name in _DOUBLES:
        spec = workdir / f"{name}.spec"
        spec.write_text(_spec(name, release), encoding="utf-8")
        _check(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {workdir / 'top'}",
                "--define",
                f"_tmppath {workdir / 'tmp'}",
                str(spec),
            ],
            timeout=120,
        )
        found = sorted((workdir / "top" / "RPMS").glob(f"*/{name}-[0-9]*.rpm"))
        if len(found) != 1:
            raise RuntimeError(f"rpmbuild made {found} for {name}")
        built[name] = found[0]
    return built


def make_repo(directory: Path, rpms: Mapping[str, Path], leave_out: Iterable[str] = ()) -> Path:
    """A dnf repository of the doubles (less `leave_out`), made with createrepo_c."""
    directory.mkdir(parents=True, exist_ok=True)
    skipped = set(leave_out)
    for name, rpm in rpms.items():
        if name not in skipped:
            shutil.copy2(str(rpm), str(directory / rpm.name))
    _check(["createrepo_c", "--quiet", str(directory)], timeout=120)
    return directory


def sha256_of(path: str) -> str:
    """The content hash of `path` (following links) plus the link text, so that replacing a
    link or the file it names both show."""
    link = os.readlink(path) if os.path.islink(path) else ""
    with open(path, "rb") as handle:
        return link + ":" + hashlib.sha256(handle.read()).hexdigest()


def fingerprint(path: str) -> Optional[str]:
    """What the host check compares for `path`: None if absent; for a file or a link, its
    sha256_of ("dangling" for a link to nothing); for a directory, one line per entry below it,
    recursively (never following links): its relative name, mode, owner, and content hash or
    link text. A changed byte, mode or owner anywhere in /var/lib/rpm or /etc/yum.repos.d shows,
    not only an added or removed name."""
    if not os.path.lexists(path):
        return None
    if os.path.islink(path) or not os.path.isdir(path):
        return sha256_of(path) if os.path.exists(path) else "dangling"
    lines = [_entry_line(path, ".")]
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            lines.append(_entry_line(os.path.join(dirpath, name), path))
    return "\n".join(lines)


def _entry_line(path: str, top: str) -> str:
    info = os.lstat(path)
    name = os.path.relpath(path, top) if top != "." else "."
    if S_ISLNK(info.st_mode):
        what = "link " + os.readlink(path)
    elif S_ISDIR(info.st_mode):
        what = "dir"
    elif S_ISREG(info.st_mode):
        with open(path, "rb") as handle:
            what = "file " + hashlib.sha256(handle.read()).hexdigest()
    else:
        what = "special"
    mode = S_IMODE(info.st_mode)
    return f"{name} {mode:04o} {info.st_uid}:{info.st_gid} {what}"


def host_state(paths: Iterable[str]) -> Dict[str, Optional[str]]:
    """path -> its fingerprint, for each path the tier must leave as it was on the host."""
    return {path: fingerprint(path) for path in paths}


def _check(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            "{} exited {}:\n{}{}".format(" ".join(argv), proc.returncode, proc.stdout, proc.stderr)
        )
    return proc


# The holder: sets the root up inside the new namespaces, says "ready", and then sleeps as
# PID 1 of the namespace until the test kills it. Arguments: base dir, repo, wheelhouse,
# real gcc driver, real make, whiteout globs...
_SETUP = r"""
set -eu
base=$1 repo=$2 wheels=$3 real_gcc=$4 real_make=$5
shift 5
mount -t tmpfs -o mode=0755 pseudo-rhel "$base"
mkdir "$base/upper" "$base/work" "$base/root"
root=$base/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount --rbind /dev "$root/dev"
mkdir -p "$root/srv/pseudo-rhel/repo" "$root/srv/pseudo-rhel/wheels"
mount --bind "$repo" "$root/srv/pseudo-rhel/repo"
mount -o remount,bind,ro "$root/srv/pseudo-rhel/repo"
mount --bind "$wheels" "$root/srv/pseudo-rhel/wheels"
mount -o remount,bind,ro "$root/srv/pseudo-rhel/wheels"

mkdir -p "$root/usr/hidden"
cp "$real_gcc" "$root/usr/hidden/gcc"
cp "$real_make" "$root/usr/hidden/make"
for pattern in "$@"; do
    for path in "$root"/usr/bin/$pattern "$root"/usr/local/bin/$pattern; do
        if [ -e "$path" ] || [ -L "$path" ]; then rm -f "$path"; fi
    done
done

rm -f "$root/etc/os-release" "$root/etc/redhat-release" "$root/etc/system-release"
ln -s dnf-3 "$root/usr/bin/yum"
mkdir -p "$root/etc/yum.repos.d" "$root/etc/rpm" "$root/var/lib/rpm"
cat > "$root/etc/yum.repos.d/pseudo-rhel.repo" <<'EOF'
[pseudo-rhel-local]
name=pseudo-RHEL 9 local repository of test doubles
baseurl=file:///srv/pseudo-rhel/repo
enabled=1
gpgcheck=0
metadata_expire=0
EOF
# RHEL keeps the rpm database in the system; Debian's rpm defaults to ~/.rpmdb.
echo '%_dbpath /var/lib/rpm' > "$root/etc/rpm/macros.dbpath"
hostname pseudo-rhel9
echo ready
exec sleep 2147483647
"""


class NamespacedRoot:
    """A root tree mounted in a private mount, PID, UTS and IPC namespace that one holder
    process keeps alive (an `sh -c SETUP` that mounts the tree at `<base>/root`, prints "ready"
    and sleeps as the namespace's PID 1). Commands enter it with nsenter and run under chroot;
    `tree` is the same root as this process sees it, through /proc/PID/root, for a test to
    read or prepare it from outside. Subclasses give the setup script (`setup`) and what to do
    once it is ready (`prepare`)."""

    what = "the namespaced root"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = str(base / "root")  # the path of the root inside the namespace
        self._holder: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
        self._pid = 0  # the namespace's PID 1, as the host sees it

    def setup(self) -> List[str]:
        """The holder's `sh -c` script followed by its arguments."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Runs once the namespace is ready (the root can be entered)."""

    @property
    def tree(self) -> Path:
        """The root as this process sees it. Absolute links in it point at this process's `/`:
        resolve them with support.look_alike.inside, never by following them."""
        return Path(f"/proc/{self._pid}/root") / self.root.lstrip("/")

    # lifecycle

    def start(self) -> NamespacedRoot:
        self.base.mkdir(parents=True, exist_ok=True)
        # setpriv: if pytest dies, unshare dies too, and --kill-child takes the namespace along.
        guard = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        script, *args = self.setup()
        self._holder = subprocess.Popen(
            [
                *guard,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--uts",
                "--ipc",
                "sh",
                "-c",
                script,
                "setup",
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        line = ""
        if select.select([self._holder.stdout], [], [], SETUP_TIMEOUT)[0]:
            line = self._holder.stdout.readline()
        if line.strip() != "ready":
            self._holder.kill()
            _, err = self._holder.communicate(timeout=30)
            raise RuntimeError(f"{self.what} could not be set up: {line}{err}")
        try:
            self._pid = self._child_pid(self._holder.pid)
            self.prepare()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._holder is None:
            return
        self._holder.kill()  # --kill-child: the namespace's PID 1 dies, and with it the rest
        try:
            self._holder.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._holder = None

    def __enter__(self) -> NamespacedRoot:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    @staticmethod
    def _child_pid(parent: int) -> int:
        """The host PID of unshare's child, the namespace's PID 1."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if int(fields[1]) == parent:  # fields after the name: state, ppid, ...
                    return int(stat.parent.name)
            time.sleep(0.02)
        raise RuntimeError(f"unshare ({parent}) has no child")

    # running things inside

    def argv(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None) -> List[str]:
        """The host argv that runs `argv` as root in the root, with a clean environment."""
        clean = {"PATH": ROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
        clean.update(env or {})
        return (
            ["nsenter", "--target", str(self._pid), "--mount", "--pid", "--uts", "--ipc", "--"]
            + ["chroot", self.root, "/usr/bin/env", "-i"]
            + [f"{key}={value}" for key, value in clean.items()]
            + [str(arg) for arg in argv]
        )

    def run(
        self,
        argv: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return subprocess.run(
            self.argv(argv, env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def check(
        self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout: float = 300
    ) -> str:
        proc = self.run(argv, env, timeout)
        if proc.returncode != 0:
            raise RuntimeError(
                "in the pseudo-RHEL root, {} exited {}:\n{}{}".format(
                    " ".join(argv), proc.returncode, proc.stdout, proc.stderr
                )
            )
        return str(proc.stdout)

    def sh(self, script: str, env: Optional[Mapping[str, str]] = None) -> str:
        return self.check(["sh", "-c", script], env)

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path]).returncode == 0

    def read_text(self, path: str) -> str:
        return self.check(["cat", path])


class PseudoRhelRoot(NamespacedRoot):
    """A throw-away RHEL 9 look-alike of the host root; see the module docstring."""

    what = "the pseudo-RHEL root"

    def __init__(self, base: Path, repo: Path, wheelhouse: Path) -> None:
        super().__init__(base)
        self.repo = repo
        self.wheelhouse = wheelhouse

    def setup(self) -> List[str]:
        real_gcc = os.path.realpath(shutil.which("gcc") or "gcc")
        real_make = os.path.realpath(shutil.which("make") or "make")
        return [_SETUP, str(self.base), str(self.repo), str(self.wheelhouse), real_gcc,
                real_make, *COMPILER_GLOBS]  # fmt: skip

    def prepare(self) -> None:
        for name in PRE_INSTALLED:
            self.check(["rpm", "-i", "--nodeps", self.rpm_path(name)])

    def __enter__(self) -> PseudoRhelRoot:
        self.start()
        return self

    def rpm_path(self, name: str) -> str:
        found = sorted(self.repo.glob(f"{name}-[0-9]*.rpm"))
        if not found:
            raise RuntimeError(f"no {name} RPM in {self.repo}")
        return f"{REPO_MOUNT}/{found[0].name}"

    def install_tool(self) -> str:
        """Install the tool as a user would: a venv on the system python, then pip from the
        wheel (offline, from the wheelhouse). Returns pip's output."""
        self.check([INNER_PYTHON, "-m", "venv", "--without-pip", TOOL_VENV])
        pip = sorted(self.wheelhouse.glob("pip-*.whl"))[-1].name
        return self.check(
            [
                TOOL_VENV + "/bin/python",
                f"{WHEELS_MOUNT}/{pip}/pip",
                "install",
                "-q",
                "--no-index",
                "--find-links",
                WHEELS_MOUNT,
                "--disable-pip-version-check",
                "--no-cache-dir",
                "sqlite-provision",
            ],
            timeout=300,
        )
