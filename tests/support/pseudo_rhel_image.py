"""The pseudo-RHEL 9 podman image (../shared/testing/PSEUDO-RHEL.md, section 4) of the podman
tier (tests/integration/test_containers.py); the session fixtures that import it are in
tests/integration/conftest.py. (The fleet tier, test_fleet.py, runs the look-alike trees of
support.look_alike_trees; it shares cache_dir() and CONTAINERS_CONF.)

- the base is an `mmdebstrap --variant=minbase bookworm` tree made to look like RHEL 9: RHEL's
  os-release, `yum` -> dnf-3, an RHEL-style rpm database holding `redhat-release` and `rpm`
  doubles, and a local dnf repository (/srv/pseudo-rhel-repo) whose `gcc` and `make` doubles
  (rpmbuild, AutoReqProv: no) link the real tools hidden under /usr/hidden/. gcc, cc, cpp and
  make are removed, so that only a `yum install -y gcc make` brings them back;
- the tree is cached as a tarball in $SQLITE_PROVISION_TEST_CACHE (default
  /var/cache/sqlite-provision-test), keyed by its recipe, and `podman import`ed as
  localhost/pseudo-rhel9;
- pyenv's CPython 3.6.15 (RHEL 7/8's python3) is copied into the tree at its own path.
"""

# Dict/List rather than `X | None`: the tests run on Python 3.7 too.

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Mapping

from support import unavailable
from support.interpreters import interpreter
from support.rhel import RHEL9_OS_RELEASE

IMAGE = "localhost/pseudo-rhel9"
CACHE_ENV = "SQLITE_PROVISION_TEST_CACHE"
DEFAULT_CACHE = "/var/cache/sqlite-provision-test"
DEBIAN_MIRROR_ENV = "SQLITE_PROVISION_TEST_DEBIAN_MIRROR"

# PSEUDO-RHEL.md section 4: crun fails here and the default ulimits are refused.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
"""


def run(argv: List[str], timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def check(argv: List[str], timeout: float = 600, **kwargs: object) -> str:
    proc = run(argv, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(
            "{} exited {}:\n{}\n{}".format(
                " ".join(argv), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]
            )
        )
    return proc.stdout


BOOTSTRAP_PACKAGES = ("python3", "python3-venv", "dnf", "rpm", "gcc", "make", "libc6-dev")
SUITE = "bookworm"


REPO_FILE = """\
[pseudo-rhel-local]
name=pseudo-RHEL 9 local repository of test doubles
baseurl=file:///srv/pseudo-rhel-repo
enabled=1
gpgcheck=0
metadata_expire=0
"""

SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{extra}Summary: pseudo-RHEL test double of {name}
License: MIT
BuildArch: noarch
# Without this rpmbuild adds Requires: /bin/sh, which the image's rpm database cannot satisfy.
AutoReqProv: no
%description
A test double of RHEL 9's {name} for sqlite-provision's podman tier.
%install
mkdir -p %{{buildroot}}/usr/bin
{install}
%files
{files}
"""

# name -> (version, release, extra header lines, %install body, %files)
DOUBLES = {
    "gcc": (
        "11.4.1",
        "3.el9",
        "",
        "ln -s ../hidden/gcc %{buildroot}/usr/bin/gcc\nln -s gcc %{buildroot}/usr/bin/cc",
        "/usr/bin/gcc\n/usr/bin/cc",
    ),
    "make": (
        "4.3",
        "8.el9",
        "Epoch: 1\n",
        "ln -s ../hidden/make %{buildroot}/usr/bin/make\nln -s make %{buildroot}/usr/bin/gmake",
        "/usr/bin/make\n/usr/bin/gmake",
    ),
    # dnf's $releasever, as on RHEL.
    "redhat-release": (
        "9.4",
        "0.5.el9",
        "Provides: system-release = 9.4\nProvides: system-release(releasever) = 9\n",
        ":",
        "",
    ),
    # RHEL's rpm owns itself and the tool's smoke test runs `rpm -q rpm` there; the image's rpm
    # is Debian's, which no package in the RHEL-style database owns.
    "rpm": ("4.16.1.3", "29.el9", "", ":", ""),
}
PRE_INSTALLED = ("redhat-release", "rpm")

