"""Layer 2 and 3: `rollback` and `uninstall` as plans. On a made-up prefix root in tmp_path (two
versions with manifests, `current` and `previous`, the snippet, a venv hook and the record of
activation files), their resolution reads what is there, the pure plan lists the steps, and the
executor runs them: what the plan says the uninstall removes is what goes, and a failure while
a version's files go keeps what was deactivated before it (the next run finishes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from sqlite_provision.config import ACTIVATION_RECORD, MANAGED_MARKER, MANIFEST_NAME
from sqlite_provision.engine.executor import execute
from sqlite_provision.errors import HostError
from sqlite_provision.plan.inputs import RevertInputs
from sqlite_provision.plan.model import Command, Plan
from sqlite_provision.plan.resolve_revert import resolve_rollback, resolve_uninstall
from sqlite_provision.plan.revert import rollback_plan, uninstall_plan, uninstall_result
from sqlite_provision.results import Outcome, Report
from sqlite_provision.runner import Log, Runner
from sqlite_provision.store.manifest import Manifest, scan_tree, write_manifest
from support.clirun import check_plan_ran
from support.plans import dry_run_steps, no_io, steps_of

VERSIONS = ("3.44.2", "3.52.0")


def host(tmp_path: Path) -> Dict[str, Path]:
    """3.44.2 and 3.52.0 under ROOT, `current` -> 3.52.0 and `previous` -> 3.44.2, the snippet
    and a venv hook (both ours), and the record listing them."""
    root, etc = tmp_path / "opt" / "sqlite", tmp_path / "etc"
    for version in VERSIONS:
        prefix = root / version
        (prefix / "lib").mkdir(parents=True)
        (prefix / "lib" / "libsqlite3.so.0").write_bytes(version.encode())
        (prefix / "bin").mkdir()
        (prefix / "bin" / "sqlite3").write_bytes(b"shell")
        write_manifest(prefix, Manifest(version, {}, {}, scan_tree(prefix)))
    os.symlink("3.52.0", str(root / "current"))
    os.symlink("3.44.2", str(root / "previous"))
    profile, hook = etc / "p.sh", tmp_path / "venv" / "site" / "sqlite-provision-hook.pth"
    for path in (profile, hook):
        path.parent.mkdir(parents=True)
        path.write_text(f"# {MANAGED_MARKER}\n")
    record = root / ACTIVATION_RECORD
    record.write_text(json.dumps({"files": [str(profile), str(hook)]}))
    return {"root": root, "profile": profile, "hook": hook, "record": record}


def uninstall_inputs(paths: Dict[str, Path], *versions: str, **extra: object) -> RevertInputs:
    return RevertInputs(Command.UNINSTALL, paths["root"], paths["profile"], versions=versions,
                        units_dir=paths["root"] / "units", conf_dir=paths["root"] / "conf",
                        **extra)  # type: ignore[arg-type]  # fmt: skip


def tree(root: Path) -> List[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), str(root)))
    return sorted(found)


def run(plan: Plan, tmp_path: Path) -> Report:
    """Run the plan; on success, its log records exactly the commands its dry run shows
    (docs/ARCHITECTURE.md: each step's commands() is what its run() executes)."""
    runs = tmp_path / "log"
    path = runs / "run-{}.log".format(len(list(runs.glob("*.log"))) if runs.is_dir() else 0)
    log = Log(path)
    try:
        report = execute(plan.steps, plan.new_report(log.path), Runner(os.environ, log))
    finally:
        log.close()
    check_plan_ran({"steps": dry_run_steps(plan)}, path)
    return report


def test_uninstall_all_removes_the_activation_then_the_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = host(tmp_path)
    (paths["root"] / "3.44.2" / "lib" / "planted").write_text("not ours")
    res = resolve_uninstall(uninstall_inputs(paths, remove_all=True))
    with no_io(monkeypatch):  # the plan is pure, as install's
        plan = uninstall_plan(res)
        result = uninstall_result(res)
    names = [s.name for s in steps_of(plan)]
    assert names == ["remove-link", "remove-link", "deactivate", "deactivate", "record", "remove-version",
                     "remove-version", "remove-empty-root"]  # fmt: skip
    assert [s["commands"] for s in dry_run_steps(plan)] == [[]] * len(names)  # test dirs
    before = tree(tmp_path)
    assert tree(tmp_path) == before  # planning changed nothing

    report = run(plan, tmp_path)

    assert Outcome(report).ok and report.changed
    assert result.removed_versions == tuple(VERSIONS)
    assert result.removed_files == 4
    assert result.kept_foreign == (str(paths["root"] / "3.44.2" / "lib" / "planted"),)
    assert set(result.removed_activation) == {
        str(paths["root"] / "current"), str(paths["root"] / "previous"), str(paths["profile"]),
        str(paths["hook"]),
    }  # fmt: skip
    assert tree(paths["root"].parent) == ["sqlite", "sqlite/3.44.2", "sqlite/3.44.2/lib",
                                          "sqlite/3.44.2/lib/planted"]  # fmt: skip
    assert not paths["profile"].exists() and not paths["hook"].exists()


def test_uninstall_of_one_version_and_a_venv(tmp_path: Path) -> None:
    """The previous version goes, and `previous` with it; the hook of the venv named goes and
    leaves the record; `current`, its version and the snippet stay."""
    paths = host(tmp_path)
    res = resolve_uninstall(uninstall_inputs(paths, "3.44.2", hooks=(paths["hook"],)))
    plan = uninstall_plan(res)
    assert [s.name for s in steps_of(plan)] == [
        "unbind",
        "forget-activation",
        "remove-link",
        "remove-version",
        "remove-empty-root",
    ]
    run(plan, tmp_path)
    assert sorted(os.listdir(str(paths["root"]))) == [ACTIVATION_RECORD, "3.52.0", "current"]
    assert json.loads(paths["record"].read_text())["files"] == [str(paths["profile"])]
    assert paths["profile"].exists() and not paths["hook"].exists()


@pytest.mark.parametrize(
    "versions, said",
    [(("3.52.0",), "is the current version"), (("3.40.0",), "is not installed")],
)
def test_uninstall_refuses_before_anything_changes(
    tmp_path: Path, versions: Tuple[str, ...], said: str
) -> None:
    paths = host(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(HostError) as caught:
        resolve_uninstall(uninstall_inputs(paths, *versions, hooks=(paths["hook"],)))
    assert said in caught.value.message and caught.value.exit_code == 3
    assert tree(tmp_path) == before


def test_a_failure_while_a_version_goes_keeps_the_deactivation(tmp_path: Path) -> None:
    """The deactivation came first and is kept: putting the snippet back would name a
    half-removed tree. The manifest stays, so the next run removes the rest."""
    paths = host(tmp_path)
    shell = paths["root"] / "3.44.2" / "bin" / "sqlite3"
    shell.unlink()
    shell.mkdir()  # unlink() of it fails: a directory where the manifest lists a file
    (shell / "x").write_text("")
    plan = uninstall_plan(resolve_uninstall(uninstall_inputs(paths, remove_all=True)))
    with pytest.raises(OSError):
        run(plan, tmp_path)
    assert not paths["profile"].exists() and not os.path.lexists(str(paths["root"] / "current"))
    assert (paths["root"] / "3.44.2" / MANIFEST_NAME).exists()
    (shell / "x").unlink()
    shell.rmdir()
    again = uninstall_plan(resolve_uninstall(uninstall_inputs(paths, remove_all=True)))
    assert [s.name for s in steps_of(again)] == [
        "remove-version",
        "remove-version",
        "remove-empty-root",
    ]
    run(again, tmp_path)
    assert not paths["root"].exists()


def test_rollback_switches_and_verifies_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = host(tmp_path)
    inputs = RevertInputs(Command.ROLLBACK, paths["root"], paths["profile"], min_version="3.24.0")
    res = resolve_rollback(inputs)
    assert (res.current, res.previous, res.version) == ("3.52.0", "3.44.2", "3.44.2")
    with no_io(monkeypatch):
        plan = rollback_plan(res)
        dry_run_steps(plan)
    assert [s.name for s in steps_of(plan)] == ["switch-to-previous", "verify"]
    verify = steps_of(plan)[1]
    assert verify.prefix == paths["root"] / "3.44.2" and verify.expected_version == "3.44.2"
    run(plan, tmp_path)  # no python to verify: the switch alone
    assert os.readlink(str(paths["root"] / "current")) == "3.44.2"
    assert os.readlink(str(paths["root"] / "previous")) == "3.52.0"
    assert sorted(p for p in os.listdir(str(paths["root"])) if p.startswith(".")) == [
        ACTIVATION_RECORD
    ]  # the journal is gone once the run succeeded
