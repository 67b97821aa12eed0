"""One exception class per exit code, each with a hint for the operator.

A failure after the log was opened carries the log's path, and a failed run carries the result so
far (`partial`), so that --json still prints one object. An error is never changed once made:
`with_context` returns a copy that also carries them, raised in the original's place (the
executor adds the result so far, app.py the log's path).

Which failures show lines of the log: only those a command's own output explains (configure,
make, yum or dnf, make install, the activation's commands, the smoke test). Their errors are
`CommandOutput`s and carry `tail`, the log's last lines when the command failed, which the error
output prints. Every other error carries none: its message says what went wrong, and the output
names the log's path alone (what precedes a failed download, say, is a probe script's source and
the retries' exception chains, which explain nothing).
"""

import signal
from pathlib import Path
from typing import Any, List, Optional, TypeVar

from sqlite_provision.results import Result

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_HOST = 3
EXIT_DOWNLOAD = 4
EXIT_COMMAND = 5
EXIT_VERIFY = 6


E = TypeVar("E", bound="ProvisionError")


class ProvisionError(Exception):
    """Base class: a failure the operator can act on. `hint` says what to do next.

    Each attribute is set once, when the error is made; `with_context` makes a changed copy."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log_path: Optional[Path] = None  # the run's log file
        self.partial: Optional[Result] = None  # the result so far

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ and not name.startswith("__"):
            raise AttributeError(
                f"{type(self).__name__}.{name} is set once: raise with_context(...) instead"
            )
        super().__setattr__(name, value)

    def with_context(
        self: E, *, log_path: Optional[Path] = None, partial: Optional[Result] = None
    ) -> E:
        """This error, with the log's path or the result so far too: a new error, to raise in
        this one's place (`raise error.with_context(...)`), with its cause and traceback."""
        copy = type(self).__new__(type(self), *self.args)
        copy.__dict__.update(self.__dict__)
        if log_path is not None:
            copy.__dict__["log_path"] = log_path
        if partial is not None:
            copy.__dict__["partial"] = partial
        copy.__cause__ = self.__cause__
        copy.__suppress_context__ = True  # the context is this very error, without them
        return copy.with_traceback(self.__traceback__)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class UsageError(ProvisionError):
    exit_code = EXIT_USAGE


class HostError(ProvisionError):
    """A host precondition is not met: not root, no compiler and no yum, noexec tmp, lock held."""

    exit_code = EXIT_HOST


class DownloadError(ProvisionError):
    exit_code = EXIT_DOWNLOAD


class ChecksumError(DownloadError):
    pass


class UnsafeArchiveError(DownloadError):
    """The tarball holds a member that would land outside the build directory."""


class CommandOutput:
    """Of an error that a command's own output explains: `tail`, the last lines of the log when
    the command failed (its output, which ends the log), to be shown with the error."""

    tail: str = ""


class CommandFailed(CommandOutput, ProvisionError):
    """An external command (yum, configure, make, make install) exited non-zero."""

    exit_code = EXIT_COMMAND

    def __init__(
        self,
        message: str,
        hint: Optional[str] = None,
        argv: Optional[List[str]] = None,
        returncode: Optional[int] = None,
        tail: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.tail = tail
        self.argv = argv or []
        self.returncode = returncode


class VerifyError(ProvisionError):
    exit_code = EXIT_VERIFY


class SmokeTestFailed(CommandOutput, VerifyError):
    """A host package tool (rpm, dnf, yum) fails with the new library: its output says why."""

    def __init__(self, message: str, hint: Optional[str] = None, tail: str = "") -> None:
        super().__init__(message, hint)
        self.tail = tail


class Interrupted(ProvisionError):
    """SIGINT or SIGTERM arrived; the run was rolled back. Exit 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}; the host was left as before the run",
            hint="nothing to clean up: run the same command again to install",
        )
        self.signum = signum
        self.exit_code = 128 + signum
