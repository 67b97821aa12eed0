"""Crash points: the named moments of a run where the crash matrix of tests/faults kills the tool
with SIGKILL, as the OOM killer or a power cut would, running no handler and no undo; the next
run must finish the job.

A crash point calls the hooks registered with `add_hook`. The shipped tool registers none, so a
crash point does nothing and no environment variable changes that; the tests' launcher
(tests/support/launch.py) registers one that kills the process at the point it is told.

Points: before:STEP and after:STEP around every step of a plan, during:install (the old build
moved aside, the new one not yet in place), during:verify (after the first python's probe),
during:switch-to-previous (between the rollback's two links) and during:uninstall (after the
first file removed).
"""

from typing import Callable, List

Hook = Callable[[str], None]

_hooks: List[Hook] = []


def add_hook(hook: Hook) -> None:
    """Call `hook` with the name of every crash point the run reaches."""
    _hooks.append(hook)


def crash_point(name: str) -> None:
    for hook in _hooks:
        hook(name)
