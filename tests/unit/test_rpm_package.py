"""`install --rpm-package NAME`: the name's version and its refusals, rpm -q's answer, what reading
the inputs refuses, and the pure plan (installed already: no install step, so a failed run never
removes a package it did not install). The real dnf, repository and pyz: tests/integration/
test_rpm.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import pytest

from sqlite_provision.config import Options, validate
from sqlite_provision.errors import CommandFailed, HostError, UsageError, VerifyError
from sqlite_provision.host.rpmdb import FIELD_END, PackageInfo, parse_installed
from sqlite_provision.host.selinux import Labelling
from sqlite_provision.plan.build import build_plan
from sqlite_provision.plan.inputs import NamedPackage, check_installed_prefix, named_package_source
from sqlite_provision.plan.resolve import Resolution
from sqlite_provision.recipe.rpmspec import package_name, version_of_package
from sqlite_provision.runner import Completed
from sqlite_provision.steps.base import RunState
from sqlite_provision.steps.rpm import CheckPackageTree
from sqlite_provision.store.manifest import Manifest, write_manifest
from support.plans import dry_run_steps, make_facts, no_io, resolution_for

NAME = "sqlite-provision-sqlite3_44_2"
INSTALLED = PackageInfo(NAME, "3.44.2", "1", "x86_64", (), ())


@pytest.mark.parametrize("version", ["3.44.2", "3.53.4", "3.5.34", "3.8.11.1", "3.24.0"])
def test_the_name_gives_back_its_version(version: str) -> None:
    assert version_of_package(package_name(version)) == version


@pytest.mark.parametrize(
    "name",
    [
        "sqlite", "sqlite-libs", "sqlite-provision-sqlite", "sqlite-provision-sqlite3",
        f"{NAME}-3.44.2-1.x86_64", f"{NAME}.x86_64", "sqlite-provision-sqlite3.44.2",
        "sqlite-provision-sqlite3_44_2_1_1", "sqlite-provision-sqlite3__44", "*", "",
    ],
)  # fmt: skip
def test_anything_but_a_build_rpm_name_is_a_usage_error_naming_the_fix(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate(Options(rpm_package=name))
    assert caught.value.exit_code == 2
    assert (
        "sqlite-provision-sqlite3_44_2" in caught.value.hint and "--rpm FILE" in caught.value.hint
    )


@pytest.mark.parametrize(
    "other",
    [{"rpm": Path("/srv/x.rpm")}, {"artifact": Path("/srv/a.tar.gz")}, {"tarball": Path("/t.gz")},
     {"url": "https://example.com/a.tar.gz"}, {"version": "3.44.2"}, {"sha3_256": "0" * 64},
     {"sha256": "0" * 64}, {"mirror": "https://example.com"}],
)  # fmt: skip
def test_it_excludes_the_other_sources_and_a_checksum(other: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(UsageError) as caught:
        validate(Options(rpm_package=NAME, given=frozenset(other), **other))
    assert caught.value.exit_code == 2 and "--rpm-package and --" in caught.value.message
    if "sha256" in other:
        assert "repository's metadata" in caught.value.hint


def query(returncode: int, stdout: str, stderr: str = "") -> Completed:
    return Completed(["rpm", "-q", "--queryformat", "...", NAME], returncode, stdout, stderr)


def test_rpm_q_says_installed_not_installed_or_fails() -> None:
    fields = [NAME, "3.44.2", "1", "x86_64", f"P {NAME} = 3.44.2-1\n", ""]
    assert parse_installed(NAME, query(0, FIELD_END.join(fields))) == replace(
        INSTALLED, provides=(f"{NAME} = 3.44.2-1",)
    )
    assert parse_installed(NAME, query(1, f"package {NAME} is not installed\n")) is None
    with pytest.raises(CommandFailed):
        parse_installed(NAME, query(1, "", "error: cannot open Packages database\n"))
    with pytest.raises(CommandFailed) as caught:
        parse_installed(NAME, query(0, FIELD_END.join(fields) * 2))
    assert "more than one" in caught.value.message


class RpmAnswers:
    """The rpm database's answers to rpm -q and rpm -ql, as a Runner's capture gives them."""

    def __init__(self, installed: Optional[PackageInfo], files: List[str]) -> None:
        self.installed, self.files, self.asked = installed, files, []  # type: List[List[str]]

    def capture(self, argv: List[str]) -> Completed:
        self.asked.append(argv)
        if argv[1] == "-ql":
            return Completed(argv, 0, "".join(f + "\n" for f in self.files), "")
        if self.installed is None:
            return Completed(argv, 1, f"package {argv[-1]} is not installed\n", "")
        info = self.installed
        fields = [info.name, info.version, info.release, info.arch, "", ""]
        return Completed(argv, 0, FIELD_END.join(fields), "")


def test_not_installed_and_no_dnf_or_yum_is_a_host_error_naming_the_fix() -> None:
    with pytest.raises(HostError) as caught:
        named_package_source(RpmAnswers(None, []), NAME, None)  # type: ignore[arg-type]
    assert caught.value.exit_code == 3 and "rpm alone" in caught.value.message
    assert "--rpm FILE" in caught.value.hint
    source, named = named_package_source(RpmAnswers(None, []), NAME, "dnf")  # type: ignore[arg-type]
    assert (source.version, source.local, source.checksum) == ("3.44.2", None, None)
    assert named == NamedPackage(NAME, "3.44.2", None)
    assert "dnf from the enabled repositories" in source.origin


def test_installed_it_takes_the_rpm_database_version_and_prefix() -> None:
    other = replace(INSTALLED, version="3.44.3")
    with pytest.raises(UsageError) as caught:
        named_package_source(RpmAnswers(other, []), NAME, "dnf")  # type: ignore[arg-type]
    assert "is not SQLite 3.44.2" in caught.value.message
    answers = RpmAnswers(INSTALLED, ["/opt/sqlite/3.44.2/lib/libsqlite3.so.0"])
    source, named = named_package_source(answers, NAME, None)  # type: ignore[arg-type]
    assert named.installed == INSTALLED and "(installed)" in source.origin
    check_installed_prefix(answers, NAME, Path("/opt/sqlite/3.44.2"))  # type: ignore[arg-type]
    with pytest.raises(UsageError) as elsewhere:
        check_installed_prefix(answers, NAME, Path("/srv/sqlite/3.44.2"))  # type: ignore[arg-type]
    assert "not in /srv/sqlite/3.44.2" in elsewhere.value.message
    assert f"rpm -ql {NAME}" in elsewhere.value.hint


def named_resolution(
    tmp_path: Path, installed: Optional[PackageInfo], **changes: object
) -> Resolution:
    res = resolution_for(
        Options(version="3.44.2"), make_facts(gcc=False, yum=False), tmp_path / "work"
    )
    source = replace(res.source, filename=NAME, url=None, checksum=None, origin="--rpm-package")
    inputs = replace(res.inputs, source=source, rpm_package=NamedPackage(NAME, "3.44.2", installed))
    return replace(res, inputs=inputs, source=source, features=(), request={"rpm": NAME}, **changes)


def test_not_installed_dnf_installs_it_then_rpm_v_and_the_manifest_check_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = named_resolution(tmp_path, None)
    with no_io(monkeypatch):
        shown = dry_run_steps(build_plan(res))
    names = [s["name"] for s in shown]
    assert names[:4] == ["install-rpm", "check-rpm", "check-rpm-tree", "abi-gate"], names
    assert shown[0]["commands"] == [f"dnf install -y {NAME}"]
    assert shown[1]["commands"] == [f"rpm -V {NAME}"]
    assert "verify" in names and "link-current" in names
    assert not {"fetch", "configure", "make", "install", "unpack-artifact"} & set(names)


def test_installed_already_the_plan_has_no_install_step(tmp_path: Path) -> None:
    """So nothing in the run can remove it: the undo removes only what the run installed."""
    shown = dry_run_steps(build_plan(named_resolution(tmp_path, INSTALLED, up_to_date="intact")))
    names = [s["name"] for s in shown]
    assert names[:3] == ["check-rpm", "check-rpm-tree", "abi-gate"], names
    assert "install-rpm" not in names and all(not s["skipped"] for s in shown[:3])


@pytest.mark.parametrize("add_rule", [True, False])
def test_a_package_installed_by_hand_is_relabelled_only_if_the_rule_is_missing(
    tmp_path: Path, add_rule: bool
) -> None:
    """rpm labels its files by the policy; without the tool's equivalence rule they need it."""
    labelling = Labelling(True, tmp_path / "root", add_rule, not add_rule, ())
    res = named_resolution(tmp_path, INSTALLED, up_to_date="intact", labelling=labelling)
    shown = {s["name"]: s for s in dry_run_steps(build_plan(res))}
    assert bool(shown["relabel"]["skipped"]) is not add_rule, shown["relabel"]
    assert ("add-equivalence" in shown) is add_rule


