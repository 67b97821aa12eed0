"""A throw-away gpg key for signing test RPMs (rpmsign) and checking them (rpm -K): made in a
private GNUPGHOME without a passphrase, its public half exported for `rpm --import`, and its
gpg-agent stopped afterwards (the agent is the only process gpg leaves behind).

    with ThrowawayKey(tmp / "gnupg") as key:
        build_rpm(..., sign=SignWith(key.uid, key.home))
        rpm --dbpath DB --import key.public
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType
from typing import Dict, Optional, Type

from support import need_tool

UID = "sqlite-provision test key <rpm-test@example.invalid>"


class ThrowawayKey:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.uid = UID
        self.public = home / "public.asc"
        self.key_id = ""

    def env(self) -> Dict[str, str]:
        return {"GNUPGHOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C"}

    def gpg(self, *args: str) -> str:
        done = subprocess.run(
            [need_tool("gpg"), "--batch", "--quiet", *args],
            env=self.env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"gpg {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def __enter__(self) -> ThrowawayKey:
        need_tool("gpgconf")
        self.home.mkdir(mode=0o700, parents=True)
        self.gpg("--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", self.uid,
                 "rsa2048", "sign", "never")  # fmt: skip
        self.public.write_text(self.gpg("--export", "--armor", self.uid), encoding="ascii")
        for line in self.gpg("--list-keys", "--with-colons", self.uid).splitlines():
            if line.startswith("pub:"):
                self.key_id = line.split(":")[4][-8:].lower()  # what rpm prints: 8 hex digits
        return self

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env(), capture_output=True,
                       timeout=60, check=False)  # fmt: skip
