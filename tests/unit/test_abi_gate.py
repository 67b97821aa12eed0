"""Layer 2: the ABI gate (steps/gate.py AbiGate) run directly, against a small shared library
compiled here with gcc: it exports the sqlite3_* functions each case chooses and answers
sqlite3_libversion and sqlite3_compileoption_get(N) with chosen options, so that the gate reads
its symbols (the ELF dynamic table) and its compile options (ctypes in a subprocess, through
host.pythons.read_library) exactly as it reads a real build. The system library it compares
with is a made-up SystemLibrary.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from sqlite_provision.errors import EXIT_VERIFY, VerifyError
from sqlite_provision.host.library import SystemLibrary
from sqlite_provision.output import StderrProgress
from sqlite_provision.runner import Runner
from sqlite_provision.steps.base import RunState
from sqlite_provision.steps.gate import AbiGate, abi_message
from support import need_tool
from support.gate_libraries import RecordingRunner

# What both libraries export in every case; the cases add or drop one function on top.
COMMON = ("sqlite3_open", "sqlite3_close", "sqlite3_exec", "sqlite3_libversion",
          "sqlite3_compileoption_get")  # fmt: skip
METADATA = "sqlite3_column_table_name"  # provided by ENABLE_COLUMN_METADATA
SYSTEM_PATH = "/usr/lib64/libsqlite3.so.0"  # only named in messages; the gate never opens it


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fake_library(
    directory: Path, functions: Sequence[str], options: Sequence[str], version: str = "3.99.0"
) -> Path:
    """libsqlite3.so.0 exporting `functions` (with sqlite3_libversion and
    sqlite3_compileoption_get implemented) and reporting `options` as its compile options."""
    lines = [
        "#include <stddef.h>",
        "static const char *const options[] = {"
        + "".join(c_string(o) + ", " for o in options)
        + "NULL};",
        f"const char *sqlite3_libversion(void) {{ return {c_string(version)}; }}",
        "const char *sqlite3_compileoption_get(int n) {",
        "  int count = (int)(sizeof options / sizeof options[0]) - 1;",
        "  return (n >= 0 && n < count) ? options[n] : NULL;",
        "}",
    ]
    for name in functions:
        if name not in ("sqlite3_libversion", "sqlite3_compileoption_get"):
            lines.append(f"int {name}(void) {{ return 0; }}")
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "fake.c"
    source.write_text("\n".join(lines) + "\n")
    library = directory / "libsqlite3.so.0"
    subprocess.run(
        [need_tool("gcc"), "-shared", "-fPIC", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return library


def made_up_system_lib(functions: Sequence[str], options: Sequence[str]) -> SystemLibrary:
    """RHEL 9's release: older than 3.36.0, so only the options it lists are compared (a host
    from 3.38.0 on has JSON without listing it, which the fake library could not prove)."""
    return SystemLibrary(SYSTEM_PATH, "3.34.1", tuple(options), frozenset(functions))


def state_with_stderr() -> Tuple[RunState, io.StringIO]:
    stream = io.StringIO()
    return RunState(Runner(os.environ), StderrProgress(stream)), stream


# --- the compiled library is what the gate reads -------------------------------------------------


def test_the_fake_library_reports_what_it_was_built_with(tmp_path: Path) -> None:
    """The premise of the cases below: the gate's own readers see the chosen symbols and options."""
    from sqlite_provision.host.elf import exported_functions
    from sqlite_provision.host.pythons import read_library

    library = fake_library(tmp_path, [*COMMON, METADATA], ["ENABLE_FTS5", "THREADSAFE=1"])
    assert {*COMMON, METADATA} <= exported_functions(library)
    assert read_library(Runner(os.environ), library) == ("3.99.0", ["ENABLE_FTS5", "THREADSAFE=1"])


# --- the gate ---------------------------------------------------------------------------------


def test_everything_present_passes_without_a_warning(tmp_path: Path) -> None:
    library = fake_library(tmp_path, [*COMMON, METADATA], ["ENABLE_FTS5", "THREADSAFE=1"])
    system_lib = made_up_system_lib([*COMMON, METADATA], ["ENABLE_FTS5", "THREADSAFE=1"])
    state, stream = state_with_stderr()

    detail = AbiGate(system_lib, False, library).run(state)

    assert detail.startswith(f"exports all {len(COMMON) + 1} public functions of {SYSTEM_PATH}")
    assert state.warnings == [] and stream.getvalue() == ""


