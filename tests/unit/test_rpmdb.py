"""host/rpmdb.py's parsers on rpm's own output, captured from rpm 4.18 (Debian 12) on a package
built by store/rpm.py (the commands themselves run in tests/unit/test_rpm_build.py and in the
look-alikes, tests/integration/test_rpm.py)."""

from __future__ import annotations

from typing import Tuple

import pytest

from sqlite_provision.errors import CommandFailed
from sqlite_provision.host.rpmdb import (
    FIELD_END,
    parse_owner,
    parse_package,
    parse_signature_check,
    parse_verify,
)
from sqlite_provision.runner import Completed

NAME = "sqlite-provision-sqlite3_44_2"
NEVRA = NAME + "-3.44.2-1.x86_64"
LIB = "/opt/sqlite/3.44.2/lib/libsqlite3.so.0.8.6"

VERIFY_DAMAGED = f"""\
.M.......    /opt/sqlite/3.44.2/include/sqlite3.h
..5....T.    {LIB}
missing     /opt/sqlite/3.44.2/share/man/man1/sqlite3.1
S.5....T.  c /etc/sqlite.conf
"""
VERIFY_DEPENDENCIES = f"""\
Unsatisfied dependencies for {NEVRA}:
\tlibc.so.6(GLIBC_2.34)(64bit) is needed by (installed) {NEVRA}
\trtld(GNU_HASH) is needed by (installed) {NEVRA}
"""

SIGNED_NOKEY = """\
s.rpm:
    Header V4 RSA/SHA512 Signature, key ID 088f08df: NOKEY
    Header SHA256 digest: OK
    Header SHA1 digest: OK
    Payload SHA256 digest: OK
    MD5 digest: OK
"""
UNSIGNED = """\
a.rpm:
    Header SHA256 digest: OK
    Header SHA1 digest: OK
    Payload SHA256 digest: OK
    MD5 digest: OK
"""
DAMAGED = """\
s2.rpm:
    Header V4 RSA/SHA512 Signature, key ID 088f08df: OK
    Header SHA256 digest: OK
    Header SHA1 digest: OK
    Payload SHA256 ALT digest: BAD (Expected 7a55b92d != b647e5a3)
    Payload SHA256 digest: BAD (Expected 2e318fc1 != b647e5a3)
    RSA signature: NOTFOUND
    DSA signature: NOTFOUND
    MD5 digest: BAD (Expected a0835250 != 01fd5e89)
"""
# RHEL 7's rpm 4.11 prints the same lines (`rpm -Kv` of a signed package from Red Hat).
RHEL7_SIGNED = """\
bash-4.2.46-35.el7_9.x86_64.rpm:
    Header V3 RSA/SHA256 Signature, key ID fd431d51: OK
    Header SHA1 digest: OK (5f3a9c...)
    V3 RSA/SHA256 Signature, key ID fd431d51: OK
    MD5 digest: OK (0ab1...)
"""


def done(argv: str, code: int, out: str = "", err: str = "") -> Completed:
    return Completed(argv.split(), code, out, err)


def test_a_package_files_name_provides_and_requires() -> None:
    text = FIELD_END.join([
        NAME, "3.44.2", "1", "x86_64",
        f"P {NAME} = 3.44.2-1\nP {NAME}(x86-64) = 3.44.2-1\n",
        "R libc.so.6(GLIBC_2.34)(64bit)\nR rtld(GNU_HASH)\n",
    ])  # fmt: skip
    info = parse_package(text)
    assert info.nevra == NEVRA
    assert info.provides == (f"{NAME} = 3.44.2-1", f"{NAME}(x86-64) = 3.44.2-1")
    assert info.requires == ("libc.so.6(GLIBC_2.34)(64bit)", "rtld(GNU_HASH)")
    with pytest.raises(ValueError, match="unexpected"):
        parse_package("error: not an rpm package\n")


def test_the_owner_of_a_path() -> None:
    assert parse_owner(done(f"rpm -qf {LIB}", 0, NEVRA + "\n")) == NEVRA
    shared = done("rpm -qf /opt/sqlite", 0, NEVRA + "\n" + NEVRA.replace("44_2", "52_0") + "\n")
    assert parse_owner(shared) == NEVRA
    assert (
        parse_owner(done("rpm -qf /etc/x", 1, "file /etc/x is not owned by any package\n")) is None
    )
    gone = done("rpm -qf /nonexist", 1, err="error: file /nonexist: No such file or directory\n")
    assert parse_owner(gone) is None
    with pytest.raises(CommandFailed, match="cannot tell who owns /x: error: cannot open Packages"):
        parse_owner(
            done("rpm -qf /x", 1, err="error: cannot open Packages database in /var/lib/rpm\n")
        )


def test_rpm_v_problems_are_typed() -> None:
    report = parse_verify(NAME, done(f"rpm -V {NAME}", 1, VERIFY_DAMAGED))
    assert report.installed and not report.ok
    assert [(p.path, p.changes) for p in report.problems] == [
        ("/opt/sqlite/3.44.2/include/sqlite3.h", ("mode",)),
        (LIB, ("digest", "mtime")),
        ("/opt/sqlite/3.44.2/share/man/man1/sqlite3.1", ("missing",)),
        ("/etc/sqlite.conf", ("size", "digest", "mtime")),
    ]
    assert report.problems[1].describe() == f"{LIB}: digest, mtime"
    assert report.problems[1].detail == f"..5....T.    {LIB}"


def test_rpm_v_clean_missing_package_dependencies_and_failure() -> None:
    clean = parse_verify(NAME, done(f"rpm -V {NAME}", 0))
    assert clean.ok and clean.problems == ()
    absent = parse_verify(NAME, done(f"rpm -V {NAME}", 1, f"package {NAME} is not installed\n"))
    assert not absent.installed and not absent.ok
    deps = parse_verify(NAME, done(f"rpm -V {NAME}", 2, VERIFY_DEPENDENCIES))
    assert [(p.path, p.changes) for p in deps.problems] == [
        ("libc.so.6(GLIBC_2.34)(64bit)", ("dependency",)), ("rtld(GNU_HASH)", ("dependency",)),
    ]  # fmt: skip
    with pytest.raises(CommandFailed, match="cannot verify"):
        parse_verify(NAME, done(f"rpm -V {NAME}", 1, err="error: rpmdb: damaged header\n"))


@pytest.mark.parametrize(
    "text, code, ok, signed, keys, problems",
    [(UNSIGNED, 0, True, False, (), 0),
     (SIGNED_NOKEY, 1, False, True, ("088f08df",), 1),
     (DAMAGED, 1, False, True, ("088f08df",), 3),
     (RHEL7_SIGNED, 0, True, True, ("fd431d51", "fd431d51"), 0),
     (UNSIGNED, 1, False, False, (), 0)],
)  # fmt: skip
def test_rpm_k_signatures_and_digests(
    text: str, code: int, ok: bool, signed: bool, keys: Tuple[str, ...], problems: int
) -> None:
    check = parse_signature_check(text, code)
    assert (check.ok, check.signed, check.key_ids, len(check.problems)) == (
        ok, signed, keys, problems,
    )  # fmt: skip
    if problems:
        assert all(": OK" not in p for p in check.problems)
