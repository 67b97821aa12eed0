"""Layer 3: an undo puts an activation file back with its own mode and owner, not only its bytes.

Each of the tool's file-writing steps (the profile snippet, its csh twin, a systemd drop-in, the
env file, and the activation record) replaces a file that was 0640 and owned by root with
another group; a later step fails; `engine.executor.execute` rolls the run back; the file must
be 0640 and root:<that group> again, with its old bytes. The steps are the tool's own, built by
the same builders the plan uses; the files live in tmp_path. Changing a file's group needs root.
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from sqlite_provision.config import Options, csh_twin, make_layout
from sqlite_provision.engine.executor import execute
from sqlite_provision.errors import CommandFailed
from sqlite_provision.output import StderrProgress
from sqlite_provision.results import Report
from sqlite_provision.runner import Log, Runner
from sqlite_provision.steps.activation import (
    RecordActivation,
    WriteActivation,
    WriteProfile,
    profile_steps,
    service_steps,
)
from sqlite_provision.steps.base import RunState, Step, planned
from support import unavailable
from support.plans import TEMPLATES

VERSION = "3.44.2"
MODE = 0o640


@dataclass(frozen=True)
class Fails(Step):
    """The later step that fails (a verification, say), so that the run is rolled back."""

    name = "verify"

    def describe(self) -> str:
        return "fail"

    def run(self, state: RunState) -> str:
        raise CommandFailed("verification failed on purpose")


@pytest.fixture
def other_gid() -> int:
    """A group that is not root's: a restore that forgets the owner leaves root:root."""
    if os.geteuid() != 0:
        unavailable("needs root to give a file another group")
    for name in ("adm", "nogroup", "daemon", "sys"):
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            continue
        if gid != 0:
            return gid
    pytest.fail("no non-root group on this machine (adm, nogroup, daemon, sys)")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    run_log = Log(tmp_path / "logs" / "run.log")
    yield run_log
    run_log.close()


def options_for(tmp_path: Path) -> Options:
    return Options(
        version=VERSION,
        prefix_root=tmp_path / "opt" / "sqlite",
        profile_file=tmp_path / "etc" / "profile.d" / "sqlite-provision.sh",
        systemd_units=("myapp",),
        env_file=tmp_path / "etc" / "sysconfig" / "sqlite-provision",
    )


def activation_step(tmp_path: Path, name: str) -> Step:
    """The step called `name`, as plan.activation_steps builds it."""
    options = options_for(tmp_path)
    layout = make_layout(options, VERSION)
    written = profile_steps(TEMPLATES, layout, "") + service_steps(
        TEMPLATES, options.systemd_units, options.env_file, layout,
        tmp_path / "etc" / "systemd" / "system", False,
    )  # fmt: skip
    if name == "record-activation":
        assert layout.activation_record is not None
        return RecordActivation(layout.activation_record, tuple(str(s.path) for s in written))
    found = [s for s in written if s.name == name]
    assert len(found) == 1, [s.name for s in written]
    return found[0]


def path_of(step: Step) -> Path:
    if isinstance(step, RecordActivation):
        return step.record
    assert isinstance(step, WriteActivation)
    return step.path


# The bytes each step's file held before the run. The old record lists another file, so that
# RecordActivation is not already satisfied.
BEFORE: Dict[str, bytes] = {
    "profile": b"# an older snippet\nexport LD_LIBRARY_PATH=/old/lib\n",
    "profile-csh": b"# an older csh snippet\nsetenv LD_LIBRARY_PATH /old/lib\n",
    "systemd": b"[Service]\nEnvironment=LD_LIBRARY_PATH=/old/lib\n",
    "env-file": b"LD_LIBRARY_PATH=/old/lib\n",
    "record-activation": b'{"tool": "sqlite-provision", "files": ["/etc/elsewhere.conf"]}\n',
}


def owner_and_mode(path: Path) -> List[int]:
    info = os.stat(str(path))
    return [stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid]


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_undo_restores_mode_and_owner(tmp_path: Path, log: Log, other_gid: int, name: str) -> None:
    step = activation_step(tmp_path, name)
    path = path_of(step)
    before = BEFORE[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(before)
    os.chown(str(path), 0, other_gid)
    os.chmod(str(path), MODE)
    assert owner_and_mode(path) == [MODE, 0, other_gid]
    seen: List[List[int]] = []

    @dataclass(frozen=True)
    class Look(Step):
        """Between the write and the failure: the step really replaced the file."""

        name = "look"

        def describe(self) -> str:
            return f"stat {path}"

        def run(self, state: RunState) -> str:
            seen.append(owner_and_mode(path))
            return "looked"

    layout = make_layout(options_for(tmp_path), VERSION)
    report = Report(False, VERSION, str(layout.prefix), None, None, str(log.path))
    with pytest.raises(CommandFailed) as caught:
        execute(planned([step, Look(), Fails()]), report, Runner(os.environ, log), StderrProgress())

    statuses = [(r.name, r.status) for r in caught.value.partial.steps]
    assert statuses == [(name, "ok"), ("look", "ok"), ("verify", "failed")]
    assert seen and seen[0] != [MODE, 0, other_gid], "the step did not replace the file"
    assert path.read_bytes() == before
    assert owner_and_mode(path) == [MODE, 0, other_gid]
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_the_cases_cover_every_file_an_install_writes_before_verify(tmp_path: Path) -> None:
    """The profile, its csh twin, the drop-in, the env file and the record: no file step is left
    out of the table above (ld.so.conf.d is written after the smoke test, by the same class)."""
    options = options_for(tmp_path)
    layout = make_layout(options, VERSION)
    written = profile_steps(TEMPLATES, layout, "") + service_steps(
        TEMPLATES, options.systemd_units, options.env_file, layout, tmp_path / "systemd", False
    )
    assert sorted([s.name for s in written] + ["record-activation"]) == sorted(BEFORE)
    assert isinstance(written[0], WriteProfile)
    assert written[1].path == csh_twin(options.profile_file)
