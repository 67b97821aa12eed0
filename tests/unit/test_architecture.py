"""docs/ARCHITECTURE.md's rules on the engine, read from the code: every command that changes
the host goes through `app.planned_run` (the lock, the recovery and the executor are used there
alone, and the modules around the engine change no file themselves); the plans are pure and take
no `Options`; and whether a step runs is decided in one place, the executor. The import rules
are in test_layout.py, the environment's in test_environment.py, and the plans' purity at run
time in test_plan.py and test_revert_plans.py. Each static rule is also run on made-up code
that breaks it, so that the check itself can fail.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, List, Set

import pytest

from sqlite_provision.config import Options
from support import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "sqlite_provision"
# The commands that change the host: they, and only they, take --dry-run.
HOST_CHANGING = {"install", "build", "rollback", "uninstall"}
# What the engine's path holds to itself: called from app.planned_run alone.
ENGINE_CALLS = {"execute", "take_lock", "recover_leftovers"}
# Calls that change a file, a directory or a link: none in the modules around the engine.
FILE_CHANGES = {
    "unlink", "rename", "symlink", "symlink_to", "hardlink_to", "link", "rmdir", "mkdir",
    "makedirs", "removedirs", "chmod", "chown", "lchown", "write_text", "write_bytes", "touch",
    "truncate", "rmtree", "move", "copy", "copy2", "copyfile", "copytree", "mkstemp", "mkdtemp",
    "write_atomic", "set_link", "swap_symlink", "make_parents", "remove_empty", "recover",
}  # fmt: skip
# The modules around the engine: they read, plan, show, but change nothing themselves.
AROUND_THE_ENGINE = ["app.py", "cli.py", "output.py", "plan/*.py"]


def called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def call_graph(source: str) -> Dict[str, Set[str]]:
    """Each module-level function -> the names it calls (nested functions and lambdas
    included, as they run on its behalf)."""
    graph: Dict[str, Set[str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            graph[node.name] = {
                called_name(n) for n in ast.walk(node) if isinstance(n, ast.Call)
            } - {""}
    return graph


def reaches(graph: Dict[str, Set[str]], start: str, target: str) -> bool:
    seen: Set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name == target:
            return True
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return False


def callers(graph: Dict[str, Set[str]], names: Iterable[str]) -> Dict[str, Set[str]]:
    """Which function calls each of `names`."""
    return {n: {f for f, calls in graph.items() if n in calls} for n in names}


def file_changes(source: str) -> List[str]:
    return [
        f"line {n.lineno}: {called_name(n)}()"
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and called_name(n) in FILE_CHANGES
    ]


def skip_decisions(source: str) -> List[str]:
    """Where `source` decides whether a step runs: it calls is_satisfied, or reads a step's
    unless_changed or a planned step's skip."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            if node.attr in ("is_satisfied", "unless_changed", "skip"):
                found.append(f"line {node.lineno}: .{node.attr}")
    return found


# --- every command that changes the host goes through app.planned_run ----------------------------


def app_graph() -> Dict[str, Set[str]]:
    return call_graph((PACKAGE / "app.py").read_text(encoding="utf-8"))


def test_the_host_changing_commands_are_those_with_a_dry_run() -> None:
    from sqlite_provision.cli import cli

    commands = typing.cast(Dict[str, Any], cli.commands)
    with_dry_run = {
        name for name, command in commands.items()
        if any(param.name == "dry_run" for param in command.params)
    }  # fmt: skip
    assert with_dry_run == HOST_CHANGING


def test_every_host_changing_command_goes_through_planned_run() -> None:
    graph = app_graph()
    assert {name for name in HOST_CHANGING if not reaches(graph, name, "planned_run")} == set()


def test_the_lock_recovery_and_executor_are_used_by_planned_run_alone() -> None:
    graph = app_graph()
    assert callers(graph, ENGINE_CALLS) == {name: {"planned_run"} for name in ENGINE_CALLS}
    assert callers(graph, ["held"]) == {"held": {"take_lock"}}  # lock.held
    assert callers(graph, ["recover"]) == {"recover": {"recover_leftovers"}}


