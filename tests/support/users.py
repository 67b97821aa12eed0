"""Running commands as another user (`nobody`) the way a service or a cron job would: setpriv or
runuser, an empty environment, and a private mount namespace in which a few root-only paths
(pyenv under /root) can be reached, so that the host itself is never chmod'ed."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(thing: object, what: str) -> None:
    if not thing:
        if IN_CI:
            pytest.fail(f"{what} (CI=true: this test must not skip)")
        pytest.skip(what)


def nobody_group() -> str:
    import grp

    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
            return name
        except KeyError:
            continue
    need(False, "there is no group nogroup or nobody")
    return ""


def as_nobody(
    argv: Sequence[str],
    reveal: Sequence[Path] = (),
    env: Optional[dict] = None,  # type: ignore[type-arg]
    timeout: float = 120,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """argv as `nobody` (uid and gid, no supplementary groups), with `env` (empty by default),
    in a private mount namespace where each directory of `reveal` (e.g. pyenv's CPython under
    /root, which is 0700) is reachable: a tmpfs of mode 0755 covers its top directory, with the
    revealed trees bound back in place. Nothing changes outside the namespace."""
    need(os.geteuid() == 0, "running as another user needs root")
    need(shutil.which("unshare") and shutil.which("setpriv"), "unshare and setpriv (util-linux)")
    pwd.getpwnam("nobody")
    group = nobody_group()
    script: List[str] = ["set -e"]
    for index, path in enumerate(reveal):
        script.append(f'mkdir -p "$stash/{index}" && mount --bind "{path}" "$stash/{index}"')
    tops = sorted({"/" + Path(p).parts[1] for p in reveal})
    for top in tops:
        script.append(f'mount -t tmpfs -o mode=0755 tmpfs "{top}"')
    for index, path in enumerate(reveal):
        script.append(f'mkdir -p "{path}" && mount --bind "$stash/{index}" "{path}"')
    script.append('exec setpriv --reuid=nobody --regid="$group" --clear-groups -- "$@"')
    stash = Path("/run") / f"sqlite-provision-test-{os.getpid()}"
    wrapper = [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        f'stash={stash}; group={group}; mkdir -p "$stash"; ' + "; ".join(script),
        "sh", "env", "-i", *[f"{k}={v}" for k, v in (env or {}).items()], *argv,
    ]  # fmt: skip
    try:
        return subprocess.run(wrapper, capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        shutil.rmtree(str(stash), ignore_errors=True)
