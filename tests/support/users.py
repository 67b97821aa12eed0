"""Running commands as a service, a cron job or another user would: an empty (or chosen)
environment, `nobody` through setpriv, and a private mount namespace in which files can be
bound over system paths (an /etc/profile.d, an /etc/ld.so.cache) and root-only trees (pyenv under
/root) revealed. Nothing changes outside the namespace: the host itself is never chmod'ed or
written."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from support import need


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


def in_namespace(
    argv: Sequence[str],
    *,
    env: Optional[Dict[str, str]] = None,
    binds: Optional[Dict[Path, Path]] = None,
    reveal: Sequence[Path] = (),
    nobody: bool = False,
    timeout: float = 120,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """argv with exactly `env` (empty by default), in a private mount namespace where each
    `binds` target (a system file or directory) shows its source instead; as `nobody` (uid and
    gid, no supplementary groups) when asked, with each directory of `reveal` (e.g. pyenv's
    CPython under /root, which is 0700) reachable: a tmpfs of mode 0755 covers its top
    directory, with the revealed trees bound back in place."""
    need(os.geteuid() == 0, "a private mount namespace needs root")
    need(shutil.which("unshare") and shutil.which("setpriv"), "unshare and setpriv (util-linux)")
    script: List[str] = ["set -e"]
    for target, source in (binds or {}).items():
        script.append(f'mount --bind "{source}" "{target}"')
    for index, path in enumerate(reveal):
        script.append(f'mkdir -p "$stash/{index}" && mount --bind "{path}" "$stash/{index}"')
    for top in sorted({"/" + Path(p).parts[1] for p in reveal}):
        script.append(f'mount -t tmpfs -o mode=0755 tmpfs "{top}"')
    for index, path in enumerate(reveal):
        script.append(f'mkdir -p "{path}" && mount --bind "$stash/{index}" "{path}"')
    if nobody:
        pwd.getpwnam("nobody")
        script.append(
            f'exec setpriv --reuid=nobody --regid={nobody_group()} --clear-groups -- "$@"'
        )
    else:
        script.append('exec "$@"')
    stash = Path("/run") / f"sqlite-provision-test-{os.getpid()}"
    wrapper = [
        "unshare", "--mount", "--propagation", "private", "sh", "-c",
        f'stash={stash}; mkdir -p "$stash"; ' + "; ".join(script),
        "sh", "env", "-i", *[f"{k}={v}" for k, v in (env or {}).items()], *argv,
    ]  # fmt: skip
    try:
        return subprocess.run(wrapper, capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        shutil.rmtree(str(stash), ignore_errors=True)


def as_nobody(
    argv: Sequence[str],
    reveal: Sequence[Path] = (),
    env: Optional[Dict[str, str]] = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """argv as `nobody`, in an empty environment unless `env` (see in_namespace)."""
    return in_namespace(argv, env=env, reveal=reveal, nobody=True, timeout=timeout)
