"""Shared fixtures: the real tarballs and a loopback mirror laid out like sqlite.org; and the
layers, by folder: unit/ (pure, or one module against a real local peer), cli/ (the CLI as a
user runs it), integration/ (real builds of the shared tarballs: marker `integration`), faults/
(the fault matrix). Helpers live in support/, a package, not among the tests."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"

# Test the tree's source when the package is not installed (an installed copy wins).
if importlib.util.find_spec("sqlite_provision") is None:
    sys.path.insert(0, str(REPO_ROOT / "src"))
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support import unavailable  # noqa: E402
from support.launchers import LAUNCHERS, Launcher, launcher_named  # noqa: E402
from support.mirror import Mirror  # noqa: E402

TARBALLS_ENV = "SQLITE_PROVISION_TEST_TARBALLS"

# The suite runs with no locale in its environment, as CI machines start it and as cron,
# cloud-init and `env -i` start the tool: Python 3.6 then reports ASCII, which click 8.0 refused
# (a CI failure that a developer's LANG=C.UTF-8 hid). Tests that need a locale set their own.
for _name in [
    name for name in os.environ if name in ("LANG", "LANGUAGE") or name.startswith("LC_")
]:
    del os.environ[_name]


# The tool's real places on this machine. No test may write there (each runs the tool on places
# of its own); a test that forgets to (a pyz run without the session's cache, say) would change
# the developer's machine and hide from the fault matrix, which watches them only during a case.
MACHINE_PLACES = ("/opt/sqlite", "/var/cache/sqlite-provision", "/var/log/sqlite-provision",
                  "/run/sqlite-provision.lock", "/etc/profile.d", "/etc/ld.so.conf.d")  # fmt: skip


def machine_places() -> List[str]:
    """Every path under MACHINE_PLACES the tool could have written: all of its own places, and
    in the shared directories the names it writes (sqlite-provision*, sqlite*)."""
    found: List[str] = []
    for top in MACHINE_PLACES:
        shared = top.startswith("/etc/")
        for where, dirs, files in os.walk(top):
            for name in sorted(dirs + files):
                if not shared or name.startswith(("sqlite-provision", "sqlite")):
                    found.append(os.path.join(where, name))
        if not shared and os.path.lexists(top):
            found.append(top)
    return sorted(found)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_PLACES_BEFORE] = machine_places()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_PLACES_BEFORE, None)
    if before is None:
        return
    added = sorted(set(machine_places()) - set(before))
    if added:
        sys.stderr.write("\nthe test session wrote to this machine's real places (a test ran the "
                         "tool without places of its own):\n  " + "\n  ".join(added[:20]) + "\n")  # fmt: skip
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_PLACES_BEFORE = pytest.StashKey[List[str]]()


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Every test under integration/, and every other test that uses the real tarballs, carries
    the `integration` marker."""
    integration = TESTS_DIR / "integration"
    for item in items:
        uses_tarballs = "shared_tarballs" in getattr(item, "fixturenames", ())
        if uses_tarballs or integration in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


# --- temporary directories the build user can pass through ---------------------------------


def passable(path: Path) -> Path:
    """Let every user pass through `path` and the directories above it that this user owns
    (adding search permission only: nothing becomes listable or writable). As root the tool
    builds as an unprivileged user, who must reach a build directory under a test's TMPDIR; on a
    host, /tmp is passable, but pytest makes its directories 0700."""
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_uid != os.geteuid() or info.st_mode & 0o001:
            continue
        directory.chmod((info.st_mode & 0o7777) | 0o011)
    return path


@pytest.fixture(scope="session")
def tmp_path_factory(tmp_path_factory: pytest.TempPathFactory) -> pytest.TempPathFactory:
    """pytest's factory, whose directories (and so every tmp_path) the build user can pass."""
    make = tmp_path_factory.mktemp

    def mktemp(basename: str, numbered: bool = True) -> Path:
        return passable(make(basename, numbered))

    tmp_path_factory.mktemp = mktemp  # type: ignore[method-assign]
    return tmp_path_factory


# The sqlite.org year directory of each shared tarball (the release's calendar year).
RELEASE_YEARS = {"3.44.2": "2023", "3.52.0": "2026"}
CURRENT_RELEASE = "3.44.2"

_TARBALL_NAME = re.compile(r"sqlite-autoconf-(\d)(\d\d)(\d\d)(\d\d)\.tar\.gz")