def test_a_lost_compile_option_is_refused(tmp_path: Path) -> None:
    """The host library has ENABLE_FTS5, the new one does not, every symbol is there: exit 6."""
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS4", "THREADSAFE=1"])
    system_lib = made_up_system_lib(COMMON, ["ENABLE_FTS4", "ENABLE_FTS5", "THREADSAFE=1"])

    with pytest.raises(VerifyError) as caught:
        AbiGate(system_lib, False, library).run(RunState(Runner(os.environ)))

    error = caught.value
    assert error.exit_code == EXIT_VERIFY == 6
    assert error.message == (
        f"the new library lacks compile option(s) that {SYSTEM_PATH} has: ENABLE_FTS5"
    )
    assert "public function" not in error.message and "none" not in error.message
    assert error.hint is not None and "--allow-abi-loss" in error.hint


def test_a_missing_symbol_is_refused_with_the_option_that_provides_it(tmp_path: Path) -> None:
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS5"])
    system_lib = made_up_system_lib([*COMMON, METADATA], ["ENABLE_FTS5"])

    with pytest.raises(VerifyError) as caught:
        AbiGate(system_lib, False, library).run(RunState(Runner(os.environ)))

    message = caught.value.message
    assert caught.value.exit_code == 6
    assert f"lacks 1 public function(s) that {SYSTEM_PATH} exports" in message
    assert f"{METADATA} (from ENABLE_COLUMN_METADATA)" in message
    assert "compile option" not in message  # no option was lost


def test_allow_loss_warns_once_and_says_so_in_the_detail(tmp_path: Path) -> None:
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS4"])
    system_lib = made_up_system_lib([*COMMON, METADATA], ["ENABLE_FTS4", "ENABLE_FTS5"])
    state, stream = state_with_stderr()

    detail = AbiGate(system_lib, True, library).run(state)

    assert detail.startswith("ABI LOSS ALLOWED: the new library lacks 1 public function(s)")
    assert METADATA in detail
    assert f"; and compile option(s) that {SYSTEM_PATH} has: ENABLE_FTS5" in detail
    assert len(state.warnings) == 1
    assert state.warnings[0].startswith("--allow-abi-loss: the new library lacks")
    assert stream.getvalue().count("warning: --allow-abi-loss:") == 1


def test_update_delete_limit_is_said_once_and_not_in_the_detail(tmp_path: Path) -> None:
    """Debian's library has ENABLE_UPDATE_DELETE_LIMIT, which no sqlite-autoconf build can have:
    a warning on stderr (through RunState.warn), once, and not again in the step's detail (the
    executor prints the detail on stderr too). It is not a lost option: the gate passes."""
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS5"])
    system_lib = made_up_system_lib(COMMON, ["ENABLE_FTS5", "ENABLE_UPDATE_DELETE_LIMIT"])
    state, stream = state_with_stderr()

    detail = AbiGate(system_lib, False, library).run(state)

    assert "ENABLE_UPDATE_DELETE_LIMIT" not in detail
    assert detail.startswith("exports all")
    assert stream.getvalue().count("ENABLE_UPDATE_DELETE_LIMIT") == 1
    assert [w for w in state.warnings if "ENABLE_UPDATE_DELETE_LIMIT" in w] == state.warnings
    assert len(state.warnings) == 1


# --- options a later release builds in (recipe/obsolete.py) ----------------------------------


def test_json1_is_refused_by_a_library_that_cannot_prove_json(tmp_path: Path) -> None:
    """The host lists ENABLE_JSON1; the new library reports 3.99.0 (after 3.38.0, so it cannot
    list the option) but cannot run `SELECT json('{}')` (it exports no sqlite3_prepare_v2): the
    option is lost, and the message says it is JSON that is missing and why."""
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS5"])
    system_lib = made_up_system_lib(COMMON, ["ENABLE_FTS5", "ENABLE_JSON1"])
    gate = AbiGate(system_lib, False, library, "3.99.0")
    runner = RecordingRunner()

    with pytest.raises(VerifyError) as caught:
        gate.run(RunState(runner))

    message = caught.value.message
    assert message.startswith(
        f"the new library lacks compile option(s) that {SYSTEM_PATH} has: ENABLE_JSON1 (no "
        "built-in JSON, built in from 3.38.0: SELECT json('{}') gives AttributeError: "
    )
    assert message.endswith("undefined symbol: sqlite3_prepare_v2)")
    assert "public function" not in message
    assert runner.captured == gate.commands()  # the dry run shows what ran


