"""The pyz's download code on every host python from 3.6 to 3.13, against the loopback mirror:
the tool's own fetch functions, imported from inside the session's sqlite-provision.pyz (the
zip itself on sys.path, as the pyz runs when its unpacked cache is off or unusable:
SQLITE_PROVISION_PYZ_CACHE=0) by pyenv's real interpreters, with nothing installed for them.
Inside the zip certifi's bundle is a member, and on 3.7 to 3.9 certifi.where() raises there,
which requests calls as it is imported: every download from the zip failed on RHEL 9's python
3.9 and Amazon Linux 2's 3.7 until the tool redefined where() (source/fetch.py)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from support import unavailable
from support.interpreters import interpreter
from support.mirror import Mirror

FETCH = """
import sys, tempfile
from pathlib import Path
pyz = sys.argv[1]
sys.path[:0] = [pyz, pyz + "/_vendor"] + ([pyz + "/_vendor36"] if sys.version_info < (3, 7) else [])
from sqlite_provision.digests import Checksum
from sqlite_provision.source.fetch import fetch_text, fetch_to_cache
print(len(fetch_text(sys.argv[2] + "/page.html")))
with tempfile.TemporaryDirectory() as cache:
    got = fetch_to_cache(sys.argv[2] + "/2023/data.tar.gz", Path(cache), "data.tar.gz",
                         Checksum("sha256", sys.argv[3]))
    print(got.bytes)
import certifi, requests
assert certifi.__file__.startswith(pyz) and requests.__file__.startswith(pyz), requests.__file__
"""


@pytest.mark.parametrize("minor", ["3.6", "3.7", "3.8", "3.9", "3.10", "3.13"])
def test_the_pyz_downloads_on_each_host_python(
    minor: str, pyz: Path, mirror: Mirror, tmp_path: Path
) -> None:
    python = interpreter(minor) or unavailable(f"no CPython {minor} under pyenv")
    data = b"not a real tarball\n" * 1000
    mirror.add("/page.html", b"<html>download page</html>")
    mirror.add("/2023/data.tar.gz", data)
    digest = hashlib.sha256(data).hexdigest()
    done = subprocess.run(
        [python, "-I", "-c", FETCH, str(pyz), mirror.url, digest],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["26", str(len(data))]
    assert mirror.count("/2023/data.tar.gz") == 1
