"""SELinux: the parsers on the real tools' text, the decision table (relabel, the equivalence
rule, the packages, exit 3), the plan's order and commands, the record and `uninstall --all`,
and the two questions this machine can answer for real: matchpathcon's type for a path (Debian's
policy store, selinux-policy-default) and a file's `security.selinux` attribute (ext4 keeps it
without an SELinux kernel)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import pytest

from sqlite_provision.config import Options
from sqlite_provision.errors import EXIT_HOST, HostError
from sqlite_provision.host import selinux
from sqlite_provision.host.selinux import Labelling, SELinux, plan_labelling
from sqlite_provision.plan.build import build_plan
from sqlite_provision.plan.inputs import RevertInputs
from sqlite_provision.plan.model import Command
from sqlite_provision.plan.resolve_revert import resolve_uninstall
from sqlite_provision.plan.revert import uninstall_plan
from sqlite_provision.runner import Runner
from sqlite_provision.steps.activation import RecordActivation, WriteActivation
from sqlite_provision.store.records import read_selinux_rule, write_record
from support import need_tool
from support.plans import dry_run_steps, make_facts, resolution_for, steps_of

# `semanage fcontext -l -C -n` on this machine: a type rule (its line ends in a space) and an
# equivalence.
LISTED = (
    "/data/x(/.*)?                                      all files          "
    "system_u:object_r:lib_t:s0 \n/srv/sqlite = /usr\n"
)


def test_context_type() -> None:
    assert selinux.context_type("system_u:object_r:lib_t:s0\n") == "lib_t"
    assert selinux.context_type("unconfined_u:object_r:user_tmp_t:s0\0") == "user_tmp_t"
    assert selinux.context_type("<<none>>") is None
    assert selinux.context_type("") is None


def test_parse_equivalences() -> None:
    assert selinux.parse_equivalences(LISTED) == {"/srv/sqlite": "/usr"}
    assert selinux.parse_equivalences("") == {}


ENABLED = SELinux(True, "/usr/sbin/restorecon", "/usr/sbin/semanage", "/usr/sbin/matchpathcon")
ROOT = Path("/srv/sqlite")


@pytest.mark.parametrize(
    "facts, wanted, expected",
    [
        (SELinux(), True, Labelling()),
        (replace(ENABLED, library_type="lib_t"), False, Labelling()),
        (replace(ENABLED, library_type="lib_t"), True, Labelling(True, ROOT)),
        (replace(ENABLED, library_type="var_t"), True, Labelling(True, ROOT, add_rule=True)),
        (replace(ENABLED, library_type="default_t"), True, Labelling(True, ROOT, True)),
        (replace(ENABLED, library_type=None), True, Labelling(True, ROOT, True)),
        # A rule for the root is there already: never added again, recorded as pre-existing.
        (replace(ENABLED, library_type="lib_t", rule="/usr"), True,
         Labelling(True, ROOT, rule_existed=True)),
        (replace(ENABLED, library_type="lib_t", restorecon=None), True,
         Labelling(True, ROOT, packages=("policycoreutils",))),
        (replace(ENABLED, library_type="var_t", semanage=None), True,
         Labelling(True, ROOT, True, packages=("policycoreutils-python-utils",))),
        # semanage is only needed where a rule is.
        (replace(ENABLED, library_type="lib_t", semanage=None), True, Labelling(True, ROOT)),
    ],
)  # fmt: skip
def test_what_a_run_does(facts: SELinux, wanted: bool, expected: Labelling) -> None:
    assert plan_labelling(facts, wanted, ROOT, "9", None) == expected


def test_rhel7_names_its_own_semanage_package() -> None:
    facts = replace(ENABLED, library_type="var_t", semanage=None, restorecon=None)
    found = plan_labelling(facts, True, ROOT, "7", None)
    assert found.packages == ("policycoreutils", "policycoreutils-python")


@pytest.mark.parametrize(
    "facts, package",
    [
        (replace(ENABLED, restorecon=None, library_type="lib_t"), "policycoreutils"),
        (replace(ENABLED, semanage=None, library_type="var_t"), "policycoreutils-python-utils"),
        (replace(ENABLED, matchpathcon=None), "libselinux-utils"),
    ],
)
def test_a_missing_tool_that_will_not_be_installed_is_exit_3(facts: SELinux, package: str) -> None:
    with pytest.raises(HostError) as caught:
        plan_labelling(facts, True, ROOT, "9", " and --no-install-deps was given")
    assert caught.value.exit_code == EXIT_HOST
    assert package in caught.value.message
    assert "--no-selinux" in str(caught.value.hint)


def test_disabled_host_never_fails_on_missing_tools() -> None:
    assert plan_labelling(SELinux(), True, ROOT, "9", " and nothing") == Labelling()


# --- the plan ----------------------------------------------------------------------------


@pytest.fixture
def options(tmp_path: Path) -> Options:
    return Options(
        version="3.44.2",
        prefix_root=tmp_path / "srv" / "sqlite",
        profile_file=tmp_path / "etc" / "profile.d" / "sqlite-provision.sh",
        env_file=tmp_path / "etc" / "sysconfig" / "sqlite",
        ld_so_conf=True,
    )


def names(steps: List[object]) -> List[str]:
    return [s.name for s in steps]


def test_plan_order_rule_then_relabel_after_the_rename_before_activation(
    tmp_path: Path, options: Options
) -> None:
    res = resolution_for(options, make_facts(), tmp_path / "work")
    root = options.prefix_root
    res = replace(
        res, labelling=Labelling(True, root, add_rule=True, packages=("policycoreutils",))
    )
    plan = build_plan(res)
    order = names(steps_of(plan))
    assert order.index("install-selinux-tools") < order.index("install")
    assert order[order.index("install") :][:4] == [
        "install",
        "add-equivalence",
        "relabel",
        "link-current",
    ]
    shown = {s["name"]: s["commands"] for s in dry_run_steps(plan)}
    assert shown["install-selinux-tools"] == ["yum install -y policycoreutils"]
    assert shown["add-equivalence"] == [f"semanage fcontext -a -e /usr {root}"]
    assert shown["relabel"] == [f"restorecon -RF {root / '3.44.2'}"]
    written = [s for s in steps_of(plan) if isinstance(s, WriteActivation)]
    assert len(written) == 4  # the sh and csh snippets, the env file, ld.so.conf
    for step in written:
        assert step.commands()[0] == ["restorecon", "-F", str(step.path)]
    record = next(s for s in steps_of(plan) if isinstance(s, RecordActivation))
    assert dict(record.selinux_rule) == {
        "path": str(root), "equal": "/usr", "added_by": "sqlite-provision"
    }  # fmt: skip


def test_no_labelling_leaves_the_plan_as_it_was(tmp_path: Path, options: Options) -> None:
    res = resolution_for(options, make_facts(), tmp_path / "work")
    before = dry_run_steps(build_plan(res))
    assert not any("restorecon" in str(s["commands"]) for s in before)
    assert not any(
        s["name"] in ("relabel", "add-equivalence", "install-selinux-tools") for s in before
    )
    relabelled = dry_run_steps(build_plan(replace(res, labelling=Labelling(True, Path("/x")))))
    assert [s for s in relabelled if s["name"] != "relabel"] != before  # the files relabel too


# --- the record and uninstall --all --------------------------------------------------------


@pytest.mark.parametrize("added_by, deleted", [("sqlite-provision", True), ("pre-existing", False)])
def test_uninstall_all_deletes_only_the_rule_the_tool_added(
    tmp_path: Path, added_by: str, deleted: bool
) -> None:
    root = tmp_path / "srv" / "sqlite"
    root.mkdir(parents=True)
    rule = {"path": str(root), "equal": "/usr", "added_by": added_by}
    write_record(root / ".sqlite-provision-activation.json", [], rule)
    inputs = RevertInputs(Command.UNINSTALL, root, tmp_path / "profile.sh", remove_all=True)
    plan = uninstall_plan(resolve_uninstall(inputs))
    commands = [c for s in dry_run_steps(plan) for c in s["commands"]]
    assert (f"semanage fcontext -d {root}" in commands) is deleted
    named = uninstall_plan(resolve_uninstall(replace(inputs, remove_all=False, versions=())))
    assert not any("semanage" in str(s["commands"]) for s in dry_run_steps(named))


def test_the_record_keeps_who_added_the_rule(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    write_record(
        record, ["/a"], {"path": "/srv/sqlite", "equal": "/usr", "added_by": "sqlite-provision"}
    )
    # A later install finds the rule there (its own): it must not become "pre-existing".
    write_record(
        record, ["/b"], {"path": "/srv/sqlite", "equal": "/usr", "added_by": "pre-existing"}
    )
    found = read_selinux_rule(record)
    assert found is not None and found["added_by"] == "sqlite-provision"


# --- what this machine answers for real --------------------------------------------------


def test_matchpathcon_answers_for_the_default_root_and_one_under_srv() -> None:
    """Debian's selinux-policy-default, like RHEL's, maps /opt/.../lib to lib_t and /srv to
    var_t: the root under /srv is the one that needs the equivalence."""
    tool = need_tool("matchpathcon")
    runner = Runner(dict(os.environ))
    opt = Path("/opt/sqlite/3.44.2/lib/libsqlite3.so.0")
    srv = Path("/srv/sqlite/3.44.2/lib/libsqlite3.so.0")
    assert selinux.default_type(runner, tool, opt) == "lib_t"
    assert selinux.default_type(runner, tool, srv) == "var_t"
    assert "var_t" not in selinux.LIBRARY_TYPES


def test_file_type_reads_the_attribute(tmp_path: Path) -> None:
    library = tmp_path / "libsqlite3.so.0"
    library.write_bytes(b"x")
    assert selinux.file_type(library) is None
    try:
        os.setxattr(str(library), selinux.XATTR, b"system_u:object_r:tmp_t:s0\0")
    except OSError as exc:  # not root, or a filesystem without security.* attributes
        pytest.skip(f"cannot set {selinux.XATTR} here: {exc}")
    assert selinux.file_type(library) == "tmp_t"


def test_a_host_without_selinuxfs_runs_no_command(tmp_path: Path) -> None:
    """No selinuxfs (this machine's kernel): not one command, so the log is as it was."""
    if selinux.SELINUXFS.is_dir():
        pytest.skip("this kernel has selinuxfs")
    runner = Runner({"PATH": os.environ.get("PATH", "")})
    ran: List[Optional[str]] = []
    runner.capture = lambda argv, **kw: ran.append(argv[0])  # type: ignore[method-assign,assignment,return-value]
    found = selinux.probe(runner, os.environ.get("PATH", ""), ROOT, ROOT / "lib")
    assert found == SELinux() and ran == []
