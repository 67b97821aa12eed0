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


BUNDLE = """
import sys
root = sys.argv[1]
sys.path[:0] = [root, root + "/_vendor"] + ([root + "/_vendor36"] if sys.version_info < (3, 7) else [])
from sqlite_provision.source.fetch import make_session
import certifi
assert certifi.__file__.startswith(root), certifi.__file__
print(make_session().verify)
"""


@pytest.mark.parametrize("minor", ["3.6", "3.13"])
def test_the_pyz_trusts_the_hosts_bundle_from_the_zip_and_from_its_cache(
    minor: str, pyz: Path, tmp_path: Path
) -> None:
    """From the zip certifi's file is no file; from the unpacked cache it is one. Either way the
    pyz verifies with the host's CA bundle, so a second start (from the cache) trusts exactly
    the CAs the first one did."""
    python = interpreter(minor) or unavailable(f"no CPython {minor} under pyenv")
    cache = tmp_path / "pyz-cache"
    cache.mkdir(mode=0o700)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SQLITE_PROVISION_PYZ_CACHE": str(cache)}
    started = subprocess.run([python, str(pyz), "--version"], env=env, capture_output=True,
                             text=True, timeout=120, check=False)  # fmt: skip
    assert started.returncode == 0, started.stderr
    (entry,) = [p for p in cache.iterdir() if p.is_dir() and (p / "_vendor" / "certifi").is_dir()]
    assert (entry / "_vendor" / "certifi" / "cacert.pem").is_file()
    seen = []
    for root in (str(pyz), str(entry)):
        done = subprocess.run([python, "-I", "-c", BUNDLE, root], env=env, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        seen.append(done.stdout.strip())
    host_bundle = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, first of SYSTEM_CA_BUNDLES here
    assert seen == [host_bundle, host_bundle]