SharedTarball = Dict[str, Any]  # {"path": Path, "sha256": str, "sha3_256": str}


def tarballs_dir() -> Optional[Path]:
    """The folder of real upstream tarballs named by $SQLITE_PROVISION_TEST_TARBALLS.

    A relative value is taken from the repository root (.ci/run sets
    ../shared/sqlite-tarballs). None when unset or not a directory.
    """
    value = os.environ.get(TARBALLS_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = REPO_ROOT / path
    path = path.resolve()
    return path if path.is_dir() else None


def version_of_tarball(name: str) -> Optional[str]:
    """'sqlite-autoconf-3440200.tar.gz' -> '3.44.2'; a branch release keeps its 4th part."""
    match = _TARBALL_NAME.fullmatch(name)
    if match is None:
        return None
    parts = [int(group) for group in match.groups()]
    if parts[3] == 0:
        parts = parts[:3]
    return ".".join(str(part) for part in parts)


def _read_sums(path: Path) -> Dict[str, str]:
    sums: Dict[str, str] = {}
    if not path.is_file():
        return sums
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2:
            sums[fields[1].lstrip("*")] = fields[0].lower()
    return sums


@pytest.fixture(scope="session")
def shared_tarballs() -> Dict[str, SharedTarball]:
    """version -> {"path": Path, "sha256": str, "sha3_256": str} for the real tarballs.

    Skips when the folder is not configured, and fails instead under CI=true.
    """
    folder = tarballs_dir()
    if folder is None:
        raw = os.environ.get(TARBALLS_ENV)
        unavailable(
            f"${TARBALLS_ENV} is unset" if not raw else f"${TARBALLS_ENV}={raw} is not a directory"
        )
    sha256 = _read_sums(folder / "SHA256SUMS")
    sha3 = _read_sums(folder / "SHA3-256SUMS")
    found: Dict[str, SharedTarball] = {}
    for tarball in sorted(folder.glob("sqlite-autoconf-*.tar.gz")):
        version = version_of_tarball(tarball.name)
        if version is None:
            continue
        if tarball.name not in sha256 or tarball.name not in sha3:
            unavailable(f"{tarball.name} has no line in {folder}/SHA256SUMS or SHA3-256SUMS")
        found[version] = {
            "path": tarball,
            "sha256": sha256[tarball.name],
            "sha3_256": sha3[tarball.name],
        }
    if not found:
        unavailable(f"no sqlite-autoconf-*.tar.gz in {folder}")
    return found


@pytest.fixture(scope="session")
def sqlite_mirror(shared_tarballs: Dict[str, SharedTarball]) -> Iterator[Mirror]:
    """One mirror for the session: every shared tarball at /<year>/<name>, and a download
    page listing 3.44.2 as the current release.

    Shared by all tests: do not set faults on it (use `mirror`), and compare request counts
    before and after rather than absolute values.
    """
    with Mirror() as served:
        for version, info in shared_tarballs.items():
            year = RELEASE_YEARS.get(version)
            if year is None:
                continue  # an unknown release: we cannot tell its year directory
            path: Path = info["path"]
            served.add_file(f"/{year}/{path.name}", path)
        current = shared_tarballs.get(CURRENT_RELEASE)
        if current is not None:
            path = current["path"]
            served.add_download_page(
                [
                    (
                        CURRENT_RELEASE,
                        f"{RELEASE_YEARS[CURRENT_RELEASE]}/{path.name}",
                        path.stat().st_size,
                        current["sha3_256"],
                    )
                ]
            )
        yield served


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/sqlite-provision.pyz, built once per session by scripts/build-pyz."""
    from support.pyz import build_pyz

    return build_pyz(REPO_ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module", params=LAUNCHERS)
def launcher(request: pytest.FixtureRequest) -> Launcher:
    """Each way the tool is started (support/launchers.py): `python -m sqlite_provision` from
    the dev venv, and the session's pyz on CPython 3.6 and 3.13, as hosts run it. Module-scoped,
    so that a module's tests run launcher by launcher and a module fixture built on it (a host
    with versions installed) is made once per launcher."""
    return launcher_named(request.param, lambda: request.getfixturevalue("pyz"))


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    """A fresh, empty, running mirror for one test; faults may be set freely."""
    with Mirror() as fresh:
        yield fresh
