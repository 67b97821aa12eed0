"""The fault matrix: fixtures, and the session's one `faults:` line.

Every case records (injected, host-unchanged) in faultlib.TALLY; at the end of the session one
line, `faults: N injected, N host-unchanged`, is printed, and the session fails if the two
differ (a case whose host changed fails its own test too, but the line must tell).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from support.clirun import run_cli
from support.faults import (
    CRASHES,
    PATH_3442,
    TALLY,
    FaultHost,
    Seed,
    default_attempts,
    serve_release,
)
from support.mirror import Mirror


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    differ = TALLY.differing() or len(CRASHES.injected) != len(CRASHES.converged)
    if differ and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(TALLY.line())
    if CRASHES.injected:
        terminalreporter.write_line(CRASHES.line())
    differing = TALLY.differing()
    if differing:
        terminalreporter.write_line(
            "faults whose host changed (or that stopped before the check): " + ", ".join(differing),
            red=True,
        )


@pytest.fixture
def host(tmp_path: Path) -> FaultHost:
    """A fresh host: nothing of ours installed, other packages' files in place."""
    return FaultHost(tmp_path / "host")


@pytest.fixture(scope="session")
def seed(
    shared_tarballs: Dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seed]:
    host = FaultHost(tmp_path_factory.mktemp("seed"))
    with Mirror() as mirror:
        serve_release(mirror, shared_tarballs, "3.44.2")
        failures = default_attempts() - 1
        mirror.fail(PATH_3442, [500] * failures)
        before = host.snapshot()
        run = run_cli(
            host.args("--version", "3.44.2", "--mirror", mirror.url, "--systemd-unit", "myapp"),
            host.env(),
            umask=0o077,  # the tool must set every mode itself
        )
        print(f"seed install (a real build of 3.44.2): {run.seconds:.1f}s")
        yield Seed(host, mirror, run, before, host.snapshot(), failures)
