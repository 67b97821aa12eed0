"""Options a later release builds in (recipe/obsolete.py), against real sources and libraries:
what each release's PRAGMA compile_options can list (the compile-option table in its sqlite3.c),
RHEL 8's real 3.26.0 library (built with its spec flags) as the system library of a dry run,
and a real 3.44.2 built without JSON, which the ABI gate refuses.

The gate passing with RHEL 8's library against the session's real 3.44.2 and 3.52.0 builds is
in test_integration.py, beside those builds."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any, Dict, FrozenSet

import pytest

from sqlite_provision.errors import VerifyError
from sqlite_provision.host.library import probe
from sqlite_provision.recipe.features import FEATURES
from sqlite_provision.recipe.flags import known_compile_options
from sqlite_provision.recipe.obsolete import OBSOLETE
from sqlite_provision.runner import Runner
from sqlite_provision.steps.base import RunState
from sqlite_provision.steps.gate import AbiGate
from sqlite_provision.versions import parse_version
from support.clirun import PYTHON, run_cli, tool_env
from support.gate_libraries import RHEL8_LIKE, amalgamation_library, rhel8_system_lib
from support.system_sqlite import SYSTEM_SQLITE_DIR

pytestmark = pytest.mark.integration

# The releases among them that list each option (measured from their sqlite3.c).
LISTED_BY = {
    "ENABLE_JSON1": {"3.26.0"},  # added in 3.9.0, built in from 3.38.0
    "ENABLE_STAT3": {"3.7.17", "3.26.0"},  # a no-op from 3.30.0
    "ENABLE_DESERIALIZE": set(),  # no release lists it: a host with it shows it by its symbols
}


def listable(tarball: Path) -> FrozenSet[str]:
    """The names a release's PRAGMA compile_options can list: its sqlite3.c's table."""
    with tarfile.open(str(tarball)) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/sqlite3.c"))
        source = archive.extractfile(member)
        assert source is not None
        return known_compile_options(source.read().decode("latin-1"))


@pytest.fixture(scope="module")
def tables(shared_tarballs: Dict[str, Any]) -> Dict[str, FrozenSet[str]]:
    found = {v: listable(Path(shared_tarballs[v]["path"])) for v in ("3.44.2", "3.52.0")}
    for version, name in (("3.7.17", "3071700"), ("3.26.0", "3260000")):
        tarball = SYSTEM_SQLITE_DIR / f"sqlite-autoconf-{name}.tar.gz"
        if not tarball.is_file():
            pytest.fail(f"{tarball} is missing (../shared/system-sqlite)")
        found[version] = listable(tarball)
    return found


def test_the_table_matches_what_each_release_can_list(tables: Dict[str, FrozenSet[str]]) -> None:
    """Each row: no release from its `since` on can list it; the older ones that can are the
    measured ones. And the table is complete: every feature option an older release can list
    that a newer one cannot is in it."""
    assert set(OBSOLETE) == set(LISTED_BY)
    for option, row in OBSOLETE.items():
        listing = {v for v, names in tables.items() if option in names}
        assert listing == LISTED_BY[option], option
        assert all(parse_version(v) < row.since for v in listing), option
        if row.omit:  # the option that takes it out is listable from the change on
            assert row.omit in tables["3.44.2"] and row.omit in tables["3.52.0"]
    old = tables["3.7.17"] | tables["3.26.0"]
    for new in ("3.44.2", "3.52.0"):
        gone = {o for o in old - tables[new] if o in FEATURES}
        assert gone <= set(OBSOLETE), (new, gone)


# --- RHEL 8's library as the system library --------------------------------------------------------


def dry_run(tmp_path: Path, python: str, version: str) -> Dict[str, Any]:
    args = ["install", "--dry-run", "--json", "--version", version, "--allow-withdrawn",
            "--prefix-root", str(tmp_path / "opt"), "--profile-file", str(tmp_path / "p.sh"),
            "--python", python]  # fmt: skip
    run = run_cli(args, tool_env(tmp_path / "state"))
    assert run.proc.returncode == 0, run.describe()
    return run.data


def step(plan: Dict[str, Any], name: str) -> Dict[str, Any]:
    [found] = [s for s in plan["steps"] if s["name"] == name]
    return dict(found)


def test_compat_host_against_rhel8_passes_json1_only_to_a_release_without_it(
    tmp_path: Path,
) -> None:
    """RHEL 8's library lists ENABLE_JSON1. The dry run of 3.44.2 and 3.52.0 passes no
    -DSQLITE_ENABLE_JSON1 and shows the gate proving JSON instead; that of 3.33.0 passes it."""
    _, python = rhel8_system_lib(tmp_path)
    for version in ("3.44.2", "3.52.0"):
        plan = dry_run(tmp_path, python, version)
        assert "ENABLE_JSON1" not in {f["option"] for f in plan["features"]}, version
        configure = step(plan, "configure")
        assert "ENABLE_JSON1" not in configure["description"] + " ".join(configure["commands"])
        [probe] = step(plan, "abi-gate")["commands"]
        assert "SELECT json(" in probe and '"ENABLE_JSON1"' in probe, probe
    old = dry_run(tmp_path, python, "3.33.0")
    assert "ENABLE_JSON1" in {f["option"] for f in old["features"]}
    assert "-DSQLITE_ENABLE_JSON1=1" in step(old, "configure")["description"]


def test_a_library_without_json_is_refused_naming_json(
    tmp_path: Path, shared_tarballs: Dict[str, Any]
) -> None:
    """3.44.2 built with RHEL 8's flags and -DSQLITE_OMIT_JSON (a real build): it exports every
    function RHEL 8's library does, but `SELECT json('{}')` fails under it, so the gate refuses
    it (exit 6) naming JSON and the flag that took it out."""
    system_lib, _ = rhel8_system_lib(tmp_path)
    library = amalgamation_library(
        Path(shared_tarballs["3.44.2"]["path"]), (*RHEL8_LIKE, "-DSQLITE_OMIT_JSON")
    )

    with pytest.raises(VerifyError) as caught:
        AbiGate(system_lib, False, library, "3.44.2").run(RunState(Runner(os.environ)))

    error = caught.value
    assert error.exit_code == 6
    assert error.message == (
        f"the new library lacks compile option(s) that {system_lib.path} has: ENABLE_JSON1 (no "
        "built-in JSON, built in from 3.38.0: SELECT json('{}') gives RuntimeError: "
        "SELECT json('{}'): no such function: json)"
    )
    assert error.hint is not None and "drop -DSQLITE_OMIT_JSON from CFLAGS" in error.hint


def test_json_built_in_to_the_host_is_lost_to_a_library_without_json(
    shared_tarballs: Dict[str, Any],
) -> None:
    """This machine's own library (Debian 12's 3.40.1, as Amazon Linux 2023's 3.40.0 or RHEL
    10's 3.46.1) lists no ENABLE_JSON1: JSON is built in to it. The same real 3.44.2 built
    with -DSQLITE_OMIT_JSON takes json() from its programs, so the gate names JSON among what
    is lost, although the host lists no such option."""
    system_lib = probe(Runner(os.environ), PYTHON)
    assert system_lib.version is not None and parse_version(system_lib.version) >= (3, 38, 0), (
        system_lib
    )
    assert "ENABLE_JSON1" not in system_lib.options and "OMIT_JSON" not in system_lib.options
    library = amalgamation_library(
        Path(shared_tarballs["3.44.2"]["path"]), (*RHEL8_LIKE, "-DSQLITE_OMIT_JSON")
    )

    with pytest.raises(VerifyError) as caught:
        AbiGate(system_lib, False, library, "3.44.2").run(RunState(Runner(os.environ)))

    assert (
        "ENABLE_JSON1 (no built-in JSON, built in from 3.38.0: SELECT json('{}') gives "
        "RuntimeError: SELECT json('{}'): no such function: json)"
    ) in caught.value.message
    assert "ENABLE_DESERIALIZE" not in caught.value.message  # proved: 3.44.2 has it built in
