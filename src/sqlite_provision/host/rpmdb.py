"""What rpm says about a package file and about the host's rpm database: each a command through
the Runner (argv lists, logged) and a pure parser of its output, unit-tested on captured text.

- `read_package`: a package file's name, version, Provides and Requires (`rpm -qp`);
- `check_signature`: its digests and signatures (`rpm -Kv`), against the keys in the rpmdb;
- `owner_of`: which installed package owns a path (`rpm -qf`);
- `installed_package`, `installed_files`: an installed package by name (`rpm -q`, `rpm -ql`);
- `verify`: an installed package's files against its digests (`rpm -V`), as typed problems.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from sqlite_provision.errors import CommandFailed
from sqlite_provision.runner import Completed, Runner

RPM = "rpm"
FIELD_END = "\x1f"  # between the fields of --queryformat: never in a name or a dependency


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    release: str
    arch: str
    provides: Tuple[str, ...]
    requires: Tuple[str, ...]

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}"


QUERY_FORMAT = (
    "%{NAME}" + FIELD_END + "%{VERSION}" + FIELD_END + "%{RELEASE}" + FIELD_END + "%{ARCH}"
    + FIELD_END + "[P %{PROVIDENEVRS}\n]" + FIELD_END + "[R %{REQUIRENEVRS}\n]"
)  # fmt: skip


def read_package(runner: Runner, path: Path) -> PackageInfo:
    """`rpm -qp` of a package file (no database needed)."""
    done = runner.capture(read_package_argv(path))
    if done.returncode != 0:
        raise failed(done, f"rpm cannot read the package {path}")
    return parse_package(done.stdout)


def read_package_argv(path: Path) -> List[str]:
    return [RPM, "-qp", "--nosignature", "--queryformat", QUERY_FORMAT, str(path)]


def package_files(runner: Runner, path: Path) -> Tuple[str, ...]:
    """`rpm -qpl`: the paths a package file installs."""
    return listed_paths(runner, [RPM, "-qpl", "--nosignature", str(path)], str(path))


def listed_paths(runner: Runner, argv: List[str], package: str) -> Tuple[str, ...]:
    """The paths `rpm -ql` (or `-qpl`) lists; CommandFailed where rpm cannot."""
    done = runner.capture(argv)
    if done.returncode != 0:
        raise failed(done, f"rpm cannot list the package {package}")
    return tuple(line for line in done.stdout.splitlines() if line.startswith("/"))


def parse_package(text: str) -> PackageInfo:
    fields = text.split(FIELD_END)
    if len(fields) != 6:
        raise ValueError(f"unexpected rpm --queryformat output: {text[:200]!r}")
    name, version, release, arch, provides, requires = fields
    return PackageInfo(name, version, release, arch, tagged(provides, "P"), tagged(requires, "R"))


def tagged(text: str, tag: str) -> Tuple[str, ...]:
    return tuple(line[len(tag) + 1 :] for line in text.splitlines() if line.startswith(tag + " "))


# --- signatures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool  # rpm -K exits 0: every digest and signature checks out against a known key
    signed: bool  # it carries an OpenPGP signature (checked or not)
    key_ids: Tuple[str, ...]  # the signing keys' ids, as rpm prints them
    problems: Tuple[str, ...]  # the lines that are not OK: "... key ID 088f08df: NOKEY"


def check_signature(runner: Runner, path: Path, dbpath: Optional[Path] = None) -> SignatureCheck:
    """`rpm -Kv`, against the keys imported (rpm --import) into the host's rpmdb, or `dbpath`'s."""
    where = ["--dbpath", str(dbpath)] if dbpath is not None else []
    done = runner.capture([RPM, *where, "-Kv", str(path)])
    text = done.stdout + done.stderr
    if done.returncode not in (0, 1) or not any(map(SIGNATURE_LINE.match, text.splitlines())):
        raise failed(done, f"rpm cannot check the package {path}")
    return parse_signature_check(text, done.returncode)


SIGNATURE_LINE = re.compile(r"^\s+(?P<what>.+?):\s+(?P<status>[A-Z]+)\b")
KEY_ID = re.compile(r"key ID ([0-9a-fA-F]+)")


def parse_signature_check(text: str, returncode: int) -> SignatureCheck:
    """`rpm -Kv` output: one indented line per digest or signature, `WHAT: STATUS`. NOTFOUND
    lines (RSA/DSA of v3 packages) are what a damaged package lacks, not problems themselves."""
    signed, keys, problems = False, [], []
    for line in text.splitlines():
        found = SIGNATURE_LINE.match(line)
        if found is None:
            continue
        what, status = found.group("what"), found.group("status")
        if status == "NOTFOUND":
            continue
        if "Signature" in what:
            signed = True
            keys += KEY_ID.findall(what)
        if status != "OK":
            problems.append(line.strip())
    return SignatureCheck(returncode == 0 and not problems, signed, tuple(keys), tuple(problems))


# --- the rpm database ------------------------------------------------------------------------


def owner_of(runner: Runner, path: str) -> Optional[str]:
    """The installed package (NAME-VERSION-RELEASE.ARCH) that owns `path`, or None."""
    done = runner.capture([RPM, "-qf", "--queryformat", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n",
                           path])  # fmt: skip
    return parse_owner(done)


def parse_owner(done: Completed) -> Optional[str]:
    """One owner (the first: a shared directory has several), or None when rpm says nobody owns
    it or it does not exist; any other failure (no rpm, no database) is raised."""
    lines = done.stdout.splitlines()
    if done.returncode == 0 and lines:
        return lines[0].strip()
    said = done.stdout + done.stderr
    if done.returncode == 1 and ("is not owned by any package" in said or "No such file" in said):
        return None
    raise failed(done, f"rpm cannot tell who owns {done.argv[-1]}")


def installed_package(runner: Runner, name: str) -> Optional[PackageInfo]:
    """`rpm -q NAME`: the installed package of that name, as `read_package` reads a file, or
    None when it is not installed."""
    done = runner.capture([RPM, "-q", "--queryformat", QUERY_FORMAT, name])
    return parse_installed(name, done)


def parse_installed(name: str, done: Completed) -> Optional[PackageInfo]:
    if done.returncode != 0:
        if f"package {name} is not installed" in done.stdout + done.stderr:
            return None
        raise failed(done, f"rpm cannot query {name}")
    try:
        return parse_package(done.stdout)
    except ValueError:  # two packages of that name (a forced rpm -i): one is what is asked
        raise failed(done, f"rpm -q {name} names more than one installed package") from None


def installed_files(runner: Runner, name: str) -> Tuple[str, ...]:
    """`rpm -ql NAME`: the paths an installed package owns."""
    return listed_paths(runner, [RPM, "-ql", name], name)


# `rpm -V` flags, in the order rpm prints them.
VERIFY_FLAGS = (
    ("S", "size"),
    ("M", "mode"),
    ("5", "digest"),
    ("D", "device"),
    ("L", "link"),
    ("U", "owner"),
    ("G", "group"),
    ("T", "mtime"),
    ("P", "capabilities"),
)
VERIFY_LINE = re.compile(
    r"^(?P<flags>[SM5DLUGTP.?]{8,9})\s+(?:(?P<kind>[cdglr])\s)?\s*(?P<path>/.*)$"
)
NEEDED_LINE = re.compile(r"^\s+(?P<what>\S.*?) is needed by ")
MISSING_LINE = re.compile(r"^missing\s+(?:(?P<kind>[cdglr])\s)?\s*(?P<path>/.*)$")


@dataclass(frozen=True)
class VerifyProblem:
    path: str  # the file, or the package for an unsatisfied dependency
    changes: Tuple[str, ...]  # "size", "digest", ...; ("missing",); ("dependency",)
    detail: str  # rpm's own line

    def describe(self) -> str:
        return f"{self.path}: {', '.join(self.changes)}"


@dataclass(frozen=True)
class VerifyReport:
    package: str
    installed: bool
    problems: Tuple[VerifyProblem, ...]

    @property
    def ok(self) -> bool:
        return self.installed and not self.problems


def verify(runner: Runner, package: str) -> VerifyReport:
    """`rpm -V PACKAGE`: every file against the digest, size, mode, owner and time the package
    recorded, and its dependencies."""
    done = runner.capture([RPM, "-V", package])
    return parse_verify(package, done)


def parse_verify(package: str, done: Completed) -> VerifyReport:
    text = done.stdout + done.stderr
    if done.returncode != 0 and f"package {package} is not installed" in text:
        return VerifyReport(package, False, ())
    problems = [p for p in (verify_problem(line) for line in text.splitlines()) if p]
    if done.returncode != 0 and not problems:
        raise failed(done, f"rpm cannot verify {package}")
    return VerifyReport(package, True, tuple(problems))


def verify_problem(line: str) -> Optional[VerifyProblem]:
    changed = VERIFY_LINE.match(line)
    if changed:
        flags = changed.group("flags")
        names = [name for flag, name in VERIFY_FLAGS if flag in flags]
        if "?" in flags:
            names.append("unreadable")
        return VerifyProblem(changed.group("path"), tuple(names), line.strip())
    missing = MISSING_LINE.match(line)
    if missing:
        return VerifyProblem(missing.group("path"), ("missing",), line.strip())
    needed = NEEDED_LINE.match(line)
    if needed:
        return VerifyProblem(needed.group("what"), ("dependency",), line.strip())
    return None


def failed(done: Completed, what: str) -> CommandFailed:
    said = (done.stderr or done.stdout).strip().splitlines()
    return CommandFailed(
        f"{what}: {said[-1] if said else f'exit status {done.returncode}'}",
        hint="check that rpm works on this host (rpm -qa | head)",
        argv=list(done.argv),
        returncode=done.returncode,
    )
