"""Which failures show lines of the log (errors.py): only the errors a command's own output
explains carry the log's tail (CommandOutput: a failed command, the smoke test); every other
error is its message, its fix and the log's path. The tail comes from a real command run
through the Runner into a real log."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

from sqlite_provision import output
from sqlite_provision.errors import (
    ChecksumError,
    CommandFailed,
    CommandOutput,
    DownloadError,
    HostError,
    ProvisionError,
    SmokeTestFailed,
    UsageError,
    VerifyError,
)
from sqlite_provision.runner import TAIL_LINES, Log, Runner

HEADER = "--- last lines of the log ---"


def stderr_of(error: ProvisionError, log: Path) -> List[str]:
    out, err = output.render(output.failed(error.with_context(log_path=log)), json_out=False)
    assert out is None and err is not None
    return err.splitlines()


@pytest.mark.parametrize(
    "error",
    [
        DownloadError("could not download X after 4 attempts", hint="check the network"),
        ChecksumError("checksum mismatch for X", hint="pass --sha256"),
        HostError("no compiler", hint="install gcc"),
        VerifyError("python3 loads 3.26.0", hint="re-run"),
        UsageError("bad --version", hint="see --help"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_no_command_explains_is_message_fix_and_log_path(
    error: ProvisionError, tmp_path: Path
) -> None:
    assert not isinstance(error, CommandOutput) and not hasattr(error, "tail")
    lines = stderr_of(error, tmp_path / "install.log")
    assert lines == [
        f"error: {error.message}",
        f"  fix: {error.hint}",
        f"full log: {tmp_path / 'install.log'}",
    ]


def test_a_failed_command_shows_the_logs_last_lines_of_its_output(tmp_path: Path) -> None:
    log = Log(tmp_path / "install.log")
    runner = Runner(os.environ, log)
    runner.capture(["sh", "-c", "echo probe-output"])  # what came before: not in the tail
    script = "i=0; while [ $i -lt 30 ]; do echo line-$i; i=$((i+1)); done; echo failing >&2; exit 3"
    with pytest.raises(CommandFailed) as caught:
        runner.run(["sh", "-c", script], what="make", hint="read the log")
    log.close()
    error = caught.value
    tail = error.tail.splitlines()
    assert len(tail) == TAIL_LINES
    assert tail == (tmp_path / "install.log").read_text().splitlines()[-TAIL_LINES:]
    assert "failing" in error.tail and "line-29" in error.tail and "probe-output" not in error.tail
    lines = stderr_of(error, tmp_path / "install.log")
    start = lines.index(HEADER)
    assert lines[:start] == [f"error: {error.message}", "  fix: read the log"]
    assert lines[start + 1 : -1] == tail
    assert lines[-1] == f"full log: {tmp_path / 'install.log'}"


def test_the_smoke_test_shows_its_output(tmp_path: Path) -> None:
    error = SmokeTestFailed(
        "`rpm -qa` fails with the new library (exit status 1): error: rpmdb: undefined symbol",
        hint="try another release",
        tail="[10:00:00] exit status 1\n[10:00:00] error: rpmdb: undefined symbol\n",
    )
    assert isinstance(error, VerifyError) and error.exit_code == 6
    lines = stderr_of(error, tmp_path / "install.log")
    assert lines[2:5] == [
        HEADER,
        "[10:00:00] exit status 1",
        "[10:00:00] error: rpmdb: undefined symbol",
    ]


def test_a_command_that_could_not_start_has_no_tail(tmp_path: Path) -> None:
    log = Log(tmp_path / "install.log")
    with pytest.raises(CommandFailed) as caught:
        Runner(os.environ, log).run([str(tmp_path / "no-such-program")], what="yum")
    log.close()
    lines = stderr_of(caught.value, tmp_path / "install.log")
    assert HEADER not in lines and lines[0].startswith("error: yum could not start")
