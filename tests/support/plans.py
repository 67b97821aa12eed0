"""A Resolution made from chosen facts instead of this host's: what the pure build_plan takes.
It does what plan.inputs.read_inputs and plan.resolve.resolve do for a source that needs no
network, with made-up facts."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from sqlite_provision import output
from sqlite_provision.config import Options, make_layout, validate
from sqlite_provision.host.facts import Facts, OsInfo
from sqlite_provision.host.library import NOT_PROBED, SystemLibrary
from sqlite_provision.plan.inputs import Inputs, choices
from sqlite_provision.plan.model import Command, Plan
from sqlite_provision.plan.resolve import Resolution, build_request
from sqlite_provision.recipe.features import select
from sqlite_provision.results import Outcome
from sqlite_provision.source.resolve import resolve_source
from sqlite_provision.steps.activation import load_templates
from sqlite_provision.steps.base import Step

RHEL9 = OsInfo(id="rhel", version="9.4", like=("fedora",), name="Red Hat Enterprise Linux 9.4")
UBUNTU = OsInfo(id="ubuntu", version="22.04", like=("debian",), name="Ubuntu 22.04.4 LTS")
TEMPLATES = load_templates()


def make_facts(
    *,
    os_info: OsInfo = RHEL9,
    root: bool = True,
    gcc: bool = True,
    yum: bool = True,
    dnf: bool = True,
    cpus: int = 4,
    systemd_running: bool = False,
) -> Facts:
    return Facts(
        os=os_info,
        root=root,
        gcc="/usr/bin/gcc" if gcc else None,
        make="/usr/bin/make" if gcc else None,
        yum="/usr/bin/yum" if yum else None,
        dnf="/usr/bin/dnf" if dnf else None,
        cpus=cpus,
        systemd_running=systemd_running,
        arch="x86_64",
        glibc=(2, 34),
    )


def resolution_for(
    options: Options,
    facts: Facts,
    work: Path,
    pythons: Tuple[str, ...] = ("/usr/bin/python3",),
    system_lib: SystemLibrary = NOT_PROBED,
    up_to_date: Optional[str] = None,
) -> Resolution:
    """The Resolution of `options` on a host with `facts`; its own directories under `work`
    (cache, build, systemd and ld.so.conf.d), none of them created. `up_to_date`: why no build
    is needed (this build is installed and intact), or None."""
    options = validate(options)
    source = resolve_source(options)
    features = select(options.compat, source.version_key, system_lib.options, options.enable)
    layout = make_layout(options, source.version)
    inputs = Inputs(
        command=Command.INSTALL,
        choices=choices(options, facts),
        facts=facts,
        pythons=pythons,
        system_lib=system_lib,
        source=source,
        layout=layout,
        templates=TEMPLATES,
        cache_dir=work / "cache",
        build_dir=work / "build",
        units_dir=work / "systemd",
        conf_dir=work / "ld.so.conf.d",
    )
    request = build_request(source, options, features)
    return Resolution(inputs, source, layout, features, request, up_to_date=up_to_date)


def steps_of(plan: Plan) -> List[Step]:
    """The plan's steps, without the plan's reasons to skip them."""
    return [planned.step for planned in plan.steps]


def dry_run_steps(plan: Plan) -> List[Dict[str, Any]]:
    """The steps as `--dry-run --json` prints them: name, description, commands, skipped."""
    return list(json.loads(output.as_json(Outcome(plan.view())))["steps"])


class NoEnvironment(dict):  # type: ignore[type-arg]
    """os.environ while a plan is built: any read of it fails the test."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the plan read the environment")

    __getitem__ = get = __iter__ = __len__ = __contains__ = keys = items = copy = _refuse  # type: ignore[assignment]


def refuse(what: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the plan called {what}{args!r}")

    return call


@contextmanager
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every door to the filesystem, the environment and subprocess shut, as a pure plan
    needs none of them (docs/ARCHITECTURE.md)."""
    with monkeypatch.context() as shut:
        shut.setattr(os, "environ", NoEnvironment())
        for name in ("stat", "lstat", "open", "listdir", "scandir", "access", "readlink"):
            shut.setattr(os, name, refuse(f"os.{name}"))
        shut.setattr(builtins, "open", refuse("open"))
        shut.setattr(subprocess, "Popen", refuse("subprocess.Popen"))
        yield
