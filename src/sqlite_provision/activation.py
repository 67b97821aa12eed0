"""The activation files beyond /etc/profile.d: a csh twin, systemd drop-ins, an env file and
(opt-in) ld.so.conf.d. Services, cron, sudo and Ansible tasks never read /etc/profile.d."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision import activate
from sqlite_provision.errors import UsageError
from sqlite_provision.install_steps import WriteActivation, WriteProfile
from sqlite_provision.options import (
    DEFAULT_LD_SO_CONF_DIR,
    DEFAULT_SYSTEMD_DIR,
    Layout,
    Options,
    ld_so_conf_dir,
    systemd_dir,
)
from sqlite_provision.steps import Step

UNIT_NAME = re.compile(r"^[A-Za-z0-9@._:-]+$")
LD_SO_CONF_NAME = "sqlite-provision.conf"
DROPIN_NAME = "sqlite-provision.conf"


def unit_name(name: str) -> str:
    base = name[: -len(".service")] if name.endswith(".service") else name
    if not base or not UNIT_NAME.match(base) or base.startswith("."):
        raise UsageError(
            f"--systemd-unit {name!r} is not a unit name",
            hint="pass the service name, e.g. --systemd-unit myapp",
        )
    return base


def csh_path(profile: Path) -> Path:
    return profile.with_suffix(".csh") if profile.suffix == ".sh" else Path(str(profile) + ".csh")


def systemd_running() -> bool:
    return os.path.isdir("/run/systemd/system")


def profile_steps(layout: Layout, sqlite_version: str) -> List[Step]:
    if layout.profile_file is None:
        return []
    lib = layout.active_lib_dir
    activate.check_safe_path(layout.profile_file, "--profile-file")
    return [
        WriteProfile(layout.profile_file, activate.render_profile(lib, sqlite_version), lib),
        WriteActivation(
            csh_path(layout.profile_file),
            activate.render("profile.csh.j2", lib_dir=str(lib)),
            lib,
            name="profile-csh",
            purpose="do the same for csh/tcsh login shells",
        ),
    ]


def service_steps(options: Options, layout: Layout) -> List[Step]:
    """Drop-ins and the env file: written before the smoke test, like the profile."""
    lib = layout.active_lib_dir
    steps: List[Step] = []
    units_dir = systemd_dir()
    reload: Tuple[Tuple[str, ...], ...] = ()
    if units_dir == DEFAULT_SYSTEMD_DIR and systemd_running():
        reload = (("systemctl", "daemon-reload"),)
    for index, name in enumerate(options.systemd_units):
        unit = unit_name(name)
        steps.append(
            WriteActivation(
                units_dir / f"{unit}.service.d" / DROPIN_NAME,
                activate.render("systemd-dropin.conf.j2", lib_dir=str(lib), unit=unit),
                lib,
                name="systemd",
                purpose=f"give {unit}.service LD_LIBRARY_PATH={{lib}}",
                after=reload if index == len(options.systemd_units) - 1 else (),
            )
        )
    if options.env_file is not None:
        activate.check_safe_path(options.env_file, "--env-file")
        steps.append(
            WriteActivation(
                options.env_file,
                activate.render("env-file.j2", lib_dir=str(lib)),
                lib,
                name="env-file",
                purpose="hold LD_LIBRARY_PATH={lib} for EnvironmentFile= or cron",
            )
        )
    return steps


def ld_so_conf_step(options: Options, layout: Layout) -> Optional[Step]:
    """Opt-in and placed after the smoke test: it reaches every process, boot included."""
    if not options.ld_so_conf:
        return None
    directory = ld_so_conf_dir()
    after: Tuple[Tuple[str, ...], ...] = ()
    if directory == DEFAULT_LD_SO_CONF_DIR:
        after = (("ldconfig",),)
    return WriteActivation(
        directory / LD_SO_CONF_NAME,
        activate.render("ld.so.conf.j2", lib_dir=str(layout.active_lib_dir)),
        layout.active_lib_dir,
        name="ld-so-conf",
        purpose="put {lib} in the loader's cache for EVERY process (--ld-so-conf)",
        after=after,
    )


def read_record(record: Path) -> List[str]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return [str(p) for p in data.get("files", [])]
    except (OSError, ValueError, AttributeError):
        return []


def write_record(record: Path, files: List[str]) -> None:
    merged = sorted(set(read_record(record)) | set(files))
    data = json.dumps({"tool": "sqlite-provision", "files": merged}, indent=1) + "\n"
    activate.write_atomic(record, data.encode("utf-8"), 0o644)


class RecordActivation(Step):
    """List the activation files in the prefix root, so that `uninstall --all` removes exactly
    those (and only while they still carry our marker)."""

    name = "record"

    def __init__(self, record: Path, files: Tuple[str, ...]) -> None:
        self.record = record
        self.files = files

    def describe(self) -> str:
        return f"list the activation files in {self.record}"

    def is_satisfied(self, ctx: object) -> Optional[str]:
        if set(self.files) <= set(read_record(self.record)):
            return f"{self.record} already lists them"
        return None

    def run(self, ctx: object) -> str:
        from sqlite_provision.steps import Context

        assert isinstance(ctx, Context)  # noqa: S101
        previous = activate.read_bytes(self.record)
        write_record(self.record, list(self.files))
        ctx.undo.append((f"restore {self.record}", lambda: activate.restore(self.record, previous)))
        return f"{len(self.files)} file(s) listed"
