"""Configure flags for each build-system era of the sqlite-autoconf tarball, and the build commands.

Facts from sqlite.org (see the reference README): tarballs up to 3.48.0 use GNU autoconf/libtool,
from 3.49.0 they use autosetup, under the same file name. The plan predicts the era and the
configure options from the version, so that --dry-run shows the command that runs; the unpacked
tree's era and `configure --help` are then checked against that prediction before anything is
built (steps/build.py, ProbeConfigure).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, List, Optional, Sequence, Tuple

from sqlite_provision.errors import DownloadError
from sqlite_provision.recipe.features import Selected, select

AUTOCONF = "autoconf"
AUTOSETUP = "autosetup"
FIRST_AUTOSETUP = (3, 49, 0)


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
    "--disable-static-shell",
)
AUTOSETUP_OPTIONS = (
    "--disable-static",
    "--soname=legacy",
    "--enable-threadsafe",
    "--enable-load-extension",
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
    features: Tuple[Tuple[str, str], ...] = ()  # (option, where it came from)
    predicted: bool = False  # True when derived from the version, before the tree was unpacked
    skipped_options: Tuple[str, ...] = field(default=())

    def configure_argv(self) -> List[str]:
        return ["./configure", *self.configure_args]

    def fingerprint(self) -> dict:  # type: ignore[type-arg]
        """What makes two builds the same build (recorded in the manifest)."""
        return {
            "era": self.era,
            "configure": list(self.configure_args),
            "cflags": self.cflags,
            "features": [list(f) for f in self.features],
        }


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
        if version >= (3, 32, 0):
            names |= {"--enable-fts3", "--enable-session"}
        names.add("--enable-static-shell")
        return frozenset(names)
    names = {"--disable-static", "--soname", "--fts3", "--fts4", "--fts5", "--rtree", "--geopoly"}
    names |= {"--session", "--dbpage", "--dbstat", "--update-limit"}
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
    features: Optional[Sequence[Selected]] = None,
) -> BuildConfig:
    if features is None:
        features = select("rhel", version)
    structural = AUTOSETUP_OPTIONS if era == AUTOSETUP else AUTOCONF_OPTIONS
    wanted = list(structural)
    for chosen in features:
        for option in chosen.feature.autosetup if era == AUTOSETUP else chosen.feature.autoconf:
            if option not in wanted:
                wanted.append(option)
    args = [f"--prefix={prefix}"]
    skipped = []
    for option in wanted:
        if _supported(option, supported):
            args.append(option)
        elif _option_name(option) in MUST_SUPPORT and era == AUTOSETUP:
            raise DownloadError(
                f"this tarball's configure does not support {option}",
                hint="use a release from `sqlite-provision versions`",
            )
        else:
            skipped.append(option)
    # The -D flag is passed for every feature, configure option or not: it is what the amalgamation
    # reads, and it works in both eras.
    cflags = " ".join([BASE_CFLAGS] + [chosen.feature.define for chosen in features])
    if env_cflags.strip():
        # Appended last so that the caller wins (CFLAGS=-O0 gives fast test builds).
        cflags = f"{cflags} {env_cflags.strip()}"
    expected = tuple(chosen.feature.option for chosen in features) + REQUIRED_OPTIONS
    return BuildConfig(
        era=era,
        prefix=prefix,
        configure_args=tuple(args),
        cflags=cflags,
        expected_options=expected,
        features=tuple((chosen.feature.option, chosen.origin) for chosen in features),
        predicted=predicted,
        skipped_options=tuple(skipped),
    )


def config_differences(planned: BuildConfig, found: BuildConfig) -> str:
    """How the configure a tree calls for differs from the planned one, in words."""
    said = []
    if found.era != planned.era:
        said.append(f"it is an {found.era} tree, planned as {planned.era}")
    extra = [a for a in found.configure_args if a not in planned.configure_args]
    lacking = [a for a in planned.configure_args if a not in found.configure_args]
    if extra:
        said.append("its configure --help calls for " + " ".join(extra) + " too")
    if lacking:
        said.append("its configure --help does not list " + " ".join(lacking))
    return "; ".join(said) or "its configure takes the planned options in another order"


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


# The autosetup Makefile (3.49+) compiles and links the shell in one command that waits for
# libsqlite3.so, so shell.c starts only after sqlite3.c, the longest compile, has finished, and
# the other cores idle meanwhile. This overlay compiles shell.c into an object of its own, in
# parallel with sqlite3.c, and links it the same way. Measured on 3.52.0, 2 cores: make -j2 from
# 33.2 s to 29.8 s. It is used only when the Makefile holds every name it relies on.
SHELL_OVERLAY_NAME = "sqlite-provision-shell.mk"
SHELL_OVERLAY = """\
# Written by sqlite-provision: compile shell.c beside sqlite3.c, not after libsqlite3.so.
sqlite-provision-shell.o: $(TOP)/shell.c
\t$(CC) -c -o $@ $(TOP)/shell.c -I. $(OPT_FEATURE_FLAGS) $(SHELL_OPT) \\
\t\t$(CFLAGS) $(CFLAGS.readline) $(CFLAGS.icu)
sqlite3$(T.exe): sqlite-provision-shell.o $(sqlite3-shell-deps.$(ENABLE_STATIC_SHELL))
\t$(CC) -o $@ sqlite-provision-shell.o $(sqlite3-shell-link-flags.$(ENABLE_STATIC_SHELL)) \\
\t\t$(sqlite3-shell-static.flags.$(STATIC_CLI_SHELL)) $(LDFLAGS.readline)
"""
SHELL_RULE = "sqlite3$(T.exe): $(TOP)/shell.c $(sqlite3-shell-deps.$(ENABLE_STATIC_SHELL))"
SHELL_OVERLAY_NAMES = (
    "$(OPT_FEATURE_FLAGS)",
    "$(SHELL_OPT)",
    "$(CFLAGS.readline)",
    "$(CFLAGS.icu)",
    "$(sqlite3-shell-link-flags.$(ENABLE_STATIC_SHELL))",
    "$(sqlite3-shell-static.flags.$(STATIC_CLI_SHELL))",
    "$(LDFLAGS.readline)",
)


# What the overlay holds where the Makefile does not fit it: make reads it and finds nothing.
INERT_OVERLAY = (
    "# Written by sqlite-provision: this Makefile has no shell rule the overlay fits; "
    "nothing to add.\n"
)


def shell_overlay_fits(makefile_text: str) -> bool:
    """True when the Makefile (or its Makefile.in, which configure copies the rule from) has
    the shell rule the overlay replaces, and all it refers to."""
    return SHELL_RULE in makefile_text and all(n in makefile_text for n in SHELL_OVERLAY_NAMES)


def shell_overlay_text(fits: bool) -> str:
    return SHELL_OVERLAY if fits else INERT_OVERLAY


def make_argv(jobs: int, overlay: bool = False) -> List[str]:
    if overlay:
        return ["make", f"-j{jobs}", "-f", "Makefile", "-f", SHELL_OVERLAY_NAME]
    return ["make", f"-j{jobs}"]


def install_argv(staging: str) -> List[str]:
    return ["make", "install", f"DESTDIR={staging}"]
