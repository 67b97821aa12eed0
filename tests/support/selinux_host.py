"""A look-alike host where SELinux says it is enabled, on a kernel without SELinux.

What is real and what is not (README, "SELinux"; found on Debian 12 with selinux-utils,
policycoreutils, policycoreutils-python-utils and selinux-policy-default):
- `selinuxenabled` cannot say yes without the kernel: a script that exits 0 stands first on
  PATH, and a tmpfs at /sys/fs/selinux stands for selinuxfs (the tool asks only where it is).
- `matchpathcon` and `semanage` are Debian's own and real: they read and write a copy of the
  policy store (/etc/selinux, /var/lib/selinux), bind-mounted over the real one in a private
  mount namespace, so a rule a test adds is real and gone with the test.
- `restorecon` is Debian's own and runs, but on a kernel without selinuxfs it exits 0 and
  relabels nothing; `setfiles` with the same policy does relabel (a test shows it).
- /opt and /srv are directories of the test (on ext4, which keeps `security.selinux`),
  bind-mounted over the real ones in the namespace.

`SELinuxHost(state).command(argv)` is argv run in such a namespace; `state` keeps the store's
copy, /opt and /srv between the commands of one test. `hidden` tools are missing there (a bind
mount of /dev/null over each: no longer executable, so not found on PATH).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List, Sequence

from support import need_tool

_SETUP = r"""
set -eu
state=$1 hidden=$2; shift 2
for tool in $hidden; do mount --bind /dev/null "$(command -v "$tool")"; done
for d in /etc/selinux /var/lib/selinux; do
  if [ ! -d "$state/store$d" ]; then mkdir -p "$state/store$d"; cp -a "$d/." "$state/store$d/"; fi
  mount --bind "$state/store$d" "$d"
done
mkdir -p "$state/opt" "$state/srv"
mount --bind "$state/opt" /opt
mount --bind "$state/srv" /srv
mount -t tmpfs -o mode=0755 selinuxfs-stand-in /sys/fs
mkdir /sys/fs/selinux
exec "$@"
"""

SELINUXENABLED = "#!/bin/sh\n# the look-alike's: SELinux is enabled\nexit 0\n"
FAILING_RESTORECON = "#!/bin/sh\necho 'restorecon: fault injected' >&2\nexit 1\n"


class SELinuxHost:
    def __init__(self, state: Path, enabled: bool = True, hidden: Sequence[str] = ()) -> None:
        for tool in ("unshare", "matchpathcon", "restorecon", "semanage", "setfiles"):
            need_tool(tool)
        self.state = state
        self.hidden = " ".join(hidden)  # tools made absent (/dev/null over them: not executable)
        self.bin = state / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        if enabled:
            self.put_tool("selinuxenabled", SELINUXENABLED)

    def put_tool(self, name: str, script: str) -> None:
        path = self.bin / name
        path.write_text(script, encoding="utf-8")
        path.chmod(0o755)

    def remove_tool(self, name: str) -> None:
        (self.bin / name).unlink()

    def path(self, base: str) -> str:
        return f"{self.bin}:{base}"

    def command(self, argv: Sequence[str]) -> List[str]:
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SETUP, "sh",
                str(self.state), self.hidden, *argv]  # fmt: skip

    def env(self, env: Dict[str, str]) -> Dict[str, str]:
        return dict(env, PATH=self.path(env.get("PATH", os.defpath)))

    def outside(self, path: str) -> Path:
        """/opt/... or /srv/... of the namespace, as this process sees it."""
        top, rest = path.lstrip("/").split("/", 1)
        assert top in ("opt", "srv"), path
        return self.state / top / rest


def setfiles() -> str:
    return shutil.which("setfiles") or need_tool("setfiles")