def test_the_tree_must_be_the_packages(tmp_path: Path) -> None:
    prefix = tmp_path / "3.44.2"
    step = CheckPackageTree(prefix, NAME)
    state = RunState(runner=None)  # type: ignore[arg-type]
    with pytest.raises(VerifyError) as missing:
        step.run(state)
    assert "manifest is missing" in missing.value.message and "--prefix-root" in missing.value.hint
    for owner, said in (
        (None, "names no package"),
        ("sqlite-provision-sqlite3_44_1", "names sqlite-provision-sqlite3_44_1"),
    ):
        write_tree(prefix, owner)
        with pytest.raises(VerifyError) as caught:
            step.run(state)
        assert said in caught.value.message
    write_tree(prefix, NAME)
    assert "holds" in step.run(state)


def write_tree(prefix: Path, owner: Optional[str]) -> None:
    prefix.mkdir(exist_ok=True)
    build = {"rpm": owner} if owner else {}
    write_manifest(prefix, Manifest("3.44.2", {}, build, {}))


def test_under_the_lock_it_asks_again_so_a_package_installed_meanwhile_is_not_installed_again(
    tmp_path: Path,
) -> None:
    """Another run held the lock and installed it: this plan has no install step (and no undo
    that would remove it)."""
    from sqlite_provision.plan.resolve import named_package_now

    res = named_resolution(tmp_path, None)
    answers = RpmAnswers(INSTALLED, [])
    now = named_package_now(res.inputs, answers)  # type: ignore[arg-type]
    assert now.rpm_package is not None and now.rpm_package.installed == INSTALLED
    names = [s["name"] for s in dry_run_steps(build_plan(replace(res, inputs=now)))]
    assert "install-rpm" not in names and names[0] == "check-rpm"
    assert named_package_now(now, answers) is now and len(answers.asked) == 1  # asked once
