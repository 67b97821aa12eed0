"""Crash points, for the crash matrix of tests/faults: with SQLITE_PROVISION_TEST_CRASH_AT=NAME in
its environment the tool kills itself with SIGKILL when it reaches NAME, as the OOM killer or a
power cut would, running no handler and no undo. The next run must finish the job. Without the
variable (outside the tests, always) a crash point does nothing.

Points: before:STEP and after:STEP around every step of a plan, during:install (the old build
moved aside, the new one not yet in place), during:verify (after the first python's probe) and
during:uninstall (after the first file removed).
"""

import os
import signal

ENV_CRASH_AT = "SQLITE_PROVISION_TEST_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV_CRASH_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
