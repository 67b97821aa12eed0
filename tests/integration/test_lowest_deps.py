"""The lowest dependency versions pyproject.toml allows, on each Python: a venv of CPython 3.6
(RHEL 7/8), 3.7 (Amazon Linux 2) and 3.13, `pip install` of the checkout with every dependency
pinned to the lower bound pyproject states for that Python (support/lowest_deps.py reads them
from pyproject, so this test follows it), and the CLI run from that venv: --help, versions,
status, install --dry-run (which renders the Jinja templates), a download whose checksum fails
(requests against a loopback mirror), uninstall --all on an empty root, and usage errors.

Needs PyPI (or $SQLITE_PROVISION_PYZ_INDEX_URL); pip's cache is kept under build/.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

from support.clirun import Run, run_cli, tool_env
from support.faults import NETWORK_VARS, Tls, TlsMirror, make_tls
from support.interpreters import interpreter, need_interpreter
from support.lowest_deps import FloorVenv, dependencies, lowest_pins, make_floor_venv
from support.mirror import Mirror

pytestmark = pytest.mark.integration

PYTHONS = ["3.6", "3.7", "3.13"]


@pytest.fixture(scope="module")
def floors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Future[FloorVenv]]]:
    """The three venvs, made at once in threads (pip waits on the index more than it computes);
    a missing interpreter is said by `floor`."""
    found = {minor: interpreter(minor) for minor in PYTHONS}
    with ThreadPoolExecutor(len(PYTHONS)) as pool:
        yield {
            minor: pool.submit(make_floor_venv, python, tmp_path_factory.mktemp(f"floor-{minor}"))
            for minor, python in found.items()
            if python is not None
        }


@pytest.fixture(scope="module", params=PYTHONS)
def floor(request: pytest.FixtureRequest, floors: Dict[str, Future[FloorVenv]]) -> FloorVenv:
    need_interpreter(request.param)
    return floors[request.param].result()


class Sandbox:
    """The tool's state, places and HOME under one temporary root, walked to prove what a run
    wrote."""

    def __init__(self, root: Path, floor: FloorVenv) -> None:
        self.root, self.floor = root, floor
        # This machine's REQUESTS_CA_BUNDLE, SSL_CERT_FILE or proxies would decide the TLS case.
        self.env = {k: v for k, v in tool_env(root / "state").items() if k not in NETWORK_VARS}
        self.env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"))
        (root / "tmp").mkdir(parents=True)

    def places(self) -> List[str]:
        return ["--prefix-root", str(self.root / "opt"),
                "--profile-file", str(self.root / "etc" / "sqlite-provision.sh")]  # fmt: skip

    def run(self, *args: str) -> Run:
        return run_cli(args, self.env, timeout=120, command=[self.floor.script])

    def tree(self) -> Set[str]:
        found = set()
        for dirpath, dirnames, filenames in os.walk(str(self.root)):
            for name in dirnames + filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), str(self.root))
                if rel.split(os.sep)[0] not in ("state", "home"):  # the lock, the log
                    found.add(rel)
        return found


@pytest.fixture
def sandbox(tmp_path: Path, floor: FloorVenv) -> Iterator[Sandbox]:
    yield Sandbox(tmp_path, floor)


def clean(run: Run, code: int) -> None:
    assert run.proc.returncode == code, run.describe()
    assert "Traceback" not in run.proc.stderr and "internal error" not in run.proc.stderr, (
        run.describe()
    )


# --- what was installed -----------------------------------------------------------------------


def test_the_venv_has_exactly_the_floor_of_each_dependency(floor: FloorVenv) -> None:
    """pip installed the lowest version pyproject allows of each dependency, not a newer one
    (else this module would test something else than the floor)."""
    assert floor.pins, "pyproject names no dependency for this Python"
    for name in ("click", "requests", "jinja2", "distro"):
        assert name in floor.pins, (name, floor.pins)
    for name, pin in floor.pins.items():
        got = floor.installed.get(name)
        assert got is not None, f"{name} is not installed in the venv: {floor.installed}"
        assert _same_release(got, pin), f"{name} {got} installed, pyproject's floor is {pin}"
    assert "sqlite-provision" in floor.installed


def _same_release(installed: str, pin: str) -> bool:
    from packaging.version import Version

    return Version(installed) == Version(pin)


# --- the CLI at the floor ---------------------------------------------------------------------


def test_help(sandbox: Sandbox) -> None:
    run = sandbox.run("--help")
    clean(run, 0)
    assert run.proc.stdout.startswith("Usage: sqlite-provision [OPTIONS] COMMAND")
    for command in ("install", "build", "verify", "rollback", "uninstall", "status", "versions"):
        assert f"  {command} " in run.proc.stdout, command


def test_versions_json(sandbox: Sandbox) -> None:
    run = sandbox.run("versions", "--json")
    clean(run, 0)
    rows = json.loads(run.proc.stdout)["releases"]
    defaults = [row for row in rows if row["default"]]
    assert len(defaults) == 1 and defaults[0]["withdrawn"] is False
    assert {"3.44.2", "3.52.0"} <= {row["version"] for row in rows}
    # In the C locale (cron, `env -i`, cloud-init), where Python 3.6 reports ASCII and click
    # 8.0 would refuse to run, the same answer.
    env = {k: v for k, v in sandbox.env.items() if not k.startswith(("LC_", "LANG"))}
    in_c = run_cli(["versions", "--json"], dict(env, LC_ALL="C"), command=[sandbox.floor.script])
    clean(in_c, 0)
    assert json.loads(in_c.proc.stdout)["releases"] == rows


def test_status_json_reads_the_host(sandbox: Sandbox) -> None:
    """status reads the OS through distro, and what the venv's python loads."""
    run = sandbox.run("status", "--json", "--python", sandbox.floor.python)
    clean(run, 0)
    data = run.data
    assert data["system_sqlite"]["version"].startswith("3."), data
    assert json.dumps(data["os"]), data  # whatever distro says, it is in the JSON


