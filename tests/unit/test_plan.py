"""Layer 2: plan tables. (Facts, Options) -> the steps and their exact commands; preflight's host
checks; which source and checksum a request resolves to. Pure: nothing here runs a command,
touches the network or writes outside tmp_path.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from sqlite_provision.config import Options, make_layout, validate
from sqlite_provision.errors import (
    EXIT_DOWNLOAD,
    EXIT_HOST,
    EXIT_USAGE,
    ChecksumError,
    HostError,
    UsageError,
)
from sqlite_provision.host import preflight as checks
from sqlite_provision.host.facts import Facts
from sqlite_provision.plan.build import build_plan
from sqlite_provision.plan.model import Plan
from sqlite_provision.runner import Runner
from sqlite_provision.source.resolve import Source
from sqlite_provision.source.resolve import resolve_source as resolve_validated
from sqlite_provision.steps.activation import WriteProfile
from sqlite_provision.steps.build import Configure, InstallCompiler, Make
from sqlite_provision.steps.install import LinkCurrent
from sqlite_provision.store.manifest import Manifest, read_manifest, write_manifest
from support import REPO_ROOT
from support.plans import UBUNTU, dry_run_steps, make_facts, no_io, resolution_for, steps_of

DATA_FILE = REPO_ROOT / "src" / "sqlite_provision" / "data" / "releases.csv"

BUILD_STEPS = ["fetch", "install-compiler", "extract", "probe-configure", "configure", "make", "stage",
               "abi-gate", "install"]  # fmt: skip
PROFILE_STEPS = ["profile", "profile-csh"]  # the sh snippet and its csh twin
# The step names, in order, for each layout. `record` lists the activation files for uninstall;
# it exists only under a prefix root (with `current`) and when something is written.
# `processes` lists what still maps another libsqlite3 once the new one is active.
STEP_TABLE = {
    "defaults": [
        *BUILD_STEPS,
        "link-current",
        *PROFILE_STEPS,
        "smoke-test",
        "verify",
        "record-activation",
        "find-stale",
    ],
    "--prefix": [*BUILD_STEPS, *PROFILE_STEPS, "smoke-test", "verify", "find-stale"],
    "--no-profile": [*BUILD_STEPS, "link-current", "smoke-test", "verify", "find-stale"],
    "--prefix --no-profile": [*BUILD_STEPS, "smoke-test", "verify", "find-stale"],
}


def catalog_rows() -> Dict[str, Dict[str, str]]:
    """The packaged catalog, read straight from its CSV (not through the code under test)."""
    with DATA_FILE.open(encoding="utf-8", newline="") as handle:
        return {row["version"]: row for row in csv.DictReader(handle)}


def resolve_source(options: Options) -> Source:
    """As a run resolves it: once config.validate has checked the input."""
    return resolve_validated(validate(options))


@pytest.fixture
def options(tmp_path: Path) -> Options:
    return Options(
        version="3.44.2",
        prefix_root=tmp_path / "opt" / "sqlite",
        profile_file=tmp_path / "etc" / "profile.d" / "sqlite-provision.sh",
    )


def plan_for(options: Options, facts: Facts, tmp_path: Path) -> Plan:
    return build_plan(resolution_for(options, facts, tmp_path / "work"))


def step(plan: Plan, name: str) -> Any:
    found = [s for s in steps_of(plan) if s.name == name]
    assert len(found) == 1, [s.name for s in steps_of(plan)]
    return found[0]


# --- build_plan ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", sorted(STEP_TABLE))
@pytest.mark.parametrize("root", [True, False], ids=["root", "not-root"])
@pytest.mark.parametrize("gcc", [True, False], ids=["gcc", "no-gcc"])
def test_step_names_in_order(
    tmp_path: Path, options: Options, layout: str, root: bool, gcc: bool
) -> None:
    if "--prefix" in layout:
        options = replace(options, prefix=tmp_path / "custom")
    options = replace(options, no_profile="--no-profile" in layout)
    plan = plan_for(options, make_facts(root=root, gcc=gcc), tmp_path)
    assert [s.name for s in steps_of(plan)] == STEP_TABLE[layout]
    assert any(isinstance(s, LinkCurrent) for s in steps_of(plan)) is ("--prefix" not in layout)
    assert any(isinstance(s, WriteProfile) for s in steps_of(plan)) is (
        "--no-profile" not in layout
    )


def test_default_layout_links_current_and_activates_it(tmp_path: Path, options: Options) -> None:
    plan = plan_for(options, make_facts(), tmp_path)
    root = options.prefix_root
    assert plan.prefix == root / "3.44.2"
    link = step(plan, "link-current")
    assert isinstance(link, LinkCurrent)
    assert (link.link, link.target) == (root / "current", "3.44.2")
    profile = step(plan, "profile")
    assert isinstance(profile, WriteProfile)
    assert profile.path == options.profile_file
    assert profile.lib_dir == root / "current" / "lib"
    assert f"{root}/current/lib" in profile.content
    assert f"{root}/3.44.2" not in profile.content


def test_the_report_names_the_active_library_before_any_step_ran(
    tmp_path: Path, options: Options
) -> None:
    """What a failed install reports as its library (verification never overwrote it): the
    library the activation points at, not a `lib/lib/` path that never exists."""
    root = options.prefix_root
    report = plan_for(options, make_facts(), tmp_path).new_report(None)
    assert report.library == str(root / "current" / "lib" / "libsqlite3.so.0")
    custom = tmp_path / "custom"
    report = plan_for(replace(options, prefix=custom), make_facts(), tmp_path).new_report(None)
    assert report.library == str(custom / "lib" / "libsqlite3.so.0")


def test_explicit_prefix_is_activated_directly(tmp_path: Path, options: Options) -> None:
    custom = tmp_path / "custom"
    plan = plan_for(replace(options, prefix=custom), make_facts(), tmp_path)
    assert plan.prefix == custom
    assert plan.library == custom / "lib" / "libsqlite3.so.0"  # no `current` link between
    assert all(not isinstance(s, LinkCurrent) for s in steps_of(plan))
    profile = step(plan, "profile")
    assert profile.lib_dir == custom / "lib"
    assert f"{custom}/lib" in profile.content


@pytest.mark.parametrize(
    "gcc, yum, dnf, commands",
    [
        pytest.param(False, True, True, [["yum", "install", "-y", "gcc", "make"]], id="yum"),
        pytest.param(False, True, False, [["yum", "install", "-y", "gcc", "make"]], id="yum-only"),
        pytest.param(False, False, True, [["dnf", "install", "-y", "gcc", "make"]], id="dnf-only"),
        pytest.param(True, True, True, [], id="gcc-present"),
        pytest.param(True, False, True, [], id="gcc-present-dnf"),
    ],
)
def test_compiler_step_commands(
    tmp_path: Path,
    options: Options,
    gcc: bool,
    yum: bool,
    dnf: bool,
    commands: List[List[str]],
) -> None:
    plan = plan_for(options, make_facts(gcc=gcc, yum=yum, dnf=dnf), tmp_path)
    compiler = step(plan, "install-compiler")
    assert isinstance(compiler, InstallCompiler)
    assert compiler.commands() == commands
    shown = next(entry for entry in dry_run_steps(plan) if entry["name"] == "install-compiler")
    assert shown["commands"] == [" ".join(argv) for argv in commands]
    assert shown["skipped"] == (None if commands else "gcc and make are present")


@pytest.mark.parametrize(
    "version, era_switch",
    [
        pytest.param("3.44.2", "--enable-fts5", id="autoconf-3.44.2"),
        pytest.param("3.52.0", "--soname=legacy", id="autosetup-3.52.0"),
    ],
)
@pytest.mark.parametrize("explicit_prefix", [False, True], ids=["prefix-root", "--prefix"])
def test_configure_command_has_the_prefix(
    tmp_path: Path, options: Options, version: str, era_switch: str, explicit_prefix: bool
) -> None:
    options = replace(options, version=version, allow_withdrawn=True)
    if explicit_prefix:
        options = replace(options, prefix=tmp_path / "custom")
    plan = plan_for(options, make_facts(), tmp_path)
    expected_prefix = tmp_path / "custom" if explicit_prefix else options.prefix_root / version
    configure = step(plan, "configure")
    assert isinstance(configure, Configure)
    [help_argv] = step(plan, "probe-configure").commands()
    assert help_argv == ["./configure", "--help"]
    [argv] = configure.commands()
    assert argv[0] == "./configure"
    assert f"--prefix={expected_prefix}" in argv
    assert [a for a in argv if a.startswith("--prefix=")] == [f"--prefix={expected_prefix}"]
    assert era_switch in argv
    assert "--disable-static" in argv


@pytest.mark.parametrize(
    "jobs, cpus, expected",
    [(3, 16, 3), (0, 7, 7), (0, 1, 1), (12, 2, 12)],
)
def test_make_jobs_come_from_options_or_cpus(
    tmp_path: Path, options: Options, jobs: int, cpus: int, expected: int
) -> None:
    plan = plan_for(replace(options, jobs=jobs), make_facts(cpus=cpus), tmp_path)
    make = step(plan, "make")
    assert isinstance(make, Make)
    assert make.commands() == [["make", f"-j{expected}"]]
    assert make.jobs == expected


def as_lists(value: Any) -> Any:
    """`value` with each tuple a list, as JSON gives it back (a frozen view holds tuples)."""
    if isinstance(value, (list, tuple)):
        return [as_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: as_lists(item) for key, item in value.items()}
    return value


def test_plan_view_is_json(tmp_path: Path, options: Options) -> None:
    resolution = resolution_for(options, make_facts(gcc=False), tmp_path / "work")
    plan = build_plan(resolution)
    data = [asdict(entry) for entry in plan.view().steps]
    assert json.loads(json.dumps(data)) == as_lists(data)
    shown = dry_run_steps(plan)
    assert [entry["name"] for entry in shown] == [s.name for s in steps_of(plan)]
    for entry, planned in zip(shown, plan.steps):
        assert isinstance(entry["description"], str) and entry["description"]
        assert all(isinstance(c, str) for c in entry["commands"])
        assert len(entry["commands"]) == len(planned.step.commands())
        assert entry["skipped"] is None
    json.dumps(resolution.request)


def test_build_plan_writes_nothing(tmp_path: Path, options: Options) -> None:
    plan_for(options, make_facts(gcc=False, root=False), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- preflight -------------------------------------------------------------------------------------


def preflight(options: Options, facts: Facts, needs_build: bool = True) -> None:
    """The checks resolve() makes of a pinned version, in its order (the TMPDIR probe is left
    out, as in a dry run)."""
    layout = make_layout(options, "3.44.2")
    checks.check_writable(layout, facts.root)
    checks.check_prefix_is_ours(layout.prefix, read_manifest(layout.prefix) is not None)
    if needs_build:
        checks.check_build(facts, options.install_deps, True, Runner(os.environ))


def host_error(options: Options, facts: Facts) -> HostError:
    with pytest.raises(HostError) as caught:
        preflight(options, facts)
    assert caught.value.exit_code == EXIT_HOST == 3
    return caught.value


@pytest.mark.parametrize("yum, manager", [(True, "yum"), (False, "dnf")])
def test_preflight_not_root_without_gcc_names_the_command(
    options: Options, yum: bool, manager: str
) -> None:
    error = host_error(options, make_facts(root=False, gcc=False, yum=yum))
    assert error.hint is not None
    assert f"{manager} install -y gcc make" in error.hint
    assert "root" in error.message


def test_preflight_non_rhel_without_gcc(options: Options) -> None:
    error = host_error(options, make_facts(os_info=UBUNTU, gcc=False))
    assert UBUNTU.name in error.message
    assert "gcc" in error.message


def test_preflight_rhel_without_any_package_manager(options: Options) -> None:
    host_error(options, make_facts(gcc=False, yum=False, dnf=False))


def test_preflight_no_install_deps(options: Options) -> None:
    error = host_error(replace(options, install_deps=False), make_facts(gcc=False))
    assert "--no-install-deps" in error.message
    assert error.hint is not None and "yum install -y gcc make" in error.hint


def test_preflight_refuses_a_foreign_non_empty_prefix(tmp_path: Path, options: Options) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "bin").mkdir()
    (custom / "bin" / "sqlite3").write_bytes(b"someone else's")
    error = host_error(replace(options, prefix=custom), make_facts())
    assert str(custom) in error.message
    assert (custom / "bin" / "sqlite3").read_bytes() == b"someone else's"


def test_preflight_accepts_a_prefix_it_installed(tmp_path: Path, options: Options) -> None:
    custom = tmp_path / "custom"
    (custom / "lib").mkdir(parents=True)
    (custom / "lib" / "libsqlite3.so.0").write_bytes(b"\x7fELF")
    write_manifest(custom, Manifest("3.44.2", {}, {}, {"lib/libsqlite3.so.0": None}))
    preflight(replace(options, prefix=custom), make_facts())


@pytest.mark.parametrize(
    "facts, needs_build",
    [
        pytest.param(make_facts(root=True, gcc=False), True, id="root-no-gcc-yum"),
        pytest.param(make_facts(root=True, gcc=False, yum=False), True, id="root-no-gcc-dnf"),
        pytest.param(make_facts(root=False, gcc=True), True, id="not-root-gcc"),
        pytest.param(make_facts(os_info=UBUNTU, gcc=True), True, id="ubuntu-gcc"),
        pytest.param(make_facts(root=False, gcc=False), False, id="not-root-no-gcc-installed"),
    ],
)
def test_preflight_passes(
    tmp_path: Path, options: Options, facts: Facts, needs_build: bool
) -> None:
    (tmp_path / "custom").mkdir()  # an empty prefix is fine
    preflight(replace(options, prefix=tmp_path / "custom"), facts, needs_build)


# --- resolve_source ---------------------------------------------------------------------------------


def test_withdrawn_release_is_refused_unless_allowed() -> None:
    rows = catalog_rows()
    assert rows["3.52.0"]["withdrawn"] == "1"
    with pytest.raises(UsageError) as caught:
        resolve_source(Options(version="3.52.0"))
    assert caught.value.exit_code == EXIT_USAGE
    assert "withdrawn" in caught.value.message
    source = resolve_source(Options(version="3.52.0", allow_withdrawn=True))
    assert source.version == "3.52.0"
    assert source.checksum is not None
    assert source.checksum.hexdigest == rows["3.52.0"]["sha3_256"]


def test_withdrawn_tarball_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        resolve_source(Options(tarball=tmp_path / "sqlite-autoconf-3520000.tar.gz"))


def test_release_without_any_hash_fails_closed() -> None:
    row = catalog_rows()["3.25.0"]
    assert not row["sha256"] and not row["sha3_256"]
    with pytest.raises(ChecksumError) as caught:
        resolve_source(Options(version="3.25.0"))
    assert caught.value.exit_code == EXIT_DOWNLOAD == 4
    assert caught.value.hint is not None and "--sha3-256" in caught.value.hint
    digest = "ab" * 32
    source = resolve_source(Options(version="3.25.0", sha256=digest))
    assert source.checksum is not None
    assert (source.checksum.algorithm, source.checksum.hexdigest) == ("sha256", digest)


def test_user_sha3_overrides_the_catalog() -> None:
    row = catalog_rows()["3.44.2"]
    digest = "CD" * 32
    assert digest.lower() not in (row["sha256"], row["sha3_256"])
    source = resolve_source(Options(version="3.44.2", sha3_256=digest))
    assert source.checksum is not None
    assert (source.checksum.algorithm, source.checksum.hexdigest) == ("sha3_256", digest.lower())
    plain = resolve_source(Options(version="3.44.2"))
    assert plain.checksum is not None and plain.checksum.hexdigest == row["sha256"]


@pytest.mark.parametrize("version", ["3.44.2", "3.37.2"])
def test_tarball_named_like_a_release_gets_the_catalog_hash(tmp_path: Path, version: str) -> None:
    row = catalog_rows()[version]
    major, minor, patch = (int(p) for p in version.split("."))
    name = f"sqlite-autoconf-{major}{minor:02d}{patch:02d}00.tar.gz"
    source = resolve_source(Options(tarball=tmp_path / name))
    assert source.version == version
    assert source.local == tmp_path / name and source.url is None
    assert source.checksum is not None
    expected = ("sha3_256", row["sha3_256"]) if row["sha3_256"] else ("sha256", row["sha256"])
    assert (source.checksum.algorithm, source.checksum.hexdigest) == expected


def test_unknown_tarball_needs_a_user_hash(tmp_path: Path) -> None:
    tarball = tmp_path / "sqlite-autoconf-3990000.tar.gz"
    with pytest.raises(ChecksumError):
        resolve_source(Options(tarball=tarball))
    source = resolve_source(Options(tarball=tarball, sha256="01" * 32))
    assert source.checksum is not None and source.checksum.hexdigest == "01" * 32


@pytest.mark.parametrize(
    "url",
    [
        "ftp://mirror.example/2023/sqlite-autoconf-3440200.tar.gz",
        "file:///srv/sqlite-autoconf-3440200.tar.gz",
        "/srv/sqlite-autoconf-3440200.tar.gz",
    ],
)
def test_non_http_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_source(Options(url=url))
    assert caught.value.exit_code == EXIT_USAGE
    assert url in caught.value.message


def test_https_url_named_like_a_release_gets_the_catalog_hash() -> None:
    url = "https://mirror.example/2023/sqlite-autoconf-3440200.tar.gz"
    source = resolve_source(Options(url=url))
    assert source.url == url and source.version == "3.44.2"
    assert source.checksum is not None
    assert source.checksum.hexdigest == catalog_rows()["3.44.2"]["sha256"]


# --- build_plan is pure ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["defaults", "--prefix --no-profile", "units-venv-ld-so-conf"])
def test_build_plan_reads_no_file_no_environment_and_runs_nothing(
    tmp_path: Path, options: Options, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ARCHITECTURE.md says: from a Resolution to the Plan (and its dry-run view) with no
    I/O. Every door to the filesystem, the environment and subprocess is shut while it runs."""
    from sqlite_provision.host.venvs import Venv

    if layout == "--prefix --no-profile":
        options = replace(options, prefix=tmp_path / "custom", no_profile=True)
    elif layout == "units-venv-ld-so-conf":
        options = replace(options, systemd_units=("myapp",), ld_so_conf=True,
                          env_file=tmp_path / "env")  # fmt: skip
    res = resolution_for(options, make_facts(gcc=False), tmp_path / "work")
    if layout == "units-venv-ld-so-conf":
        venv = Venv(tmp_path / "venv", tmp_path / "venv/bin/python", tmp_path / "venv/site")
        res = replace(res, inputs=replace(res.inputs, venvs=(venv,)))
    with no_io(monkeypatch):
        plan = build_plan(res)
        shown = dry_run_steps(plan)
    assert [s["name"] for s in shown] == [s.name for s in steps_of(plan)]
    assert "verify" in [s["name"] for s in shown]


@pytest.mark.parametrize(
    "owner, refused",
    [(None, "a build from source or an artifact"), ("sqlite-provision-sqlite3_44_1", "the package "
     "sqlite-provision-sqlite3_44_1"), ("sqlite-provision-sqlite3_44_2", None)],
)  # fmt: skip
def test_a_package_never_goes_over_a_tree_it_does_not_own(
    tmp_path: Path, owner: Optional[str], refused: Optional[str]
) -> None:
    """install --rpm: rpm writes over files no package owns and its undo would delete them."""
    from sqlite_provision.errors import HostError
    from sqlite_provision.host.preflight import check_prefix_takes_package

    prefix = tmp_path / "3.44.2"
    check_prefix_takes_package(prefix, owner, "sqlite-provision-sqlite3_44_2")  # none there yet
    (prefix / "lib").mkdir(parents=True)
    if refused is None:
        check_prefix_takes_package(prefix, owner, "sqlite-provision-sqlite3_44_2")
        return
    with pytest.raises(HostError) as caught:
        check_prefix_takes_package(prefix, owner, "sqlite-provision-sqlite3_44_2")
    assert caught.value.exit_code == 3 and refused in caught.value.message
    assert "sqlite-provision uninstall 3.44.2" in caught.value.hint
