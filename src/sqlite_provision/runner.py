"""The one door to subprocess: argv lists, never a shell, and every command a run executes (probes
included) goes into its log with its exit status.

Every command runs in a process group of its own, so that an interrupt or a timeout stops the
whole tree (make and its compilers, or the jimsh0 compile a `configure --help` can start) and
leaves no orphan behind. Commands that run before a log exists (`--dry-run`, `status`) go
through a Runner whose Log has no file.
"""

import os
import shlex
import signal
import subprocess  # nosec B404: this module is the one reviewed place that runs commands
import time
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

from sqlite_provision.errors import CommandFailed

TAIL_LINES = 20


def quote_argv(argv: Sequence[str]) -> str:
    """A copy-pasteable shell rendering of argv (shlex.join is 3.8+)."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def clean_env(base: Mapping[str, str], **overrides: str) -> Dict[str, str]:
    """A copy of `base` without LD_LIBRARY_PATH, so probes see the host as it is."""
    env = dict(base)
    env.pop("LD_LIBRARY_PATH", None)
    env.update(overrides)
    return env


class Log:
    """The run's log file. Until `start()`, what is written is kept in memory: a run that stops
    on bad input, before it takes the lock, leaves no file behind, and once the file exists it
    holds everything, the first probes included. Without a path (a dry run, `status`), a log
    that keeps nothing."""

    def __init__(self, path: Optional[Path], deferred: bool = False) -> None:
        self._path = path
        self._handle: Optional[IO[str]] = None
        self._pending: Optional[List[str]] = [] if deferred and path is not None else None
        if path is not None and not deferred:
            self.start()

    @property
    def path(self) -> Optional[Path]:
        """The file, once there is one."""
        return self._path if self._handle is not None else None

    def start(self) -> None:
        """Create the file (mode 0640) and write what was kept until now."""
        if self._path is None or self._handle is not None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(str(self._path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._handle = os.fdopen(fd, "a", encoding="utf-8", errors="replace")
        for text in self._pending or []:
            self._handle.write(text)
        self._pending = None
        self._handle.flush()

    def _emit(self, text: str) -> None:
        if self._handle is not None:
            self._handle.write(text)
            self._handle.flush()
        elif self._pending is not None:
            self._pending.append(text)

    def write(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        lines = text.rstrip("\n").splitlines() or [""]
        self._emit("".join(f"[{stamp}] {line}\n" for line in lines))

    def command(self, argv: Sequence[str], cwd: Optional[Path] = None) -> None:
        """One command, copy-pasteable: a script given with -c keeps its lines, unstamped, so
        that the command is the text from its `$ ` to the next stamped line."""
        where = f"  (in {cwd})" if cwd else ""
        stamp = time.strftime("%H:%M:%S")
        self._emit(f"[{stamp}] $ {quote_argv(argv)}{where}\n")

    def raw_handle(self) -> Optional[IO[str]]:
        return self._handle

    def tail(self, lines: int = TAIL_LINES) -> str:
        path = self.path
        if path is None or not path.exists():
            return ""
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Completed(NamedTuple):
    argv: List[str]
    returncode: int
    stdout: str
    stderr: str


class Runner:
    """Runs every command of a run. `run` streams output into the log and raises on failure;
    `capture` returns the output of a short probe and lets the caller judge it.

    `environment` is the environment the tool was started with (config.Environment.variables):
    a command given no `env` runs in it, and every environment a command is given is built
    from it (`clean_env`), never from this process's own."""

    def __init__(self, environment: Mapping[str, str], log: Optional[Log] = None) -> None:
        self.environment: Mapping[str, str] = MappingProxyType(dict(environment))
        self.log = log if log is not None else Log(None)

    def clean_env(self, **overrides: str) -> Dict[str, str]:
        """The tool's environment without LD_LIBRARY_PATH, with `overrides`."""
        return clean_env(self.environment, **overrides)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Optional[Path] = None,
        env: Optional[Mapping[str, str]] = None,
        what: Optional[str] = None,
        hint: Optional[str] = None,
    ) -> None:
        """Run argv with its output going to the log. Raises CommandFailed with the log's tail."""
        argv = [str(a) for a in argv]
        self.log.command(argv, cwd)
        self.log.write("output:")
        handle = self.log.raw_handle()
        out: Union[IO[str], int] = handle if handle is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                argv,
                cwd=str(cwd) if cwd else None,
                env=dict(env if env is not None else self.environment),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self.log.write(f"could not start: {exc}")
            raise CommandFailed(
                f"{what or argv[0]} could not start: {exc}",
                hint=hint,
                argv=argv,
                returncode=None,
            ) from exc
        returncode = wait_or_kill(proc)
        self.log.write(f"exit status {returncode}")
        if returncode != 0:
            raise CommandFailed(
                f"{what or argv[0]} failed with exit status {returncode}: {quote_argv(argv)}",
                hint=hint,
                argv=argv,
                returncode=returncode,
                tail=self.log.tail(),
            )

    def capture(
        self,
        argv: Sequence[str],
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[Path] = None,
        timeout: float = 120.0,
    ) -> Completed:
        """Run a short probe and return its output (exit status 127 if it could not start or
        timed out); the command, its exit status and its output go into the log."""
        argv = [str(a) for a in argv]
        self.log.command(argv, cwd)
        result = _capture(argv, env if env is not None else self.environment, cwd, timeout)
        self.log.write(f"exit status {result.returncode}\n{result.stdout}{result.stderr}")
        return result


def _capture(
    argv: List[str], env: Mapping[str, str], cwd: Optional[Path], timeout: float
) -> Completed:
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv,
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            start_new_session=True,
        )
    except OSError as exc:
        return Completed(argv, 127, "", str(exc))
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc)
            return Completed(argv, 127, "", str(exc))
        except BaseException:
            kill_group(proc)
            raise
    return Completed(argv, proc.returncode, stdout, stderr)


def wait_or_kill(proc: "subprocess.Popen[Any]") -> int:
    """Wait for proc; if we are interrupted meanwhile, stop its whole process group first."""
    try:
        return proc.wait()
    except BaseException:
        kill_group(proc)
        raise


def kill_group(proc: "subprocess.Popen[Any]", grace: float = 5.0) -> None:
    # start_new_session made the child the leader of its own group, whose id is its pid: the
    # group can still be signalled when the leader is gone and its children (cc1) are not.
    pgid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure its children (cc1 under make) are gone too.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
