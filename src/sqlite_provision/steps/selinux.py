"""SELinux's steps, on a host where it is enabled: the tools installed with yum, the prefix root
made equivalent to /usr where the policy would not give its lib/ a library type (and that rule
deleted by `uninstall --all` when this tool added it), and the tree relabelled after its rename
into place (activation files relabel themselves: steps/activation.py)."""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision.host.selinux import EQUIVALENT_TO
from sqlite_provision.steps.base import Argv, RunState, Step
from sqlite_provision.steps.packages import install_argv, install_packages

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


def change_rule(
    state: RunState, argv: Argv, undo: Tuple[str, Argv], hint: Optional[str] = None
) -> None:
    """Run a `semanage fcontext` change, and register the one that takes it back (`undo`: what
    it does, its argv)."""
    state.runner.run(argv, what="semanage", hint=hint)
    what, undo_argv = undo
    state.undo.append((what, lambda: state.runner.run(undo_argv)))


@dataclass(frozen=True)
class InstallSELinuxTools(Step):
    """restorecon (policycoreutils) and, where a rule is needed, semanage."""

    package_manager: str
    packages: Tuple[str, ...]
    name = "install-selinux-tools"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [install_argv(self.package_manager, self.packages)]

    def describe(self) -> str:
        return "install {} with {}".format(" and ".join(self.packages), self.package_manager)

    def run(self, state: RunState) -> str:
        hint = "fix the package repositories, or install them yourself, or pass --no-selinux"
        argv = self.commands()[0]
        install_packages(state, self.package_manager, argv, ("restorecon",), hint, hint)
        return "installed " + " and ".join(self.packages)


@dataclass(frozen=True)
class AddEquivalence(Step):
    """`semanage fcontext -a -e /usr ROOT`: the tree under ROOT is labelled as /usr is."""

    root: Path
    name = "add-equivalence"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [add_rule_argv(self.root)]

    def describe(self) -> str:
        return f"label {self.root} as {EQUIVALENT_TO} is (an SELinux equivalence rule)"

    def run(self, state: RunState) -> str:
        undo = (f"delete the equivalence rule for {self.root}", delete_rule_argv(self.root))
        change_rule(state, add_rule_argv(self.root), undo, hint=RELABEL_HINT)
        return f"{self.root} = {EQUIVALENT_TO}"


@dataclass(frozen=True)
class RemoveEquivalence(Step):
    """`uninstall --all`: delete the rule this tool added (the record says so)."""

    root: Path
    name = "remove-equivalence"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [delete_rule_argv(self.root)]

    def describe(self) -> str:
        return f"delete the SELinux equivalence rule for {self.root} (added by this tool)"

    def run(self, state: RunState) -> str:
        undo = (f"add the equivalence rule for {self.root} back", add_rule_argv(self.root))
        change_rule(state, delete_rule_argv(self.root), undo)
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