# Removed from /usr/bin: the compiler family, make, and tclsh (RHEL's images have no Tcl).
HIDDEN = re.compile(
    r"(gcc|gcc-.*|cc|c89.*|c99.*|cpp|cpp-.*|x86_64-linux-gnu-(gcc|cpp).*|make|gmake|"
    r"make-first-existing-target|tclsh.*)"
)

# Bump when the recipe changes in a way the texts above do not show.
RECIPE_VERSION = 3
# Left out of the copy of CPython 3.6 in the tree: what the tool never imports.
PYTHON36_SKIP = ("test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip",
                 "site-packages", "__pycache__", "*.a", "config-3.6m-*")  # fmt: skip


def python36() -> Path:
    """pyenv's CPython 3.6 (bin/python3.6), which the tool runs on inside the image."""
    found = interpreter("3.6")
    if found is None:
        unavailable("no CPython 3.6 under pyenv: the image's python for the tool")
    return Path(str(found))


def recipe_key() -> str:
    recipe = json.dumps(
        [RECIPE_VERSION, SUITE, BOOTSTRAP_PACKAGES, RHEL9_OS_RELEASE, REPO_FILE, SPEC, DOUBLES,
         str(python36()), PYTHON36_SKIP],
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    path = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_in(root: Path, path: Path) -> Path:
    """Follow symlinks as the root itself would (absolute links point into the root)."""
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = os.readlink(str(path))
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    raise AssertionError(f"symlink loop at {path}")


def build_rpms(workdir: Path) -> List[Path]:
    rpms = []
    for name, (version, release, extra, install, files) in DOUBLES.items():
        spec = workdir / f"{name}.spec"
        spec.write_text(
            SPEC.format(
                name=name,
                version=version,
                release=release,
                extra=extra,
                install=install,
                files=files,
            ),
            encoding="utf-8",
        )
        check(
            ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {workdir / 'top'}", str(spec)],
            timeout=120,
        )
        found = sorted((workdir / "top" / "RPMS").glob(f"*/{name}-[0-9]*.rpm"))
        assert len(found) == 1, found
        rpms.append(found[0])
    return rpms


def bootstrap_command(root: Path) -> List[str]:
    """mmdebstrap (about 35 s here): the one bootstrapper scripts/test installs and this requires."""
    mirror = os.environ.get(DEBIAN_MIRROR_ENV) or "http://deb.debian.org/debian"
    include = "--include=" + ",".join(BOOTSTRAP_PACKAGES)
    excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")]
    return ["mmdebstrap", "--quiet", "--variant=minbase", include, *excludes, SUITE, str(root),
            mirror]  # fmt: skip


def make_pseudo_rhel_root(root: Path, workdir: Path) -> None:
    """A minimal Debian 12 tree, made to look like a RHEL 9 image without a compiler."""
    check(bootstrap_command(root), timeout=900)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc"):
        for path in (root / junk).glob("*"):
            if path.is_file() or path.is_symlink():
                path.unlink()
            elif path.is_dir() and path.name != "partial":
                shutil.rmtree(str(path))
    for junk in ("usr/share/man", "usr/share/locale"):
        shutil.rmtree(str(root / junk), ignore_errors=True)

    usr_bin = root / "usr" / "bin"
    hidden = root / "usr" / "hidden"  # one level below /usr: the driver finds cc1 from there
    hidden.mkdir()
    shutil.move(str(resolve_in(root, usr_bin / "gcc")), str(hidden / "gcc"))
    shutil.copy2(str(resolve_in(root, usr_bin / "make")), str(hidden / "make"))
    for path in list(usr_bin.iterdir()):
        if HIDDEN.fullmatch(path.name):
            path.unlink()
    for name in ("cc", "c89", "c99", "cpp"):
        alternative = root / "etc" / "alternatives" / name
        if alternative.is_symlink():
            alternative.unlink()
    (usr_bin / "yum").symlink_to("dnf-3")

    for path in (root / "etc" / "os-release", root / "usr" / "lib" / "os-release"):
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_text(RHEL9_OS_RELEASE, encoding="utf-8")
    (root / "etc" / "redhat-release").write_text(
        "Red Hat Enterprise Linux release 9.4 (Plow)\n", encoding="utf-8"
    )
    (root / "etc" / "system-release").symlink_to("redhat-release")
    (root / "etc" / "rpm").mkdir(exist_ok=True)
    # RHEL keeps the rpm database in the system; Debian's rpm defaults to ~/.rpmdb.
    (root / "etc" / "rpm" / "macros.dbpath").write_text("%_dbpath /var/lib/rpm\n")
    (root / "var" / "lib" / "rpm").mkdir(parents=True, exist_ok=True)

    repo = root / "srv" / "pseudo-rhel-repo"
    repo.mkdir(parents=True)
    for rpm in build_rpms(workdir):
        shutil.copy2(str(rpm), str(repo / rpm.name))
    check(["createrepo_c", "--quiet", str(repo)], timeout=120)
    (root / "etc" / "yum.repos.d").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "yum.repos.d" / "pseudo-rhel.repo").write_text(REPO_FILE, encoding="utf-8")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    check(
        ["chroot", str(root), "yum", "-y", "-q", "--releasever=9", "install", *PRE_INSTALLED],
        env=env,
        timeout=300,
    )
    shutil.rmtree(str(root / "var" / "cache" / "dnf"), ignore_errors=True)
    # What the image promises: no compiler, but yum, rpm and a python with venv.
    probe = run(
        ["chroot", str(root), "sh", "-c", "command -v gcc || command -v cc || command -v make"],
        env=env,
    )
    assert probe.returncode != 0, f"the pseudo-RHEL root still has {probe.stdout}"
    check(["chroot", str(root), "rpm", "-q", "rpm", "redhat-release"], env=env)
    # CPython 3.6 at its own path (its RUNPATH names it), for the tool.
    prefix = python36().parent.parent
    shutil.copytree(str(prefix), str(root / str(prefix).lstrip("/")), symlinks=True,
                    ignore=shutil.ignore_patterns(*PYTHON36_SKIP))  # fmt: skip
    modules = "import ssl, sqlite3, ctypes, json, zipimport, tarfile, hashlib"
    check(["chroot", str(root), str(python36()), "-c", modules], env=env)