def test_install_dry_run_renders_the_plan_and_writes_nothing(sandbox: Sandbox) -> None:
    """The plan renders the activation snippet from its Jinja template (jinja2 and markupsafe
    at work), and a dry run writes nothing."""
    before = sandbox.tree()
    run = sandbox.run("install", "--dry-run", "--json", "--version", "3.44.2",
                      "--python", sandbox.floor.python, *sandbox.places())  # fmt: skip
    clean(run, 0)
    data = run.data
    assert data["dry_run"] is True and data["changed"] is False
    assert data["version"] == "3.44.2"
    names = [step["name"] for step in data["steps"]]
    assert names[0] == "fetch" and "profile" in names, names
    assert sandbox.tree() == before


def test_a_download_whose_checksum_fails_is_refused(sandbox: Sandbox, mirror: Mirror) -> None:
    """requests at its floor, for real: the tarball is downloaded from a loopback mirror, found
    not to match the catalog's checksum, and refused (exit 4) with nothing installed."""
    path = "/2023/sqlite-autoconf-3440200.tar.gz"
    mirror.add(path, b"not the real tarball\n" * 1000)
    run = sandbox.run("install", "--json", "--version", "3.44.2", "--mirror", mirror.url,
                      "--python", sandbox.floor.python, *sandbox.places())  # fmt: skip
    clean(run, 4)
    assert "checksum mismatch" in run.proc.stderr, run.describe()
    assert mirror.count(path) >= 1
    assert run.data["exit_code"] == 4
    assert not (sandbox.root / "opt").exists()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("trusted", [False, True], ids=["unknown-ca", "ssl-cert-file"])
def test_a_tls_mirror_is_verified(sandbox: Sandbox, tls: Tls, trusted: bool) -> None:
    """requests and urllib3 at the floor verify TLS: a mirror whose CA is unknown is refused at
    the handshake; with SSL_CERT_FILE naming its CA, the download happens (and its checksum then
    fails: the tarball is not the real one)."""
    path = "/2023/sqlite-autoconf-3440200.tar.gz"
    with TlsMirror(tls) as mirror:
        mirror.add(path, b"not the real tarball\n" * 1000)
        if trusted:
            sandbox.env["SSL_CERT_FILE"] = str(tls.ca)
        run = sandbox.run("install", "--json", "--version", "3.44.2", "--mirror", mirror.url,
                          "--python", sandbox.floor.python, *sandbox.places())  # fmt: skip
        clean(run, 4)
        if trusted:
            assert "checksum mismatch" in run.proc.stderr, run.describe()
            assert mirror.count(path) >= 1
        else:
            assert "TLS verification failed" in run.proc.stderr, run.describe()
            assert mirror.count(path) == 0


def test_uninstall_all_on_an_empty_root_is_a_no_op(sandbox: Sandbox) -> None:
    run = sandbox.run("uninstall", "--all", "--json", *sandbox.places())
    clean(run, 0)
    data = run.data
    assert data["changed"] is False and data["removed_versions"] == []


USAGE_ERRORS = [
    (["uninstall", "3.44.2", "--all"], "mutually exclusive"),
    (["install", "--jobs", "0"], "--jobs"),
    (["install", "--tarball", "/nonexistent.tar.gz"], "does not exist"),  # click's own check
    (["install", "--no-such-option"], "--no-such-option"),
]


@pytest.mark.parametrize(
    "args, words", USAGE_ERRORS, ids=[" ".join(args) for args, _ in USAGE_ERRORS]
)
def test_usage_errors_exit_2_with_one_json_object(
    sandbox: Sandbox, args: List[str], words: str
) -> None:
    run = sandbox.run(*args, "--json")
    clean(run, 2)
    assert words in run.proc.stderr, run.describe()
    data = run.data
    assert data["ok"] is False and data["exit_code"] == 2
    plain = sandbox.run(*args)
    clean(plain, 2)
    assert plain.proc.stdout == ""


# --- the floors themselves (no venv) ----------------------------------------------------------


@pytest.mark.parametrize("python", ["3.6.15", "3.7.16", "3.13.0"])
def test_every_dependency_has_a_floor_on_every_python(python: str) -> None:
    """Each of pyproject's dependencies has a lower bound that its own upper bound admits, and
    the runtime ones are there on every Python (lowest_pins raises otherwise)."""
    pins: Dict[str, str] = lowest_pins(python, dependencies())
    assert {"click", "requests", "jinja2", "distro"} <= set(pins), pins
    assert ("dataclasses" in pins) is python.startswith("3.6."), pins


def test_the_floor_follows_the_markers_and_refuses_what_cannot_be_tested() -> None:
    requirements = ["click>=8.0,<8.1; python_version < '3.7'", "click>=8.1; python_version >= '3.7'",
                    "Jinja2>=2.11,>=3.0", "tomli; python_version < '3.11'"]  # fmt: skip
    assert lowest_pins("3.13.0", requirements) == {"click": "8.1", "jinja2": "3.0"}
    with pytest.raises(ValueError, match="no lower bound"):
        lowest_pins("3.6.15", requirements)
    with pytest.raises(ValueError, match="excluded"):
        lowest_pins("3.13.0", ["click>=8.1,<8.0"])
    with pytest.raises(ValueError, match="twice"):
        lowest_pins("3.13.0", ["click>=8.0", "Click>=8.1"])
