"""The session fixtures of the integration tests: the artifacts the lifecycle tests install
(built once, through the pyz); the podman tiers' (test_containers.py, test_fleet.py) podman
settings, and test_containers.py's pseudo-RHEL 9 image imported once
(tests/support/pseudo_rhel_image.py; the fleet tier runs look-alike trees instead); and the
fleet tier's one line at the end of the session."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from support import unavailable
from support.artifacts import BUILT_BY, Artifact, build_artifact
from support.fleet import FLEET
from support.launchers import launcher_named
from support.mirror import Mirror
from support.pseudo_rhel_image import (
    CONTAINERS_CONF,
    IMAGE,
    Timings,
    import_image,
    python36,
)


@pytest.fixture(scope="session")
def artifacts(
    sqlite_mirror: Mirror, pyz: Path, tmp_path_factory: pytest.TempPathFactory
) -> Dict[str, Artifact]:
    """version -> the session's artifact of it: 3.44.2 built by the pyz on CPython 3.6, 3.52.0
    by the pyz on 3.13 (support/artifacts.py). Real builds, each made once per session."""
    root = tmp_path_factory.mktemp("artifacts")
    return {
        version: build_artifact(version, launcher_named(name, lambda: pyz), sqlite_mirror.url, root)
        for version, name in BUILT_BY.items()
    }


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
    python = import_image(podman_env, podman_timings)
    return {"image": IMAGE, "python": python, "pyz": str(pyz), "tool_python": str(python36())}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """`fleet: N targets in G groups, built B time(s), ...` when the fleet tier ran."""
    line = FLEET.line()
    if line:
        terminalreporter.write_line(line)
