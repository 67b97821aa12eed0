"""Start the tool with what the tests inject: `python launch.py [--pyz PYZ] ARGS...`.

The shipped tool honours no test-only variable. What a test must give it (a crash, the host's
places under a temporary root, shorter timeouts), this launcher reads from its own environment
and hands to the tool through its one plug-in point and its constructor arguments, then starts
it exactly as `python -m sqlite_provision` (or, with --pyz, the pyz's own __main__) does:

- SQLITE_PROVISION_TEST_CRASH_AT=NAME: a crash hook (`faultpoints.add_hook`) that kills the
  process with SIGKILL when the run reaches the crash point NAME;
- SQLITE_PROVISION_TEST_SYSTEMD_DIR, SQLITE_PROVISION_TEST_LD_SO_CONF_DIR and
  SQLITE_PROVISION_TEST_OS_ROOT: the fields of the `config.HostPaths` the tool runs with;
- SQLITE_PROVISION_TEST_FETCH=connect_timeout=2,read_timeout=1: fields of its
  `config.FetchPolicy`.

The variables are removed before the tool reads its environment, so that it and its commands
see the environment a user's run would. With --pyz the tool comes from the pyz, started as the
pyz starts itself (its boot: the trusted bytecode cache, the pinned dependencies); without it,
from the package this python imports. Standard library only, and Python 3.6 syntax: the pyz
launchers run it on CPython 3.6.
"""

import os
import signal
import sys
from typing import Callable, Dict, List

PREFIX = "SQLITE_PROVISION_TEST_"
CRASH_AT = PREFIX + "CRASH_AT"
FETCH = PREFIX + "FETCH"
PATHS = {
    "systemd_dir": PREFIX + "SYSTEMD_DIR",
    "ld_so_conf_dir": PREFIX + "LD_SO_CONF_DIR",
    "os_root": PREFIX + "OS_ROOT",
}
INJECTED = (CRASH_AT, FETCH, *PATHS.values())


def put_the_tool_on_sys_path(argv: List[str]) -> List[str]:
    """The tool from the pyz after --pyz (as its __main__ starts it), else from the package this
    python imports; returns the tool's own arguments."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]  # the tests' helpers are no part of the tool
    if argv[:1] != ["--pyz"]:
        return argv
    pyz = os.path.abspath(argv[1])
    sys.path.insert(0, pyz)
    from _sqlite_provision_boot import start

    start(pyz)
    return argv[2:]


def crash_at(point: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def fetch_fields(text: str) -> Dict[str, float]:
    """ "connect_timeout=2,read_timeout=1" -> {"connect_timeout": 2.0, "read_timeout": 1.0}."""
    fields: Dict[str, float] = {}
    for item in filter(None, text.split(",")):
        name, value = item.split("=", 1)
        fields[name] = int(value) if name == "attempts" else float(value)
    return fields


def main() -> None:
    args = put_the_tool_on_sys_path(sys.argv[1:])
    injected = {name: os.environ.pop(name) for name in INJECTED if name in os.environ}
    from pathlib import Path

    from sqlite_provision import faultpoints
    from sqlite_provision.cli import main as tool_main
    from sqlite_provision.config import FetchPolicy, HostPaths

    if injected.get(CRASH_AT):
        faultpoints.add_hook(crash_at(injected[CRASH_AT]))
    paths = HostPaths(**{f: Path(injected[v]) for f, v in PATHS.items() if injected.get(v)})
    fetch = FetchPolicy(**fetch_fields(injected.get(FETCH, "")))
    sys.argv = [sys.argv[0], *args]
    tool_main(paths, fetch)


if __name__ == "__main__":
    main()
