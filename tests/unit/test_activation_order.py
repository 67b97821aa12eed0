"""Layer 2: where `--ld-so-conf` goes in the plan, and the follow-up commands of the activation
files on a real host's directories. Pure: `plan.build_plan` on a Resolution made from chosen
facts (support.plans), with the real /etc/ld.so.conf.d and /etc/systemd/system put in it as
plan.resolve would on a host; nothing is run or written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List

import pytest

from sqlite_provision.config import DEFAULT_LD_SO_CONF_DIR, DEFAULT_SYSTEMD_DIR, Options
from sqlite_provision.plan.build import build_plan
from sqlite_provision.plan.model import Plan
from sqlite_provision.plan.resolve import Resolution
from sqlite_provision.steps.activation import RecordActivation, WriteActivation
from support.plans import dry_run_steps, make_facts, resolution_for, steps_of

REAL_CONF_DIR = Path("/etc/ld.so.conf.d")
REAL_UNITS_DIR = Path("/etc/systemd/system")


def options_for(tmp_path: Path, **extra: object) -> Options:
    return Options(
        version="3.44.2",
        prefix_root=tmp_path / "opt" / "sqlite",
        profile_file=tmp_path / "etc" / "profile.d" / "sqlite-provision.sh",
        **extra,
    )


def real_dirs_plan(tmp_path: Path, systemd_running: bool = True, **extra: object) -> Plan:
    resolution = resolution_for(
        options_for(tmp_path, **extra), make_facts(systemd_running=systemd_running), tmp_path
    )
    return build_plan(on_real_dirs(resolution))


def on_real_dirs(resolution: Resolution) -> Resolution:
    inputs = dataclasses.replace(
        resolution.inputs, units_dir=REAL_UNITS_DIR, conf_dir=REAL_CONF_DIR
    )
    return dataclasses.replace(resolution, inputs=inputs)


def names(plan: Plan) -> List[str]:
    return [s.name for s in steps_of(plan)]


def only(plan: Plan, name: str) -> WriteActivation:
    found = [s for s in steps_of(plan) if s.name == name]
    assert len(found) == 1, names(plan)
    step = found[0]
    assert isinstance(step, WriteActivation)
    return step


def test_the_real_directories_are_the_tools_defaults() -> None:
    assert (DEFAULT_LD_SO_CONF_DIR, DEFAULT_SYSTEMD_DIR) == (REAL_CONF_DIR, REAL_UNITS_DIR)


def test_ld_so_conf_is_written_after_the_smoke_test_and_before_verify(tmp_path: Path) -> None:
    """It reaches every process, boot included: only a library that passed the smoke test
    (rpm, dnf, yum under the snippet's environment) may be put in the loader's cache."""
    plan = real_dirs_plan(tmp_path, ld_so_conf=True)
    order = names(plan)
    assert order.index("smoke-test") < order.index("ld-so-conf") < order.index("verify")
    assert order.index("ld-so-conf") < order.index(
        "record-activation"
    )  # recorded for uninstall --all
    # Everything else that activates the library comes before the smoke test.
    assert order.index("profile") < order.index("smoke-test")
    assert order.index("profile-csh") < order.index("smoke-test")


def test_ld_so_conf_on_the_real_directory_runs_ldconfig(tmp_path: Path) -> None:
    plan = real_dirs_plan(tmp_path, ld_so_conf=True)
    step = only(plan, "ld-so-conf")
    assert step.path == REAL_CONF_DIR / "sqlite-provision.conf"
    lines = [line for line in step.content.splitlines() if not line.startswith("#")]
    assert lines == [str(tmp_path / "opt" / "sqlite" / "current" / "lib")]
    assert step.commands() == [["ldconfig"]]
    shown = {s["name"]: s["commands"] for s in dry_run_steps(plan)}
    assert shown["ld-so-conf"] == ["ldconfig"]
    record = next(s for s in steps_of(plan) if s.name == "record-activation")
    assert isinstance(record, RecordActivation)
    assert str(step.path) in record.files  # so that uninstall --all removes it


def test_a_drop_in_on_the_real_directory_reloads_systemd(tmp_path: Path) -> None:
    plan = real_dirs_plan(tmp_path, systemd_units=("myapp", "worker.service"))
    drop_ins = [s for s in steps_of(plan) if s.name == "systemd"]
    assert [s.path for s in drop_ins] == [
        REAL_UNITS_DIR / "myapp.service.d" / "sqlite-provision.conf",
        REAL_UNITS_DIR / "worker.service.d" / "sqlite-provision.conf",
    ]
    # One daemon-reload, after the last drop-in, and before the smoke test.
    assert [s.commands() for s in drop_ins] == [[], [["systemctl", "daemon-reload"]]]
    shown = [s["commands"] for s in dry_run_steps(plan) if s["name"] == "systemd"]
    assert shown == [[], ["systemctl daemon-reload"]]  # what --dry-run prints
    assert names(plan).index("systemd") < names(plan).index("smoke-test")


@pytest.mark.parametrize(
    "systemd_running, real_dirs, expected",
    [
        pytest.param(True, True, [["systemctl", "daemon-reload"]], id="real-dir-systemd-running"),
        pytest.param(False, True, [], id="real-dir-no-systemd"),
        pytest.param(True, False, [], id="test-dir"),
    ],
)
def test_daemon_reload_only_where_systemd_reads_the_drop_in(
    tmp_path: Path, systemd_running: bool, real_dirs: bool, expected: List[List[str]]
) -> None:
    options = options_for(tmp_path, systemd_units=("myapp",), ld_so_conf=True)
    resolution = resolution_for(options, make_facts(systemd_running=systemd_running), tmp_path)
    if real_dirs:
        resolution = on_real_dirs(resolution)
    plan = build_plan(resolution)
    assert only(plan, "systemd").commands() == expected
    assert only(plan, "ld-so-conf").commands() == ([["ldconfig"]] if real_dirs else [])
