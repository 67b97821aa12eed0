"""The environment, read once (docs/ARCHITECTURE.md, "The environment"): config reads every
variable the tool honours into one frozen Environment, and no other module of the tool reads
os.environ (pyz_boot, the pyz's start, reads its own before the package exists); the commands
the runner starts get environments built from that snapshot, and a plan holds no copy of it;
the shipped code names no test-only variable, and its crash points do nothing unless a hook
is registered (the tests' launcher registers one). Each static rule is also run on made-up
code that breaks it, so that the check itself can fail.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from sqlite_provision import faultpoints
from sqlite_provision.config import (
    DEFAULT_LD_SO_CONF_DIR,
    DEFAULT_SYSTEMD_DIR,
    Environment,
    FetchPolicy,
    HostPaths,
    Options,
    read_environment,
)
from sqlite_provision.host.pythons import SYSTEMD_PATH
from sqlite_provision.plan.build import build_plan
from sqlite_provision.runner import Runner
from support import REPO_ROOT
from support.launch import INJECTED, PREFIX
from support.plans import make_facts, resolution_for

PACKAGE = REPO_ROOT / "src" / "sqlite_provision"
# The modules that may read os.environ: config (the tool's one reader) and the pyz's start.
READERS = {"config.py", "pyz_boot.py"}


def environment_reads(source: str) -> List[str]:
    """Where `source` reads the process environment itself: os.environ, os.environb,
    os.getenv, os.getenvb, and those names imported from os."""
    names = {"environ", "environb", "getenv", "getenvb"}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in names:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"line {node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"line {node.lineno}: from os import {a.name}" for a in node.names
                      if a.name in names]  # fmt: skip
    return found


# --- the rules on the real code ------------------------------------------------------------------


def test_only_config_reads_the_environment() -> None:
    readers = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        reads = environment_reads(path.read_text(encoding="utf-8"))
        if reads:
            readers[str(path.relative_to(PACKAGE))] = reads
    assert set(readers) == READERS, readers


def test_the_shipped_code_names_no_test_variable() -> None:
    """Not in the package (code, templates, data), nor in what the pyz adds to it."""
    shipped = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    shipped.append(REPO_ROOT / "scripts" / "build-pyz")
    named = [str(p) for p in shipped if PREFIX.encode() in p.read_bytes()]
    assert shipped and named == []
    assert all(name.startswith(PREFIX) for name in INJECTED)


def test_a_crash_point_without_a_hook_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every test variable naming the point, in a process of its own (were the variable
    honoured, it would be killed), the point passes; a registered hook is called."""
    script = (
        "from sqlite_provision import faultpoints\n"
        "faultpoints.crash_point('before:install')\n"
        "print('alive')\n"
    )
    env = dict(os.environ, **{name: "before:install" for name in INJECTED})
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "alive"), done.stderr
    seen: List[str] = []
    monkeypatch.setattr(faultpoints, "_hooks", [])
    faultpoints.add_hook(seen.append)
    faultpoints.crash_point("during:verify")
    assert seen == ["during:verify"]


# --- the checks can fail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import os\nx = os.environ['HOME']\n",
        "import os\nx = os.environ.get('CFLAGS')\n",
        "import os\nx = os.getenv('TMPDIR')\n",
        "import os\nx = dict(os.environb)\n",
        "from os import environ\n",
        "from os import getenv as g\n",
        "def f():\n    import os\n    return os.environ\n",
    ],
)
def test_the_reader_check_sees_a_read(source: str) -> None:
    assert environment_reads(source) != []


def test_the_reader_check_passes_what_reads_no_environment() -> None:
    assert environment_reads("import os\nos.path.join('a', 'b')\nenv = {}\nenv.get('x')\n") == []


# --- the snapshot --------------------------------------------------------------------------------