def root_tarball() -> Path:
    """The customized tree as a tarball in the cache, built once per recipe."""
    cache = cache_dir()
    key = recipe_key()
    tarball = cache / f"pseudo-rhel9-{key}.tar"
    if tarball.is_file():
        return tarball
    for missing in ("mmdebstrap", "rpmbuild", "createrepo_c", "chroot", "tar"):
        if shutil.which(missing) is None:
            unavailable(f"{missing} is not installed (apt-get install mmdebstrap rpm createrepo-c)")
    build = cache / f"build-{key}-{os.getpid()}"
    shutil.rmtree(str(build), ignore_errors=True)
    build.mkdir()
    try:
        make_pseudo_rhel_root(build / "root", build)
        partial = cache / f"pseudo-rhel9-{key}.tar.part{os.getpid()}"
        check(["tar", "--numeric-owner", "-C", str(build / "root"), "-cf", str(partial), "."])
        partial.replace(tarball)
    finally:
        shutil.rmtree(str(build), ignore_errors=True)
    for old in cache.glob("pseudo-rhel9-*.tar"):
        if old != tarball:
            old.unlink()
    return tarball


def root_python(tarball: Path) -> str:
    """'3.11': the root's python3, from its /usr/bin/python3 link (python3.X)."""
    listing = check(["tar", "-tvf", str(tarball), "./usr/bin/python3"])
    match = re.search(r"-> python(3\.\d+)\s*$", listing.strip())
    assert match, listing
    return match.group(1)


Timings = Dict[str, float]


def import_image(podman_env: Mapping[str, str], timings: Timings) -> str:
    """Import the cached tree as localhost/pseudo-rhel9 (tagged with its recipe key) unless
    podman has it already; return the root's python3 version ('3.11'). Records the seconds of
    the tree and of the import in `timings`."""
    start = time.monotonic()
    tarball = root_tarball()
    timings["base tree"] = time.monotonic() - start
    python = root_python(tarball)
    versioned = f"{IMAGE}:{tarball.stem.rsplit('-', 1)[-1]}"
    start = time.monotonic()
    env = dict(podman_env)
    if run(["podman", "image", "exists", versioned], env=env).returncode != 0:
        check(["podman", "import", "-q", str(tarball), versioned], env=env, timeout=300)
    check(["podman", "tag", versioned, IMAGE], env=env)
    timings["import"] = time.monotonic() - start
    return python