def test_json1_before_3_38_is_a_plain_lost_option(tmp_path: Path) -> None:
    """A release before 3.38.0 could list ENABLE_JSON1: when it does not, the option is lost,
    whatever a proof says (only a release that builds JSON in may leave the option out)."""
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS5"], version="3.37.2")
    system_lib = made_up_system_lib(COMMON, ["ENABLE_FTS5", "ENABLE_JSON1"])

    with pytest.raises(VerifyError) as caught:
        AbiGate(system_lib, False, library, "3.37.2").run(RunState(Runner(os.environ)))

    assert caught.value.message == (
        f"the new library lacks compile option(s) that {SYSTEM_PATH} has: ENABLE_JSON1"
    )


def test_json_built_in_to_the_systems_release_is_not_said_to_be_built_with(
    tmp_path: Path,
) -> None:
    """A 3.40.1 system library (Debian 12, Amazon Linux 2023's 3.40.0) lists no ENABLE_JSON1:
    JSON is built in to its release. A new library that cannot prove JSON loses it, and the
    message says the system library has it built in, not that it was built with the option."""
    library = fake_library(tmp_path, COMMON, ["ENABLE_FTS5"])
    system_lib = SystemLibrary(SYSTEM_PATH, "3.40.1", ("ENABLE_FTS5",), frozenset(COMMON))

    with pytest.raises(VerifyError) as caught:
        AbiGate(system_lib, False, library, "3.99.0").run(RunState(Runner(os.environ)))

    message = caught.value.message
    assert message.startswith(
        f"the new library lacks compile option(s) that {SYSTEM_PATH} has: ENABLE_JSON1 (no "
        "built-in JSON, built in from 3.38.0: "
    )
    assert message.endswith(" (built in to 3.40.1, which lists no such option)")


def test_the_gate_asks_for_proofs_only_of_obsolete_options() -> None:
    system_lib = made_up_system_lib(
        COMMON, ["ENABLE_FTS5", "ENABLE_JSON1", "ENABLE_STAT3", "THREADSAFE=1"]
    )
    gate = AbiGate(system_lib, False, Path("/new/lib/libsqlite3.so.0"))
    [argv] = gate.commands()
    assert argv[:2] == [sys.executable, "-c"] and argv[3] == "/new/lib/libsqlite3.so.0"
    assert json.loads(argv[4]) == {
        "ENABLE_JSON1": {"query": "SELECT json('{}')", "expected": "{}", "setup": "",
                         "serialize": False},
    }  # fmt: skip
    assert "ENABLE_JSON1, built in by later releases, proved by running it" in gate.describe()
    plain = AbiGate(made_up_system_lib(COMMON, ["ENABLE_FTS5"]), False, Path("/l/libsqlite3.so.0"))
    assert len(plain.commands()[0]) == 4 and "proved" not in plain.describe()


# --- the message names only what is lost --------------------------------------------------------


@pytest.mark.parametrize(
    "missing, lost, expected",
    [
        pytest.param(
            [], ["ENABLE_FTS5"],
            f"the new library lacks compile option(s) that {SYSTEM_PATH} has: ENABLE_FTS5",
            id="options-only",
        ),
        pytest.param(
            [METADATA], [],
            f"the new library lacks 1 public function(s) that {SYSTEM_PATH} exports: "
            f"{METADATA} (from ENABLE_COLUMN_METADATA)",
            id="functions-only",
        ),
        pytest.param(
            [METADATA, "sqlite3_unlock_notify"], ["ENABLE_FTS5", "ENABLE_JSON1 (why)"],
            f"the new library lacks 2 public function(s) that {SYSTEM_PATH} exports: "
            f"{METADATA} (from ENABLE_COLUMN_METADATA); sqlite3_unlock_notify (from "
            f"ENABLE_UNLOCK_NOTIFY); and compile option(s) that {SYSTEM_PATH} has: "
            "ENABLE_FTS5, ENABLE_JSON1 (why)",
            id="both",
        ),
    ],
)  # fmt: skip
def test_abi_message_names_only_what_is_lost(
    missing: List[str], lost: List[str], expected: str
) -> None:
    message = abi_message(missing, lost, made_up_system_lib(COMMON, []))
    assert message == expected
    assert "lacks 0" not in message and ": none" not in message
