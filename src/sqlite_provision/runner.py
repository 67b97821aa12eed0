"""The only door to subprocess: argv lists, never a shell; every command and its output is logged.

Long commands run in their own process group so that an interrupt can stop the whole tree
(make, its compilers) and leave no orphan behind.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess  # nosec B404: this module is the one reviewed place that runs commands
import time
from pathlib import Path
from typing import IO, Any, Dict, Mapping, Optional, Sequence, Union

from sqlite_provision.errors import CommandFailed

TAIL_LINES = 20


def quote_argv(argv: Sequence[str]) -> str:
    """A copy-pasteable shell rendering of argv (shlex.join is 3.8+)."""
    return " ".join(shlex.quote(str(a)) for a in argv)


class Log:
    """The run's log file. Everything the tool does and every command's output ends up here."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self._fh: Optional[IO[str]] = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            self._fh = os.fdopen(fd, "a", encoding="utf-8", errors="replace")

    def write(self, text: str) -> None:
        if self._fh is None:
            return
        stamp = time.strftime("%H:%M:%S")
        for line in text.rstrip("\n").splitlines() or [""]:
            self._fh.write(f"[{stamp}] {line}\n")
        self._fh.flush()

    def raw_handle(self) -> Optional[IO[str]]:
        return self._fh

    def tail(self, lines: int = TAIL_LINES) -> str:
        if self.path is None or not self.path.exists():
            return ""
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Runner:
    """Runs commands for the steps. `run` streams output into the log; `capture` returns it."""

    def __init__(self, log: Log) -> None:
        self.log = log

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Optional[Path] = None,
        env: Optional[Mapping[str, str]] = None,
        what: Optional[str] = None,
        hint: Optional[str] = None,
    ) -> None:
        """Run argv with output going to the log. Raises CommandFailed with the log's tail."""
        argv = [str(a) for a in argv]
        self.log.write("$ {}{}".format(quote_argv(argv), f"  (in {cwd})" if cwd else ""))
        fh = self.log.raw_handle()
        out: Union[IO[str], int] = fh if fh is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                argv,
                cwd=str(cwd) if cwd else None,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
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
    ) -> subprocess.CompletedProcess[str]:
        """Run a short probe and return its output; the caller judges the exit status."""
        argv = [str(a) for a in argv]
        self.log.write(f"$ {quote_argv(argv)}")
        result = capture(argv, env=env, cwd=cwd, timeout=timeout)
        self.log.write(f"exit status {result.returncode}\n{result.stdout}{result.stderr}")
        return result


def capture(
    argv: Sequence[str],
    *,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[Path] = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a short probe without a log (host facts are gathered before any log exists).

    Like `Runner.run`, in a process group of its own, stopped as a whole on a timeout or an
    interrupt: a probe can start children too (`configure --help` compiles autosetup's jimsh0
    on a host without tclsh), and killing the probe alone would leave them running, orphans.
    """
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        return subprocess.CompletedProcess(argv, 127, "", str(exc))
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc)
            return subprocess.CompletedProcess(argv, 127, "", str(exc))
        except BaseException:
            kill_group(proc)
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def wait_or_kill(proc: subprocess.Popen[bytes]) -> int:
    """Wait for proc; if we are interrupted meanwhile, stop its whole process group first."""
    try:
        return proc.wait()
    except BaseException:
        kill_group(proc)
        raise


def kill_group(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
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


def clean_env(base: Optional[Mapping[str, str]] = None, **overrides: str) -> Dict[str, str]:
    """A copy of the environment without LD_LIBRARY_PATH, so probes see the host as it is."""
    env = dict(os.environ if base is None else base)
    env.pop("LD_LIBRARY_PATH", None)
    env.update(overrides)
    return env
