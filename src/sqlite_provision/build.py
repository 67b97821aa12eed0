"""Configure flags for each build-system era of the sqlite-autoconf tarball, and the build commands.

Facts from sqlite.org (see the reference README): tarballs up to 3.48.0 use GNU autoconf/libtool,
from 3.49.0 they use autosetup, under the same file name. The era is detected from the unpacked
tree; the version only predicts it for --dry-run, before anything is unpacked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, List, Optional, Sequence, Tuple

from sqlite_provision.errors import DownloadError

AUTOCONF = "autoconf"
AUTOSETUP = "autosetup"
FIRST_AUTOSETUP = (3, 49, 0)


@dataclass(frozen=True)
class Define:
    """A -D flag and the name `PRAGMA compile_options` shows for it when it took effect."""

    flag: str
    option: str
    until: Optional[Tuple[int, ...]] = None  # the flag is obsolete from this version on

    def applies_to(self, version: Tuple[int, ...]) -> bool:
        return self.until is None or version < self.until


# Red Hat's sqlite.spec CFLAGS for RHEL 8/9 (reference README), plus FTS4/FTS5 which RHEL enables
# through configure. JSON1 is built in (and the flag ignored) from 3.38.0.
RHEL_DEFINES: Tuple[Define, ...] = (
    Define("-DSQLITE_ENABLE_COLUMN_METADATA=1", "ENABLE_COLUMN_METADATA"),
    Define("-DSQLITE_DISABLE_DIRSYNC=1", "DISABLE_DIRSYNC"),
    Define("-DSQLITE_ENABLE_FTS3=1", "ENABLE_FTS3"),
    Define("-DSQLITE_ENABLE_FTS4=1", "ENABLE_FTS4"),
    Define("-DSQLITE_ENABLE_FTS5=1", "ENABLE_FTS5"),
    Define("-DSQLITE_ENABLE_RTREE=1", "ENABLE_RTREE"),
    Define("-DSQLITE_SECURE_DELETE=1", "SECURE_DELETE"),
    Define("-DSQLITE_ENABLE_UNLOCK_NOTIFY=1", "ENABLE_UNLOCK_NOTIFY"),
    Define("-DSQLITE_ENABLE_DBSTAT_VTAB=1", "ENABLE_DBSTAT_VTAB"),
    Define("-DSQLITE_ENABLE_FTS3_PARENTHESIS=1", "ENABLE_FTS3_PARENTHESIS"),
    Define("-DSQLITE_ENABLE_JSON1=1", "ENABLE_JSON1", until=(3, 38, 0)),
)

# CPython's _sqlite3 calls sqlite3_enable_shared_cache and (older versions) sqlite3_trace.
FORBIDDEN_OPTIONS = ("OMIT_SHARED_CACHE", "OMIT_DEPRECATED", "OMIT_LOAD_EXTENSION")
REQUIRED_OPTIONS = ("THREADSAFE=1",)

BASE_CFLAGS = "-O2"

# Wanted configure options per era, in order. Each is passed only when that tarball's
# `configure --help` lists it, except the ones in MUST_SUPPORT, whose absence is an error.
AUTOCONF_OPTIONS = (
    "--disable-static",
    "--enable-shared",
    "--enable-threadsafe",
    "--enable-dynamic-extensions",
    "--enable-fts4",
    "--enable-fts5",
    "--enable-rtree",
    "--enable-math",
    "--disable-static-shell",
)
AUTOSETUP_OPTIONS = (
    "--disable-static",
    "--soname=legacy",
    "--enable-threadsafe",
    "--enable-load-extension",
    "--fts4",
    "--fts5",
    "--rtree",
    "--disable-rpath",
    "--disable-static-shell",
)
MUST_SUPPORT = frozenset({"--disable-static", "--soname"})
# autosetup lists booleans by their non-default spelling (--disable-threadsafe); it accepts both.
ALWAYS_ACCEPTED = frozenset({"--enable-threadsafe", "--enable-load-extension"})


@dataclass(frozen=True)
class BuildConfig:
    era: str
    prefix: str
    configure_args: Tuple[str, ...]
    cflags: str
    expected_options: Tuple[str, ...]
    predicted: bool = False  # True when derived from the version, before the tree was unpacked
    skipped_options: Tuple[str, ...] = field(default=())

    def configure_argv(self) -> List[str]:
        return ["./configure", *self.configure_args]

    def fingerprint(self) -> dict:  # type: ignore[type-arg]
        """What makes two builds the same build (recorded in the manifest)."""
        return {"era": self.era, "configure": list(self.configure_args), "cflags": self.cflags}


def predict_era(version: Tuple[int, ...]) -> str:
    return AUTOSETUP if version >= FIRST_AUTOSETUP else AUTOCONF


def detect_era(srcdir: Path) -> str:
    if (srcdir / "auto.def").is_file() or (srcdir / "autosetup").is_dir():
        return AUTOSETUP
    if (srcdir / "configure").is_file() and (
        (srcdir / "configure.ac").is_file() or (srcdir / "ltmain.sh").is_file()
    ):
        return AUTOCONF
    raise DownloadError(
        f"{srcdir} is not an sqlite-autoconf source tree (no auto.def or configure.ac)",
        hint="pass the sqlite-autoconf-XXXXXXX.tar.gz tarball, not the amalgamation or sqlite-src",
    )


_OPTION_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def parse_configure_help(text: str) -> FrozenSet[str]:
    """The option names a `configure --help` output lists, e.g. {'--disable-static', '--soname'}."""
    return frozenset(_OPTION_RE.findall(text))


def predicted_supported(era: str, version: Tuple[int, ...]) -> FrozenSet[str]:
    """What configure --help will list, from the version alone (for --dry-run)."""
    if era == AUTOCONF:
        names = {"--disable-static", "--enable-shared", "--enable-threadsafe"}
        names |= {"--enable-dynamic-extensions", "--enable-fts5"}
        if version >= (3, 28, 0):
            names |= {"--enable-fts4", "--enable-rtree"}
        if version >= (3, 35, 0):
            names.add("--enable-math")
        names.add("--enable-static-shell")
        return frozenset(names)
    names = {"--disable-static", "--soname", "--fts4", "--fts5", "--rtree"}
    if version >= (3, 51, 0):
        names.add("--disable-rpath")
    if version >= (3, 50, 0):
        names.add("--disable-static-shell")
    return frozenset(names)


def _option_name(option: str) -> str:
    return option.split("=", 1)[0]


def _supported(option: str, supported: FrozenSet[str]) -> bool:
    name = _option_name(option)
    if name in supported or name in ALWAYS_ACCEPTED:
        return True
    # autoconf lists --enable-static-shell; --disable-static-shell is its negation.
    for a, b in (("--disable-", "--enable-"), ("--enable-", "--disable-")):
        if name.startswith(a) and b + name[len(a) :] in supported:
            return True
    return False


def make_build_config(
    *,
    era: str,
    prefix: str,
    version: Tuple[int, ...],
    supported: FrozenSet[str],
    env_cflags: str = "",
    predicted: bool = False,
) -> BuildConfig:
    wanted = AUTOSETUP_OPTIONS if era == AUTOSETUP else AUTOCONF_OPTIONS
    args = [f"--prefix={prefix}"]
    skipped = []
    for option in wanted:
        if _supported(option, supported):
            args.append(option)
        elif _option_name(option) in MUST_SUPPORT:
            raise DownloadError(
                f"this tarball's configure does not support {option}",
                hint="use a release from `sqlite-provision versions`",
            )
        else:
            skipped.append(option)
    defines = [d for d in RHEL_DEFINES if d.applies_to(version)]
    cflags = " ".join([BASE_CFLAGS] + [d.flag for d in defines])
    if env_cflags.strip():
        # Appended last so that the caller wins (CFLAGS=-O0 gives fast test builds).
        cflags = f"{cflags} {env_cflags.strip()}"
    expected = tuple(d.option for d in defines) + REQUIRED_OPTIONS
    return BuildConfig(
        era=era,
        prefix=prefix,
        configure_args=tuple(args),
        cflags=cflags,
        expected_options=expected,
        predicted=predicted,
        skipped_options=tuple(skipped),
    )


def known_compile_options(amalgamation_text: str) -> FrozenSet[str]:
    """Names in sqlite3.c's compile-option table: only these can show up in the PRAGMA."""
    return frozenset(re.findall(r'^\s+"([A-Z0-9_]+)(?:=|",)', amalgamation_text, re.MULTILINE))


def missing_options(
    expected: Sequence[str], actual: Sequence[str], known: Optional[FrozenSet[str]] = None
) -> List[str]:
    """Expected options absent from the built library. `known` limits the check to names the
    release can report at all (old releases lack some entries in their table)."""
    have = set(actual)
    missing = []
    for option in expected:
        name = option.split("=", 1)[0]
        if known is not None and name not in known:
            continue
        if option not in have:
            missing.append(option)
    return missing


def forbidden_present(actual: Sequence[str]) -> List[str]:
    return [o for o in actual if o.split("=", 1)[0] in FORBIDDEN_OPTIONS]


def make_argv(jobs: int) -> List[str]:
    return ["make", f"-j{jobs}"]


def install_argv(staging: str) -> List[str]:
    return ["make", "install", f"DESTDIR={staging}"]
