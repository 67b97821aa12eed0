"""The layout's rules (docs/ARCHITECTURE.md), read from the source's own import statements, lazy
imports inside functions included:

- the lower layers (host/, source/, recipe/) never import steps/, store/, engine/, plan, app,
  output or cli; the base modules import only each other;
- only app.py runs the executor and takes the lock (imports engine/);
- output.py depends on data types only (results, errors);
- no import cycle between the parts (a subpackage, or a top-level module);
- pyz_boot (the pyz's start) imports the standard library alone;
- subprocess is imported by runner.py alone, requests by source/fetch.py alone.

Each rule is also run on a made-up graph that breaks it, so that the checker itself can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

import pytest

from support import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "sqlite_provision"
SUBPACKAGES = {"host", "source", "recipe", "steps", "store", "engine", "plan"}
BASE = {"errors", "versions", "digests", "files", "results", "runner", "config", "faultpoints"}
LOWER = {"host", "source", "recipe"}
UPPER = {"steps", "store", "engine", "plan", "app", "output", "cli"}

Graph = Dict[str, Set[str]]  # part -> the parts it imports


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Set[str]:
    """Every module an import statement in the file names, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            # `from sqlite_provision import config` imports the module config.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> Dict[str, Set[str]]:
    return {module_name(p): imported_modules(p) for p in sorted(PACKAGE.rglob("*.py"))}


def part(module: str) -> str:
    """sqlite_provision.host.pythons -> host; sqlite_provision.config -> config."""
    pieces = module.split(".")
    if pieces[0] != "sqlite_provision" or len(pieces) == 1:
        return ""
    return pieces[1]


def parts_graph(mods: Dict[str, Set[str]]) -> Graph:
    known = {part(m) for m in mods}
    graph: Graph = {}
    for module, imports in mods.items():
        source = part(module)
        if not source:
            continue
        targets = {part(i) for i in imports if part(i) in known} - {source, "", "__main__"}
        graph.setdefault(source, set()).update(targets)
    return graph


def cycles(graph: Graph) -> List[List[str]]:
    """Every cycle found by a depth-first walk (each reported once per entry point)."""
    found: List[List[str]] = []
    state: Dict[str, int] = {}

    def visit(node: str, trail: List[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def forbidden_edges(graph: Graph) -> List[Tuple[str, str]]:
    bad = []
    for source, targets in graph.items():
        for target in targets:
            if source in LOWER and target in UPPER:
                bad.append((source, target))
            if (
                source in BASE
                and target not in BASE
                and not (source == "config" and target == "recipe")
            ):
                bad.append((source, target))
            if source == "output" and target not in {"results", "errors"}:
                bad.append((source, target))
            if target == "engine" and source != "app":
                bad.append((source, target))
    return sorted(bad)


def importers(mods: Dict[str, Set[str]], name: str) -> List[str]:
    return sorted(m for m, imports in mods.items() if any(i.split(".")[0] == name for i in imports))


# --- the rules on the real code ------------------------------------------------------------------


def test_the_parts_are_the_documented_ones() -> None:
    graph = parts_graph(modules())
    assert set(graph) == SUBPACKAGES | BASE | {
        "plan",
        "app",
        "output",
        "cli",
        "__main__",
        "pyz_boot",
    }
    for name in SUBPACKAGES:
        assert (PACKAGE / name / "__init__.py").read_text().startswith('"""'), name


def test_the_pyz_start_uses_the_standard_library_alone() -> None:
    """pyz_boot runs before the package and its dependencies can be imported."""
    import sys

    imports = modules()["sqlite_provision.pyz_boot"]
    assert imports and {i.split(".")[0] for i in imports} <= set(sys.stdlib_module_names)


def test_no_layer_imports_upward() -> None:
    assert forbidden_edges(parts_graph(modules())) == []


def test_no_import_cycle_between_parts() -> None:
    assert cycles(parts_graph(modules())) == []


def test_one_module_imports_subprocess_and_one_requests() -> None:
    mods = modules()
    assert importers(mods, "subprocess") == ["sqlite_provision.runner"]
    assert importers(mods, "requests") == ["sqlite_provision.source.fetch"]


def test_only_app_runs_the_executor() -> None:
    mods = modules()
    users = sorted(
        m
        for m, imports in mods.items()
        if any(i.startswith("sqlite_provision.engine") for i in imports)
        and not m.startswith("sqlite_provision.engine")
    )
    assert users == ["sqlite_provision.app"]


# --- the checker can fail ---------------------------------------------------------------------


BROKEN: List[Tuple[str, Dict[str, Iterable[str]]]] = [
    ("host imports steps", {"host": ["steps"], "steps": []}),
    ("source imports app", {"source": ["app"], "app": []}),
    ("recipe imports store", {"recipe": ["store"], "store": []}),
    ("output imports plan", {"output": ["plan", "results"], "plan": []}),
    ("steps runs the executor", {"steps": ["engine"], "engine": []}),
    ("a base module imports host", {"files": ["host"], "host": []}),
]


@pytest.mark.parametrize("name, edges", BROKEN, ids=[b[0] for b in BROKEN])
def test_the_rules_catch_a_broken_layout(name: str, edges: Dict[str, Iterable[str]]) -> None:
    graph = {k: set(v) for k, v in edges.items()}
    assert forbidden_edges(graph) != []


def test_the_cycle_check_catches_a_cycle() -> None:
    assert cycles({"host": {"source"}, "source": {"store"}, "store": {"host"}}) != []
    assert cycles({"host": {"source"}, "source": set()}) == []


def test_the_import_reader_sees_lazy_imports(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "def f():\n    from sqlite_provision.steps import base\n    import subprocess\n"
    )
    assert {"sqlite_provision.steps", "sqlite_provision.steps.base", "subprocess"} <= (
        imported_modules(path)
    )