def test_the_modules_around_the_engine_change_no_file() -> None:
    """app, cli, output and plan/ read, resolve, plan and show; what changes the host is a
    step's, run by the executor (app.recover_leftovers calls store.recovery under the lock)."""
    found = {}
    for pattern in AROUND_THE_ENGINE:
        for path in sorted(PACKAGE.glob(pattern)):
            changes = file_changes(path.read_text(encoding="utf-8"))
            if path.name == "app.py":  # recover: in recover_leftovers, which planned_run calls
                changes = [c for c in changes if not c.endswith(" recover()")]
            if changes:
                found[str(path.relative_to(PACKAGE))] = changes
    assert found == {}


# --- the plans are pure and take no Options -------------------------------------------------------


def plan_functions() -> List[Any]:
    from sqlite_provision.plan import build, revert

    return [
        function
        for module in (build, revert)
        for _, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__
    ]


def holds_options(hint: Any, seen: Set[Any]) -> bool:
    """Whether a type names Options, in a union, a container or a dataclass's fields."""
    if hint is Options:
        return True
    if hint in seen:
        return False
    seen.add(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        return any(holds_options(h, seen) for h in hints.values())
    return any(holds_options(arg, seen) for arg in typing.get_args(hint))


def test_the_plans_take_a_resolution_and_no_options() -> None:
    """build_plan, rollback_plan, uninstall_plan and their helpers: what they take holds no
    Options, however deep (the few choices the steps use are plan.inputs.Choices)."""
    from sqlite_provision.plan.build import build_plan
    from sqlite_provision.plan.resolve import Resolution

    functions = plan_functions()
    assert build_plan in functions and len(functions) > 5
    taking = {
        function.__name__
        for function in functions
        for name, hint in typing.get_type_hints(function).items()
        if name != "return" and holds_options(hint, set())
    }
    assert taking == set()
    assert typing.get_type_hints(build_plan)["res"] is Resolution


# --- the executor decides which step runs -------------------------------------------------------


def test_only_the_executor_decides_whether_a_step_runs() -> None:
    """No step asks itself whether it is already done: the executor reads the plan's reason,
    the run's and the host's (is_satisfied); the plan's view shows the plan's reason."""
    allowed = {"engine/executor.py", "plan/model.py"}
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE))
        decisions = skip_decisions(path.read_text(encoding="utf-8"))
        if decisions and where not in allowed:
            found[where] = decisions
    assert found == {}
    model = skip_decisions((PACKAGE / "plan" / "model.py").read_text(encoding="utf-8"))
    assert model and all(d.endswith(".skip") for d in model)


# --- the checks can fail -------------------------------------------------------------------------


BYPASS = """
def planned_run():
    with take_lock():
        recover_leftovers()
        execute()

def uninstall():
    execute()

def rollback():
    return planned_run()
"""


def test_the_engine_check_sees_a_bypass() -> None:
    graph = call_graph(BYPASS)
    assert callers(graph, ["execute"]) == {"execute": {"planned_run", "uninstall"}}
    assert reaches(graph, "rollback", "planned_run")
    assert not reaches(graph, "uninstall", "planned_run")


@pytest.mark.parametrize(
    "source",
    ["path.unlink()\n", "os.symlink('a', 'b')\n", "shutil.rmtree(p)\n",
     "write_atomic(p, b'', 0o644)\n", "def f():\n    p.write_text('x')\n"],
)  # fmt: skip
def test_the_file_check_sees_a_change(source: str) -> None:
    assert file_changes(source) != []


def test_the_file_check_passes_reads() -> None:
    assert file_changes("p.read_text()\nos.stat(p)\ndataclasses.replace(o, a=1)\n") == []


@pytest.mark.parametrize(
    "source",
    ["if self.is_satisfied(state):\n    pass\n", "x = step.unless_changed\n",
     "if planned.skip:\n    pass\n"],
)  # fmt: skip
def test_the_skip_check_sees_a_decision(source: str) -> None:
    assert skip_decisions(source) != []


@dataclasses.dataclass(frozen=True)
class Inner:
    options: typing.Optional[Options]


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: typing.Tuple[Inner, ...]


def test_the_options_check_sees_options_deep_down() -> None:
    assert holds_options(Outer, set())
    assert not holds_options(typing.Dict[str, Path], set())
