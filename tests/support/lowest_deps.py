"""The lowest dependency versions pyproject.toml allows on a given Python, read from pyproject
itself (each requirement's lower bound, for the requirements whose marker holds on that Python),
and a venv of that Python with the tool installed against exactly those versions.

pip on an old Python resolves old releases (pip on 3.6 cannot see click 8.1, which dropped 3.6),
and a host may already have an old jinja2 or requests that pip keeps: the floor pyproject states
must really work. Dependencies pyproject does not name (MarkupSafe on 3.7+, urllib3, idna) are
left to pip, which picks their newest: an old direct dependency beside a new one of its own is
what a host gets.

The index alone is used, as on a host ($SQLITE_PROVISION_PYZ_INDEX_URL, as scripts/build-pyz,
else PyPI); pip's cache lives in build/pip-cache-lowest-deps between runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from support import REPO_ROOT, unavailable

PYPROJECT = REPO_ROOT / "pyproject.toml"
PIP_CACHE = REPO_ROOT / "build" / "pip-cache-lowest-deps"
PIP_FOR_36 = "21.3.1"  # the last pip for 3.6; RHEL 7/8's pip 9 cannot build pyproject.toml


def dependencies(pyproject: Path = PYPROJECT) -> List[str]:
    """[project].dependencies, as written."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            unavailable("reading pyproject.toml needs Python 3.11 (tomllib) or tomli")
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest_pins(python_version: str, requirements: List[str]) -> Dict[str, str]:
    """name -> the lowest version `requirements` allow on CPython `python_version` (X.Y.Z):
    for each requirement whose marker holds there, its `>=` (or `==`, `~=`) bound. A
    requirement with no lower bound, or whose bound its own upper bound excludes, is an error:
    a floor that cannot be installed cannot be tested."""
    from packaging.requirements import Requirement

    major_minor = ".".join(python_version.split(".")[:2])
    environment = {"python_version": major_minor, "python_full_version": python_version}
    pins: Dict[str, str] = {}
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        bounds = [s.version for s in requirement.specifier if s.operator in (">=", "==", "~=")]
        if not bounds:
            raise ValueError(f"{text!r} has no lower bound: its floor cannot be tested")
        floor = max(bounds, key=_release)
        if not requirement.specifier.contains(floor, prereleases=True):
            raise ValueError(f"{text!r}: its own lower bound {floor} is excluded")
        name = canonical(requirement.name)
        if name in pins:
            raise ValueError(f"{requirement.name} is required twice on Python {python_version}")
        pins[name] = floor
    return pins


def _release(version: str) -> Any:
    from packaging.version import Version

    return Version(version)


def pip_env() -> Dict[str, str]:
    """The environment for pip: no PIP_* settings and no configuration file of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SQLITE_PROVISION_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_CACHE_DIR=str(PIP_CACHE))  # fmt: skip
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def index_url() -> str:
    return os.environ.get("SQLITE_PROVISION_PYZ_INDEX_URL", "https://pypi.org/simple")


@dataclass
class FloorVenv:
    """A venv of one Python with the tool installed at pyproject's lowest pins."""

    python_version: str  # X.Y.Z of the interpreter
    root: Path
    pins: Dict[str, str]
    installed: Dict[str, str]  # canonical name -> version, as the venv reports it

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def script(self) -> str:
        return str(self.root / "bin" / "sqlite-provision")


def _run(argv: List[str], env: Dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def full_version(interpreter: str) -> str:
    probe = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    return _run([interpreter, "-c", probe], pip_env()).strip()


def make_floor_venv(interpreter: str, root: Path) -> FloorVenv:
    """python -m venv; pip 21.3.1 first on 3.6 (as the README says); then the checkout and
    `name==floor` for each of pyproject's dependencies on this Python, in one pip run (so pip
    must find them compatible with each other and with the project's own requirements)."""
    version = full_version(interpreter)
    pins = lowest_pins(version, dependencies())
    env = pip_env()
    _run([interpreter, "-m", "venv", str(root)], env)
    pip = [str(root / "bin" / "python"), "-m", "pip", "--isolated", "--disable-pip-version-check"]
    pip_install = [*pip, "install", "--quiet", "--index-url", index_url(),
                   "--cache-dir", str(PIP_CACHE)]  # fmt: skip
    if version.startswith("3.6."):
        _run([*pip_install, f"pip=={PIP_FOR_36}"], env)
    _run([*pip_install, str(REPO_ROOT), *(f"{name}=={floor}" for name, floor in pins.items())],
         env)  # fmt: skip
    listed = json.loads(_run([*pip, "list", "--format=json"], env))
    installed = {canonical(row["name"]): row["version"] for row in listed}
    return FloorVenv(version, root, pins, installed)
