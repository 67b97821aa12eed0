"""The result envelope (results.py, output.py, errors.py): every result is frozen and typed,
every command answers one `Outcome` with `ok`, `changed` and `exit_code`, only output.py writes
a command's JSON, and an error is never changed once made (`with_context` copies it)."""

from __future__ import annotations

import ast
import dataclasses
import json
import signal
import typing
from pathlib import Path
from typing import List, Set

import pytest

from sqlite_provision import output, results
from sqlite_provision.errors import (
    CommandFailed,
    HostError,
    Interrupted,
    ProvisionError,
    SmokeTestFailed,
    UsageError,
)
from sqlite_provision.results import Outcome, ReleaseRow, Releases, Report, StepRecord

SRC = Path(results.__file__).resolve().parent
# The modules that write JSON of their own: files (the activation record, the rollback's
# journal, the artifact's metadata, the manifest) and the probe scripts a python runs.
JSON_FILES = {"store/records.py", "store/recovery.py", "store/artifact.py", "store/manifest.py",
              "host/pythons.py"}  # fmt: skip


def result_dataclasses() -> List[type]:
    return [
        value
        for value in vars(results).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == results.__name__
    ]


def test_every_result_type_is_a_frozen_dataclass() -> None:
    found = result_dataclasses()
    assert {"Report", "StatusReport", "PlanView", "Releases", "Outcome"} <= {
        t.__name__ for t in found
    }
    mutable = [t.__name__ for t in found if not t.__dataclass_params__.frozen]  # type: ignore[attr-defined]
    assert mutable == []
    record = StepRecord("fetch", "ok", 0.1, "done")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = "failed"  # type: ignore[misc]


def test_no_result_holds_a_list_or_a_dict_of_its_own() -> None:
    """Frozen all the way down: a result's fields are tuples, never a list or a dict that could
    be changed after the result was made."""
    loose = []
    for kind in result_dataclasses():
        hints = typing.get_type_hints(kind)
        for name in (f.name for f in dataclasses.fields(kind)):
            text = str(hints[name])
            if "List[" in text or "Dict[" in text or text.startswith(("typing.List", "list")):
                loose.append(f"{kind.__name__}.{name}: {text}")
    assert loose == []


def test_every_command_result_has_a_text_and_a_changed_flag() -> None:
    kinds = set(typing.get_args(results.Result))
    assert len(kinds) == 7
    assert set(output.TEXT) == kinds
    for kind in kinds:
        fields = {f.name for f in dataclasses.fields(kind)}
        assert ("changed" in fields or "changed" in vars(kind)) and "to_json" in vars(kind), kind


def test_the_envelope_leads_every_json_answer() -> None:
    rows = (ReleaseRow("3.53.4", "2026-01-01", "https://x/y.tar.gz", "ab", None, False, True, ""),)
    data = json.loads(output.as_json(Outcome(Releases(rows))))
    assert list(data)[:5] == ["ok", "changed", "exit_code", "error", "releases"]
    assert (data["ok"], data["changed"], data["exit_code"], data["error"]) == (True, False, 0, None)
    assert data["releases"][0]["default"] is True

    report = Report(True, "3.53.4", "/opt/sqlite/3.53.4", None, None, "/var/log/x.log")
    assert json.loads(output.as_json(Outcome(report)))["changed"] is True
    error = CommandFailed("make failed", hint="read the log").with_context(
        log_path=Path("/var/log/x.log"), partial=report
    )
    failed = json.loads(output.as_json(output.failed(error)))
    assert (failed["ok"], failed["changed"], failed["exit_code"]) == (False, False, 5)
    assert (failed["error"], failed["hint"], failed["log_file"]) == (
        "make failed", "read the log", "/var/log/x.log"
    )  # fmt: skip
    assert failed["version"] == "3.53.4"  # the result so far


@pytest.mark.parametrize(
    "error",
    [
        HostError("no compiler", hint="install gcc"),
        CommandFailed("make failed", argv=["make"], returncode=2, tail="line\n"),
        SmokeTestFailed("rpm -qa fails", tail="undefined symbol\n"),
        Interrupted(signal.SIGTERM),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_is_set_once_and_copied_with_its_context(error: ProvisionError) -> None:
    before = dict(vars(error))
    with pytest.raises(AttributeError, match="set once"):
        error.log_path = Path("/var/log/x.log")
    with pytest.raises(AttributeError, match="set once"):
        error.hint = "another"
    partial = Report(False, "3.53.4", "/opt/sqlite/3.53.4", None, None, None)
    try:
        try:
            raise UsageError("the cause")
        except UsageError as cause:
            raise error from cause
    except ProvisionError as raised:
        copy = raised.with_context(log_path=Path("/var/log/x.log"), partial=partial)
    assert vars(error) == before  # the original is as it was made
    assert type(copy) is type(error) and copy is not error
    assert copy.log_path == Path("/var/log/x.log") and copy.partial is partial
    assert copy.exit_code == error.exit_code and str(copy) == str(error)
    assert {k: v for k, v in vars(copy).items() if k not in ("log_path", "partial")} == {
        k: v for k, v in vars(error).items() if k not in ("log_path", "partial")
    }
    assert isinstance(copy.__cause__, UsageError) and copy.__traceback__ is error.__traceback__


def json_writers() -> Set[str]:
    """The modules of src that call json.dumps or json.dump."""
    found = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("dumps", "dump")
                and isinstance(node.value, ast.Name)
                and node.value.id == "json"
            ):
                found.add(str(path.relative_to(SRC)))
    return found


def test_only_output_writes_a_commands_json() -> None:
    writers = json_writers()
    assert "output.py" in writers
    assert writers - {"output.py"} <= JSON_FILES, "a module other than output.py writes JSON"
