"""SELinux's steps, on a host where it is enabled: the tools installed with yum, the prefix root
made equivalent to /usr where the policy would not give its lib/ a library type (and that rule
deleted by `uninstall --all` when this tool added it), and the tree relabelled after its rename
into place (activation files relabel themselves: steps/activation.py)."""

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from sqlite_provision.errors import CommandFailed
from sqlite_provision.host.selinux import EQUIVALENT_TO
from sqlite_provision.steps.base import Argv, RunState, Step

RELABEL_HINT = (
    "check the policy store (`semanage fcontext -l -C`) and the filesystem's labels, or pass "
    "--no-selinux to leave the labels as they are"
)


def relabel_argv(path: Path, recursive: bool = False) -> Argv:
    """restorecon, forcing the whole context (-F), on `path` (and everything in it)."""
    return ["restorecon", "-RF" if recursive else "-F", str(path)]


def add_rule_argv(root: Path) -> Argv:
    return ["semanage", "fcontext", "-a", "-e", EQUIVALENT_TO, str(root)]


def delete_rule_argv(root: Path) -> Argv:
    return ["semanage", "fcontext", "-d", str(root)]


@dataclass(frozen=True)
class InstallSELinuxTools(Step):
    """restorecon (policycoreutils) and, where a rule is needed, semanage."""

    package_manager: str
    packages: Tuple[str, ...]
    name = "selinux-tools"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [[self.package_manager, "install", "-y", *self.packages]]

    def describe(self) -> str:
        return "install {} with {}".format(" and ".join(self.packages), self.package_manager)

    def run(self, state: RunState) -> str:
        argv = self.commands()[0]
        hint = "fix the package repositories, or install them yourself, or pass --no-selinux"
        state.runner.run(argv, what=self.package_manager, hint=hint)
        path = state.runner.environment.get("PATH")
        still = [t for t in ("restorecon",) if shutil.which(t, path=path) is None]
        if still:
            raise CommandFailed(f"{self.package_manager} reported success but restorecon is "
                                "still missing", hint=hint, argv=argv, returncode=0)  # fmt: skip
        return "installed " + " and ".join(self.packages)


@dataclass(frozen=True)
class AddEquivalence(Step):
    """`semanage fcontext -a -e /usr ROOT`: the tree under ROOT is labelled as /usr is."""

    root: Path
    name = "selinux-rule"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [add_rule_argv(self.root)]

    def describe(self) -> str:
        return f"label {self.root} as {EQUIVALENT_TO} is (an SELinux equivalence rule)"

    def run(self, state: RunState) -> str:
        state.runner.run(add_rule_argv(self.root), what="semanage", hint=RELABEL_HINT)
        state.undo.append((f"delete the equivalence rule for {self.root}",
                           lambda: state.runner.run(delete_rule_argv(self.root))))  # fmt: skip
        return f"{self.root} = {EQUIVALENT_TO}"


@dataclass(frozen=True)
class RemoveEquivalence(Step):
    """`uninstall --all`: delete the rule this tool added (the record says so)."""

    root: Path
    name = "selinux-rule"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [delete_rule_argv(self.root)]

    def describe(self) -> str:
        return f"delete the SELinux equivalence rule for {self.root} (added by this tool)"

    def run(self, state: RunState) -> str:
        state.runner.run(delete_rule_argv(self.root), what="semanage")
        state.undo.append((f"add the equivalence rule for {self.root} back",
                           lambda: state.runner.run(add_rule_argv(self.root))))  # fmt: skip
        return f"deleted {self.root} = {EQUIVALENT_TO}"


@dataclass(frozen=True)
class Relabel(Step):
    """`restorecon -RF` on the version's tree, once it is in place: a tree built under /tmp and
    renamed or copied keeps tmp_t, which confined services may not map."""

    path: Path
    name = "relabel"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [relabel_argv(self.path, recursive=True)]

    def describe(self) -> str:
        return f"give {self.path} the SELinux labels of its place"

    def run(self, state: RunState) -> str:
        state.runner.run(self.commands()[0], what="restorecon", hint=RELABEL_HINT)
        return f"relabelled {self.path}"
