"""Installing packages with the host's package tool (yum or dnf), and checking that the tools
they should bring are there: the compiler's and SELinux's."""

import shutil
from typing import Sequence

from sqlite_provision.errors import CommandFailed
from sqlite_provision.steps.base import Argv, RunState


def install_argv(package_manager: str, packages: Sequence[str]) -> Argv:
    return [package_manager, "install", "-y", *packages]


def install_packages(
    state: RunState,
    package_manager: str,
    argv: Argv,
    tools: Sequence[str],
    hint: str,
    missing_hint: str,
) -> None:
    """Run the package tool's `argv` (exit 5 with `hint` if it fails), then check that every
    one of `tools` is on the run's PATH: a package tool that reports success but brought no
    tool is exit 5 too, with `missing_hint`."""
    state.runner.run(argv, what=package_manager, hint=hint)
    path = state.runner.environment.get("PATH")
    still = [tool for tool in tools if shutil.which(tool, path=path) is None]
    if still:
        raise CommandFailed(
            "{} reported success but {} is still missing".format(
                package_manager, " and ".join(still)
            ),
            hint=missing_hint,
            argv=argv,
            returncode=0,
            tail=state.runner.log.tail(),
        )
