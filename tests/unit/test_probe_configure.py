"""Layer 3: ProbeConfigure and Configure run by the executor on a made-up source tree whose
`configure` is a script: it lists options for `--help` and records its arguments otherwise.
The plan's configure (predicted from the release's era) runs only where the tree's own
`configure --help` calls for exactly it; a tree that differs stops the run (exit 5) before
configure runs, never a command --dry-run did not show. The real tarballs' help texts are
checked against the prediction in test_build_flags.py."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Iterator, List, Optional, Tuple

import pytest

from sqlite_provision.engine.executor import execute
from sqlite_provision.errors import EXIT_COMMAND, CommandFailed
from sqlite_provision.recipe import flags
from sqlite_provision.recipe.features import select
from sqlite_provision.results import Report
from sqlite_provision.runner import Log, Runner
from sqlite_provision.steps.base import RunState, Step, planned
from sqlite_provision.steps.build import Configure, ProbeConfigure
from sqlite_provision.versions import Version

VERSION = (3, 52, 0)


@dataclass(frozen=True)
class Tree(Step):
    """What Extract leaves: the unpacked tree, as the run's source directory."""

    srcdir: Path
    name = "extract"

    def describe(self) -> str:
        return f"use {self.srcdir}"

    def run(self, state: RunState) -> str:
        state.srcdir = self.srcdir
        return "tree in place"


def make_tree(root: Path, era_file: str, supported: FrozenSet[str], help_status: int = 0) -> Path:
    """A tree of one era (auto.def: autosetup; configure.ac: autoconf) whose configure lists
    `supported` for --help, and otherwise writes its arguments to ARGS."""
    srcdir = root / "src"
    srcdir.mkdir(parents=True)
    (srcdir / era_file).write_text("made up\n")
    listing = "".join(f"  {option}  some words\\n" for option in sorted(supported))
    script = srcdir / "configure"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --help ]; then\n'
        f'  printf "Usage: configure [options]\\n{listing}"\n'
        f"  exit {help_status}\n"
        "fi\n"
        'printf "%s\\n" "$@" > ARGS\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return srcdir


def planned_config(prefix: str, version: Version = VERSION) -> flags.BuildConfig:
    era = flags.predict_era(version)
    return flags.make_build_config(
        era=era,
        prefix=prefix,
        version=version,
        supported=flags.predicted_supported(era, version),
        predicted=True,
        features=select("rhel", version),
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    run_log = Log(tmp_path / "run.log")
    yield run_log
    run_log.close()


def run(
    tmp_path: Path, log: Log, srcdir: Path, version: Version = VERSION
) -> Tuple[Report, Optional[BaseException]]:
    config = planned_config(str(tmp_path / "prefix"), version)
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    steps: List[Step] = [
        Tree(srcdir),
        ProbeConfigure(config, version, select("rhel", version), "", work),
        Configure(config, work),
    ]
    report = Report(False, "3.52.0", str(tmp_path / "prefix"), None, None, str(log.path))
    try:
        return execute(planned(steps), report, Runner(os.environ, log)), None
    except CommandFailed as exc:
        return exc.partial, exc


def statuses(report: Report) -> List[Tuple[str, str]]:
    return [(r.name, r.status) for r in report.steps]


def test_a_tree_that_takes_the_planned_options_is_configured_with_them(
    tmp_path: Path, log: Log
) -> None:
    supported = flags.predicted_supported(flags.AUTOSETUP, VERSION)
    srcdir = make_tree(tmp_path, "auto.def", supported)
    report, error = run(tmp_path, log, srcdir)
    assert error is None
    assert statuses(report) == [("extract", "ok"), ("probe-configure", "ok"), ("configure", "ok")]
    planned_argv = planned_config(str(tmp_path / "prefix")).configure_argv()
    assert (srcdir / "ARGS").read_text().split("\n")[:-1] == planned_argv[1:]
    assert "--soname=legacy" in planned_argv and "--disable-rpath" in planned_argv


@pytest.mark.parametrize(
    "era_file, version, drop, add, said",
    [
        pytest.param("auto.def", VERSION, "--disable-rpath", "", "does not list --disable-rpath",
                     id="lacks"),
        # 3.50.0 is predicted without --disable-rpath (3.51.0 added it): a tree that has it
        pytest.param("auto.def", (3, 50, 0), "", "--disable-rpath",
                     "calls for --disable-rpath too", id="lists-more"),
        pytest.param("configure.ac", VERSION, "", "", "an autoconf tree, planned as autosetup",
                     id="era"),
    ],
)  # fmt: skip
def test_a_tree_that_differs_from_the_plan_stops_before_configure(
    tmp_path: Path, log: Log, era_file: str, version: Version, drop: str, add: str, said: str
) -> None:
    supported = set(flags.predicted_supported(flags.AUTOSETUP, version)) - {drop}
    srcdir = make_tree(tmp_path, era_file, frozenset(supported | ({add} if add else set())))
    (srcdir / "ltmain.sh").write_text("")  # what makes a configure.ac tree autoconf's
    report, error = run(tmp_path, log, srcdir, version)
    assert isinstance(error, CommandFailed) and error.exit_code == EXIT_COMMAND == 5
    assert "this tree's configure differs from the plan" in error.message, error.message
    assert said in error.message, error.message
    assert statuses(report) == [
        ("extract", "ok"), ("probe-configure", "failed"), ("configure", "not-run")
    ]  # fmt: skip
    assert not (srcdir / "ARGS").exists()


def test_a_failing_configure_help_stops_the_run(tmp_path: Path, log: Log) -> None:
    supported = flags.predicted_supported(flags.AUTOSETUP, VERSION)
    srcdir = make_tree(tmp_path, "auto.def", supported, help_status=1)
    report, error = run(tmp_path, log, srcdir)
    assert isinstance(error, CommandFailed) and error.exit_code == 5
    assert "`configure --help` failed with exit status 1" in error.message
    assert statuses(report)[-1] == ("configure", "not-run")
    assert not (srcdir / "ARGS").exists()