def test_the_snapshot_holds_what_the_tool_honours(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    variables = {
        "SQLITE_PROVISION_CACHE_DIR": str(tmp_path / "cache"),
        "SQLITE_PROVISION_LOG_DIR": str(tmp_path / "log"),
        "SQLITE_PROVISION_LOCK_FILE": str(tmp_path / "lock"),
        "SQLITE_PROVISION_MIRROR": "https://mirror.example/sqlite",
        "SQLITE_PROVISION_DEBUG": "1",
        "CFLAGS": "-O0",
        "TMPDIR": str(tmp_path / "tmp"),
        "HOME": str(tmp_path / "home"),
        "PATH": "/opt/bin:/usr/bin",
        "SSL_CERT_FILE": str(ca),
    }
    env = read_environment(variables=variables)
    assert (env.cache_dir, env.log_dir, env.lock_file) == (
        tmp_path / "cache", tmp_path / "log", tmp_path / "lock",
    )  # fmt: skip
    assert (env.mirror, env.cflags, env.debug) == ("https://mirror.example/sqlite", "-O0", True)
    assert (env.tmp_dir, env.home, env.search_path) == (
        tmp_path / "tmp", tmp_path / "home", "/opt/bin:/usr/bin",
    )  # fmt: skip
    assert env.fetch == FetchPolicy(ca_bundle=str(ca))
    assert env.build_dir.parent == tmp_path / "tmp"
    assert env.build_dir == read_environment(variables=variables).build_dir  # one per lock
    other = read_environment(variables={**variables, "SQLITE_PROVISION_LOCK_FILE": "/x"})
    assert other.build_dir != env.build_dir
    assert dict(env.variables) == variables
    with pytest.raises(TypeError):
        env.variables["CFLAGS"] = "-O3"  # type: ignore[index]


def test_the_host_paths_are_the_real_ones_whatever_the_environment() -> None:
    """The old test variables are no longer read: only a constructor argument moves them."""
    variables = {
        "SQLITE_PROVISION_SYSTEMD_DIR": "/tmp/elsewhere",
        "SQLITE_PROVISION_LD_SO_CONF_DIR": "/tmp/elsewhere",
        "SQLITE_PROVISION_OS_ROOT": "/tmp/elsewhere",
        **{name: "/tmp/elsewhere" for name in INJECTED},
    }
    env = read_environment(variables=variables)
    assert env.paths == HostPaths(DEFAULT_SYSTEMD_DIR, DEFAULT_LD_SO_CONF_DIR, Path("/"))
    assert env.fetch == FetchPolicy()
    chosen = HostPaths(systemd_dir=Path("/srv/units"))
    assert read_environment(chosen, variables={}).paths.systemd_dir == Path("/srv/units")


def test_the_process_environment_is_read_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CFLAGS", "-Dread_once")
    env = read_environment(tool_sets={"LC_ALL": "C.UTF-8"})
    assert env.cflags == "-Dread_once" and env.variables["LC_ALL"] == "C.UTF-8"
    monkeypatch.setenv("CFLAGS", "-Dlater")
    assert env.cflags == "-Dread_once"  # a snapshot: what changes later is not seen


def test_commands_run_in_the_runners_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not this process's: a variable set after the snapshot never reaches a command."""
    monkeypatch.setenv("ONLY_IN_THE_PROCESS", "leaked")
    runner = Runner({"PATH": os.defpath, "FROM_THE_SNAPSHOT": "yes", "LD_LIBRARY_PATH": "/x"})
    script = 'echo "${FROM_THE_SNAPSHOT}-${ONLY_IN_THE_PROCESS:-absent}-${LD_LIBRARY_PATH:-none}"'
    assert runner.capture(["sh", "-c", script]).stdout.strip() == "yes-absent-/x"
    cleaned = runner.capture(["sh", "-c", script], env=runner.clean_env(EXTRA="1"))
    assert cleaned.stdout.strip() == "yes-absent-none"


def test_a_plan_holds_no_copy_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_plan reads no environment: a variable of this process appears nowhere in the
    plan, and its verification reaches say what they set, not what they inherit."""
    monkeypatch.setenv("A_VARIABLE_OF_THE_TEST", "a-value-no-plan-may-hold")
    options = Options(version="3.44.2", systemd_units=("myapp",), venvs=(), pythons=())
    plan = build_plan(resolution_for(options, make_facts(), tmp_path / "work"))
    assert "a-value-no-plan-may-hold" not in repr(plan)
    [verify] = [p.step for p in plan.steps if p.step.name == "verify"]
    reaches = getattr(verify, "reaches")  # noqa: B009
    assert [(r.inherit, dict(r.env)) for r in reaches] == [
        (True, {}),  # a login shell: the tool's environment, the snippet on top
        (False, {"LD_LIBRARY_PATH": "/opt/sqlite/current/lib", "PATH": SYSTEMD_PATH}),
    ]
    base = {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/elsewhere", "HOME": "/root"}
    assert reaches[0].environment(base) == {"PATH": "/usr/bin", "HOME": "/root"}
    assert reaches[1].environment(base)["LD_LIBRARY_PATH"] == "/opt/sqlite/current/lib"
    assert "HOME" not in reaches[1].environment(base)


def test_main_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main reads it, then passes it down: the commands never call read_environment."""
    from sqlite_provision import cli, config

    calls: List[Environment] = []
    real = config.read_environment

    def counted(*args: object, **kwargs: object) -> Environment:
        calls.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return calls[-1]

    monkeypatch.setattr(cli, "read_environment", counted)
    monkeypatch.setattr(config, "read_environment", counted)
    monkeypatch.setattr(sys, "argv", ["sqlite-provision", "versions", "--json"])
    umask = os.umask(0o022)  # main sets 022: give the test process its own back
    try:
        with pytest.raises(SystemExit) as done:
            cli.main()
    finally:
        os.umask(umask)
    assert done.value.code == 0 and len(calls) == 1
