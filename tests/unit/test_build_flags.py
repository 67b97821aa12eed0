"""Layer 1: configure flags per build-system era, era prediction and detection, and the
compile-option checks, on text captured from the real tarballs (../shared/sqlite-tarballs).

The `configure --help` outputs and the compile-option table below were captured from
sqlite-autoconf-3440200 (autoconf era) and sqlite-autoconf-3520000 (autosetup era); the 3.49.0-like
help is the 3.52.0 one without the options that autosetup gained later. The tests do not need the
tarballs.
"""

# Optional rather than `X | None`: the tool and its tests run on Python 3.7.

from __future__ import annotations

import re
from pathlib import Path
from typing import FrozenSet, List, Tuple

import pytest

from sqlite_provision.errors import EXIT_DOWNLOAD, DownloadError
from sqlite_provision.recipe import flags as build

# `./configure --help` of sqlite-autoconf-3440200.tar.gz (GNU autoconf + libtool).
AUTOCONF_3_44_2_HELP = """\
`configure' configures sqlite 3.44.2 to adapt to many kinds of systems.

Usage: ./configure [OPTION]... [VAR=VALUE]...

To assign environment variables (e.g., CC, CFLAGS...), specify them as
VAR=VALUE.  See below for descriptions of some of the useful variables.

Defaults for the options are specified in brackets.

Configuration:
  -h, --help              display this help and exit
      --help=short        display options specific to this package
      --help=recursive    display the short help of all the included packages
  -V, --version           display version information and exit
  -q, --quiet, --silent   do not print `checking ...' messages
      --cache-file=FILE   cache test results in FILE [disabled]
  -C, --config-cache      alias for `--cache-file=config.cache'
  -n, --no-create         do not create output files
      --srcdir=DIR        find the sources in DIR [configure dir or `..']

Installation directories:
  --prefix=PREFIX         install architecture-independent files in PREFIX
                          [/usr/local]
  --exec-prefix=EPREFIX   install architecture-dependent files in EPREFIX
                          [PREFIX]

By default, `make install' will install all the files in
`/usr/local/bin', `/usr/local/lib' etc.  You can specify
an installation prefix other than `/usr/local' using `--prefix',
for instance `--prefix=$HOME'.

For better control, use the options below.

Fine tuning of the installation directories:
  --bindir=DIR            user executables [EPREFIX/bin]
  --sbindir=DIR           system admin executables [EPREFIX/sbin]
  --libexecdir=DIR        program executables [EPREFIX/libexec]
  --sysconfdir=DIR        read-only single-machine data [PREFIX/etc]
  --sharedstatedir=DIR    modifiable architecture-independent data [PREFIX/com]
  --localstatedir=DIR     modifiable single-machine data [PREFIX/var]
  --runstatedir=DIR       modifiable per-process data [LOCALSTATEDIR/run]
  --libdir=DIR            object code libraries [EPREFIX/lib]
  --includedir=DIR        C header files [PREFIX/include]
  --oldincludedir=DIR     C header files for non-gcc [/usr/include]
  --datarootdir=DIR       read-only arch.-independent data root [PREFIX/share]
  --datadir=DIR           read-only architecture-independent data [DATAROOTDIR]
  --infodir=DIR           info documentation [DATAROOTDIR/info]
  --localedir=DIR         locale-dependent data [DATAROOTDIR/locale]
  --mandir=DIR            man documentation [DATAROOTDIR/man]
  --docdir=DIR            documentation root [DATAROOTDIR/doc/sqlite]
  --htmldir=DIR           html documentation [DOCDIR]
  --dvidir=DIR            dvi documentation [DOCDIR]
  --pdfdir=DIR            pdf documentation [DOCDIR]
  --psdir=DIR             ps documentation [DOCDIR]

Program names:
  --program-prefix=PREFIX            prepend PREFIX to installed program names
  --program-suffix=SUFFIX            append SUFFIX to installed program names
  --program-transform-name=PROGRAM   run sed PROGRAM on installed program names

System types:
  --build=BUILD     configure for building on BUILD [guessed]
  --host=HOST       cross-compile to build programs to run on HOST [BUILD]

Optional Features:
  --disable-option-checking  ignore unrecognized --enable/--with options
  --disable-FEATURE       do not include FEATURE (same as --enable-FEATURE=no)
  --enable-FEATURE[=ARG]  include FEATURE [ARG=yes]
  --enable-silent-rules   less verbose build output (undo: "make V=1")
  --disable-silent-rules  verbose build output (undo: "make V=0")
  --disable-largefile     omit support for large files
  --enable-dependency-tracking
                          do not reject slow dependency extractors
  --disable-dependency-tracking
                          speeds up one-time build
  --enable-shared[=PKGS]  build shared libraries [default=yes]
  --enable-static[=PKGS]  build static libraries [default=yes]
  --enable-fast-install[=PKGS]
                          optimize for fast installation [default=yes]
  --disable-libtool-lock  avoid locking (might break parallel builds)
  --enable-editline       use BSD libedit
  --enable-readline       use readline
  --enable-threadsafe     build a thread-safe library [default=yes]
  --enable-dynamic-extensions
                          support loadable extensions [default=yes]
  --enable-math           SQL math functions [default=yes]
  --enable-fts4           include fts4 support [default=yes]
  --enable-fts3           include fts3 support [default=no]
  --enable-fts5           include fts5 support [default=yes]
  --enable-rtree          include rtree support [default=yes]
  --enable-session        enable the session extension [default=no]
  --enable-debug          build with debugging features enabled [default=no]
  --enable-static-shell   statically link libsqlite3 into shell tool
                          [default=yes]

Optional Packages:
  --with-PACKAGE[=ARG]    use PACKAGE [ARG=yes]
  --without-PACKAGE       do not use PACKAGE (same as --with-PACKAGE=no)
  --with-pic[=PKGS]       try to use only PIC/non-PIC objects [default=use
                          both]
  --with-aix-soname=aix|svr4|both
                          shared library versioning (aka "SONAME") variant to
                          provide on AIX, [default=aix].
  --with-gnu-ld           assume the C compiler uses GNU ld [default=no]
  --with-sysroot[=DIR]    Search for dependent libraries within DIR (or the
                          compiler's sysroot if not specified).

Some influential environment variables:
  CC          C compiler command
  CFLAGS      C compiler flags
  LDFLAGS     linker flags, e.g. -L<lib dir> if you have libraries in a
              nonstandard directory <lib dir>
  LIBS        libraries to pass to the linker, e.g. -l<library>
  CPPFLAGS    (Objective) C/C++ preprocessor flags, e.g. -I<include dir> if
              you have headers in a nonstandard directory <include dir>
  LT_SYS_LIBRARY_PATH
              User-defined run-time library search path.

Use these variables to override the choices made by `configure' or to help
it to find libraries and programs with nonstandard names/locations.

Report bugs to <http://www.sqlite.org>.
"""

# `./configure --help` of sqlite-autoconf-3520000.tar.gz (autosetup).
AUTOSETUP_3_52_0_HELP = """\
Usage: configure [options] [settings]

This is autosetup v0.7.2, a build environment "autoconfigurator"
See the documentation online at https://msteveb.github.io/autosetup/

  --help?=all?                     display help and options. Optional: module
                                   name, such as --help=system
  --license                        display the autosetup license
  --version                        display the version of autosetup
  --reference?=text?               display the autosetup command reference.
                                   'text', 'wiki', 'asciidoc' or 'markdown'
  --autosetup-debug                display debugging output as autosetup runs
  --install?=.?                    install autosetup to the current or given
                                   directory
  --init?=help?                    create initial auto.def, etc. Use
                                   --init=help for known types
  --host=host-alias                a complete or partial cpu-vendor-opsys for
                                   the system where the application will run
                                   (defaults to the same value as --build)
  --build=build-alias              a complete or partial cpu-vendor-opsys for
                                   the system where the application will be
                                   built (defaults to the result of running
                                   config.guess)
  --prefix=dir                     the target directory for the build
                                   (default: '/usr/local')
Local Options:
  --disable-shared                 Disable build of shared library
  --disable-static                 Disable build of static library
  --disable-threadsafe             Disable mutexing
  --with-tempstore?=no?            Use an in-RAM database for temporary
                                   tables: never,no,yes,always
  --disable-load-extension         Disable loading of external extensions
  --disable-math                   Disable math functions
  --disable-json                   Disable JSON functions
  --memsys5                        Enable MEMSYS5
  --memsys3                        Enable MEMSYS3
  --fts3                           Enable the FTS3 extension
  --fts4                           Enable the FTS4 extension
  --fts5                           Enable the FTS5 extension
  --update-limit                   Enable the UPDATE/DELETE LIMIT clause
  --geopoly                        Enable the GEOPOLY extension
  --rtree                          Enable the RTREE extension
  --session                        Enable the SESSION extension
  --dbpage                         Enable the sqlite3_dbpage extension
  --dbstat                         Enable the sqlite3_dbstat extension
  --disable-carray                 Disable the CARRAY extension
  --all                            Enable these extensions: fts4 fts5 rtree
                                   geopoly session dbpage dbstat carray
  --disable-largefile              This legacy flag has no effect on the
                                   library but may influence the generated
                                   sqlite_cfg.h by adding #define HAVE_LFS
  --disable-readline               Disable readline support
  --with-readline-ldflags?=auto?   Readline LDFLAGS, e.g. -lreadline -lncurses
  --with-readline-cflags?=auto?    Readline CFLAGS, e.g. -I/path/to/includes
  --with-readline-header=PATH      Full path to readline.h, from which
                                   --with-readline-cflags will be derived
  --with-linenoise=DIR             Source directory for linenoise.c and
                                   linenoise.h
  --editline                       Enable BSD editline support
  --with-icu-ldflags=LDFLAGS       Enable SQLITE_ENABLE_ICU and add the given
                                   linker flags for the ICU libraries. e.g. on
                                   Ubuntu systems, try '-licui18n -licuuc
                                   -licudata'.
  --with-icu-cflags=CFLAGS         Apply extra CFLAGS/CPPFLAGS necessary for
                                   building with ICU. e.g.
                                   -I/usr/local/include
  --with-icu-config?=auto?         Enable SQLITE_ENABLE_ICU. Value must be one
                                   of: auto, pkg-config, /path/to/icu-config
  --icu-collations                 Enable SQLITE_ENABLE_ICU_COLLATIONS.
                                   Requires --with-icu-ldflags=... or
                                   --with-icu-config
  --with-wasi-sdk?=/opt/wasi-sdk?  Top-most dir of the wasi-sdk for a WASI
                                   build
  --static-cli-shell               Statically-link the sqlite3 CLI shell. This
                                   only works if the requisite libraries are
                                   all available in static form.
  --disable-static-shell           Link the sqlite3 shell app against the DLL
                                   instead of embedding sqlite3.c
  --disable-rpath                  Disable use of the rpath linker flag
  --soname?=legacy?                SONAME for libsqlite3.so. "none", or not
                                   using this flag, sets no soname. "legacy"
                                   sets it to its historical value of
                                   libsqlite3.so.0. A value matching the glob
                                   "libsqlite3.*" sets it to that literal
                                   value. Any other value is assumed to be a
                                   suffix which gets applied to
                                   "libsqlite3.so.", e.g. --soname=9.10
                                   equates to "libsqlite3.so.9.10".
  --dll-basename?=auto?            Specifies the base name of the resulting
                                   DLL file. If not provided, "libsqlite3" is
                                   usually assumed but on some platforms a
                                   platform-dependent default is used. On some
                                   platforms this flag gets automatically
                                   enabled if it is not provided. Use
                                   "default" to explicitly disable
                                   platform-dependent activation on such
                                   systems.
  --out-implib?=auto?              Enable use of --out-implib linker flag to
                                   generate an "import library" for the DLL.
                                   The output's base name is specified by this
                                   flag's value, with "auto" meaning to figure
                                   out a name automatically. On some platforms
                                   this flag gets automatically enabled if it
                                   is not provided. Use "none" to explicitly
                                   disable this feature on such platforms.
  --debug                          Enable debug build flags. This option will
                                   impact performance by as much as 4x, as it
                                   includes large numbers of assert()s in
                                   performance-critical loops. Never use
                                   --debug for production builds.
  --scanstatus                     Enable the SQLITE_ENABLE_STMT_SCANSTATUS
                                   feature flag
  --dump-defines                   Dump autosetup defines to
                                   ./config.defines.txt (for build debugging)
"""

# The compile-option table of sqlite3.c in sqlite-autoconf-3440200 (an excerpt, verbatim).
COMPILE_OPTION_TABLE_3_44_2 = """\
static const char * const sqlite3azCompileOpt[] = {

#ifdef SQLITE_32BIT_ROWID
  "32BIT_ROWID",
#endif
#ifdef SQLITE_ATOMIC_INTRINSICS
  "ATOMIC_INTRINSICS=" CTIMEOPT_VAL(SQLITE_ATOMIC_INTRINSICS),
#endif
#if defined(__clang__) && defined(__clang_major__)
  "COMPILER=clang-" CTIMEOPT_VAL(__clang_major__) "."
                    CTIMEOPT_VAL(__clang_minor__) "."
                    CTIMEOPT_VAL(__clang_patchlevel__),
#elif defined(_MSC_VER)
  "COMPILER=msvc-" CTIMEOPT_VAL(_MSC_VER),
#elif defined(__GNUC__) && defined(__VERSION__)
  "COMPILER=gcc-" __VERSION__,
#endif
#ifdef SQLITE_DEFAULT_CACHE_SIZE
  "DEFAULT_CACHE_SIZE=" CTIMEOPT_VAL(SQLITE_DEFAULT_CACHE_SIZE),
#endif
#ifdef SQLITE_DISABLE_DIRSYNC
  "DISABLE_DIRSYNC",
#endif
#ifdef SQLITE_ENABLE_COLUMN_METADATA
  "ENABLE_COLUMN_METADATA",
#endif
#ifdef SQLITE_ENABLE_DBSTAT_VTAB
  "ENABLE_DBSTAT_VTAB",
#endif
#ifdef SQLITE_ENABLE_FTS3
  "ENABLE_FTS3",
#endif
#ifdef SQLITE_ENABLE_FTS3_PARENTHESIS
  "ENABLE_FTS3_PARENTHESIS",
#endif
#ifdef SQLITE_ENABLE_FTS4
  "ENABLE_FTS4",
#endif
#ifdef SQLITE_ENABLE_FTS5
  "ENABLE_FTS5",
#endif
#ifdef SQLITE_ENABLE_MATH_FUNCTIONS
  "ENABLE_MATH_FUNCTIONS",
#endif
#ifdef SQLITE_ENABLE_RTREE
  "ENABLE_RTREE",
#endif
#ifdef SQLITE_ENABLE_UNLOCK_NOTIFY
  "ENABLE_UNLOCK_NOTIFY",
#endif
#ifdef SQLITE_OMIT_DEPRECATED
  "OMIT_DEPRECATED",
#endif
#ifdef SQLITE_OMIT_LOAD_EXTENSION
  "OMIT_LOAD_EXTENSION",
#endif
#ifdef SQLITE_OMIT_SHARED_CACHE
  "OMIT_SHARED_CACHE",
#endif
#ifdef SQLITE_SECURE_DELETE
  "SECURE_DELETE",
#endif
#if defined(SQLITE_THREADSAFE)
  "THREADSAFE=" CTIMEOPT_VAL(SQLITE_THREADSAFE),
#elif defined(THREADSAFE)
  "THREADSAFE=" CTIMEOPT_VAL(THREADSAFE),
#else
  "THREADSAFE=1",
#endif
};
"""

# `PRAGMA compile_options` of that sqlite3.c built with the RHEL defines (-O0, gcc 12).
PRAGMA_3_44_2_RHEL = """\
ATOMIC_INTRINSICS=1
COMPILER=gcc-12.2.0
DEFAULT_AUTOVACUUM
DEFAULT_CACHE_SIZE=-2000
DEFAULT_FILE_FORMAT=4
DEFAULT_JOURNAL_SIZE_LIMIT=-1
DEFAULT_MMAP_SIZE=0
DEFAULT_PAGE_SIZE=4096
DEFAULT_PCACHE_INITSZ=20
DEFAULT_RECURSIVE_TRIGGERS
DEFAULT_SECTOR_SIZE=4096
DEFAULT_SYNCHRONOUS=2
DEFAULT_WAL_AUTOCHECKPOINT=1000
DEFAULT_WAL_SYNCHRONOUS=2
DEFAULT_WORKER_THREADS=0
DISABLE_DIRSYNC
ENABLE_COLUMN_METADATA
ENABLE_DBSTAT_VTAB
ENABLE_FTS3
ENABLE_FTS3_PARENTHESIS
ENABLE_FTS4
ENABLE_FTS5
ENABLE_MATH_FUNCTIONS
ENABLE_RTREE
ENABLE_UNLOCK_NOTIFY
MALLOC_SOFT_LIMIT=1024
MAX_ATTACHED=10
MAX_COLUMN=2000
MAX_COMPOUND_SELECT=500
MAX_DEFAULT_PAGE_SIZE=8192
MAX_EXPR_DEPTH=1000
MAX_FUNCTION_ARG=127
MAX_LENGTH=1000000000
MAX_LIKE_PATTERN_LENGTH=50000
MAX_MMAP_SIZE=0x7fff0000
MAX_PAGE_COUNT=1073741823
MAX_PAGE_SIZE=65536
MAX_SQL_LENGTH=1000000000
MAX_TRIGGER_DEPTH=1000
MAX_VARIABLE_NUMBER=32766
MAX_VDBE_OP=250000000
MAX_WORKER_THREADS=8
MUTEX_PTHREADS
SECURE_DELETE
SYSTEM_MALLOC
TEMP_STORE=1
THREADSAFE=1
""".splitlines()

# Top-level entries of the two real tarballs (directories end in /).
TREE_3_44_2 = """\
INSTALL
Makefile.am
Makefile.fallback
Makefile.in
Makefile.msc
README.txt
Replace.cs
aclocal.m4
compile
config.guess
config.sub
configure
configure.ac
depcomp
install-sh
ltmain.sh
missing
shell.c
sqlite3.1
sqlite3.c
sqlite3.h
sqlite3.pc.in
sqlite3.rc
sqlite3ext.h
sqlite3rc.h
tea/
""".split()
TREE_3_52_0 = """\
Makefile.fallback
Makefile.in
Makefile.msc
README.txt
Replace.cs
VERSION
auto.def
autosetup/
configure
make.bat
shell.c
sqlite3.1
sqlite3.c
sqlite3.h
sqlite3.pc.in
sqlite3.rc
sqlite3ext.h
sqlite3rc.h
tea/
""".split()

PREFIX = "/opt/sqlite/3.44.2"


def drop_option(help_text: str, name: str) -> str:
    """The help text without `name`'s entry (its line and the continuation lines under it)."""
    out: List[str] = []
    skipping = False
    for line in help_text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith("-"):
            skipping = re.split(r"[\s\[=?]", stripped, maxsplit=1)[0] == name
        elif not line.startswith(" " * 8) or not stripped:
            skipping = False
        if not skipping:
            out.append(line)
    text = "".join(out)
    assert not re.search(re.escape(name) + r"(?![\w-])", text), f"{name} is still listed"
    return text


AUTOSETUP_3_49_0_LIKE_HELP = drop_option(
    drop_option(AUTOSETUP_3_52_0_HELP, "--disable-static-shell"), "--disable-rpath"
)
# An older autoconf tarball: no FTS4/RTREE/math switches and no static-shell switch.
AUTOCONF_OLD_HELP = drop_option(
    drop_option(
        drop_option(
            drop_option(AUTOCONF_3_44_2_HELP, "--enable-fts4"),
            "--enable-rtree",
        ),
        "--enable-math",
    ),
    "--enable-static-shell",
)


def listed(option: str, help_text: str) -> bool:
    """Whether `configure --help` shows the option itself or its enable/disable counterpart,
    judged on the raw text (independently of build.parse_configure_help)."""
    name = option.split("=", 1)[0]
    names = [name]
    for a, b in (("--disable-", "--enable-"), ("--enable-", "--disable-")):
        if name.startswith(a):
            names.append(b + name[len(a) :])
    return any(re.search(r"(?m)^\s+" + re.escape(n) + r"(?![\w-])", help_text) for n in names)


def config_for(
    era: str, help_text: str, version: Tuple[int, ...], env_cflags: str = ""
) -> build.BuildConfig:
    return build.make_build_config(
        era=era,
        prefix=PREFIX,
        version=version,
        supported=build.parse_configure_help(help_text),
        env_cflags=env_cflags,
    )


ERAS = [
    pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 44, 2), id="autoconf-3.44.2"),
    pytest.param(build.AUTOCONF, AUTOCONF_OLD_HELP, (3, 26, 0), id="autoconf-old"),
    pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 37, 2), id="autoconf-3.37.2"),
    pytest.param(build.AUTOSETUP, AUTOSETUP_3_49_0_LIKE_HELP, (3, 49, 0), id="autosetup-3.49.0"),
    pytest.param(build.AUTOSETUP, AUTOSETUP_3_52_0_HELP, (3, 52, 0), id="autosetup-3.52.0"),
]


# --- parsing the captured help ------------------------------------------------------------------


def test_parse_configure_help_reads_the_autoconf_options() -> None:
    supported = build.parse_configure_help(AUTOCONF_3_44_2_HELP)
    for name in (
        "--prefix",
        "--enable-shared",
        "--enable-static",
        "--enable-threadsafe",
        "--enable-dynamic-extensions",
        "--enable-fts4",
        "--enable-fts5",
        "--enable-rtree",
        "--enable-math",
        "--enable-static-shell",
    ):
        assert name in supported, name
    # autoconf lists the non-default spelling only; the flags derive the other one.
    assert "--disable-static" not in supported
    assert "--soname" not in supported
    assert "--enable-shared[" not in " ".join(supported)


def test_parse_configure_help_reads_the_autosetup_options() -> None:
    supported = build.parse_configure_help(AUTOSETUP_3_52_0_HELP)
    for name in (
        "--prefix",
        "--disable-static",
        "--soname",
        "--fts4",
        "--fts5",
        "--rtree",
        "--disable-rpath",
        "--disable-static-shell",
    ):
        assert name in supported, name
    older = build.parse_configure_help(AUTOSETUP_3_49_0_LIKE_HELP)
    assert supported - older == {"--disable-rpath", "--disable-static-shell"}


# --- the flags of each era ------------------------------------------------------------------------


def test_autoconf_3_44_2_flags() -> None:
    config = config_for(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 44, 2))
    args = list(config.configure_args)
    assert config.era == build.AUTOCONF
    assert args[0] == f"--prefix={PREFIX}"
    assert config.configure_argv() == ["./configure", *args]
    for option in (
        "--disable-static",
        "--enable-shared",
        "--enable-threadsafe",
        "--enable-dynamic-extensions",
        "--enable-fts4",
        "--enable-fts5",
        "--enable-rtree",
        "--disable-static-shell",
    ):
        assert option in args, option
    # Nothing of the other era leaks in.
    assert not [a for a in args if a.startswith("--soname") or a in ("--fts4", "--rtree")]
    assert config.skipped_options == ()


def test_autoconf_flags_skip_what_an_older_configure_does_not_list() -> None:
    config = config_for(build.AUTOCONF, AUTOCONF_OLD_HELP, (3, 26, 0))
    for option in ("--enable-fts4", "--enable-rtree", "--enable-math", "--disable-static-shell"):
        assert option not in config.configure_args
    assert "--enable-fts4" in config.skipped_options
    assert "--disable-static-shell" in config.skipped_options
    assert "--disable-static" in config.configure_args
    assert "--enable-fts5" in config.configure_args
    # A skipped switch must not lose the feature: the -D flag still asks for it.
    assert "-DSQLITE_ENABLE_FTS4" in config.cflags
    assert "-DSQLITE_ENABLE_RTREE" in config.cflags


def test_autosetup_3_52_0_flags() -> None:
    config = config_for(build.AUTOSETUP, AUTOSETUP_3_52_0_HELP, (3, 52, 0))
    args = list(config.configure_args)
    assert args[0] == f"--prefix={PREFIX}"
    for option in (
        "--disable-static",
        "--soname=legacy",
        "--enable-threadsafe",
        "--enable-load-extension",
        "--fts4",
        "--fts5",
        "--rtree",
        "--disable-rpath",
        "--disable-static-shell",
    ):
        assert option in args, option
    assert not [a for a in args if a.startswith("--enable-fts") or a == "--enable-shared"]
    assert config.skipped_options == ()


def test_autosetup_3_49_0_gets_no_rpath_or_static_shell_switch() -> None:
    config = config_for(build.AUTOSETUP, AUTOSETUP_3_49_0_LIKE_HELP, (3, 49, 0))
    assert "--disable-rpath" not in config.configure_args
    assert "--disable-static-shell" not in config.configure_args
    assert set(config.skipped_options) >= {"--disable-rpath", "--disable-static-shell"}
    assert "--soname=legacy" in config.configure_args
    assert "--disable-static" in config.configure_args


@pytest.mark.parametrize("era, help_text, version", ERAS)
def test_every_switch_passed_is_listed_by_that_configure(
    era: str, help_text: str, version: Tuple[int, ...]
) -> None:
    """configure (autosetup especially) stops on an unknown switch, so each one passed must be
    in that tarball's help, itself or as its enable/disable counterpart."""
    config = config_for(era, help_text, version)
    for option in config.configure_args[1:]:
        assert listed(option, help_text), f"{option} is not in this configure --help"
    assert len(set(config.configure_args)) == len(config.configure_args)


@pytest.mark.parametrize("era, help_text, version", ERAS)
def test_static_library_is_always_disabled_and_nothing_cpython_needs_is_omitted(
    era: str, help_text: str, version: Tuple[int, ...]
) -> None:
    config = config_for(era, help_text, version)
    assert "--disable-static" in config.configure_args
    assert "--enable-static" not in config.configure_args
    everything = " ".join(config.configure_args) + " " + config.cflags
    for bad in ("OMIT_DEPRECATED", "OMIT_SHARED_CACHE", "OMIT_LOAD_EXTENSION", "THREADSAFE=0"):
        assert bad not in everything
    for bad in ("--disable-load-extension", "--disable-threadsafe", "--disable-dynamic-extensions"):
        assert bad not in config.configure_args
    assert build.forbidden_present(list(config.expected_options)) == []
    assert "THREADSAFE=1" in config.expected_options


@pytest.mark.parametrize(
    "help_text, missing",
    [
        pytest.param(drop_option(AUTOSETUP_3_52_0_HELP, "--soname"), "--soname", id="no-soname"),
        pytest.param(
            drop_option(AUTOSETUP_3_52_0_HELP, "--disable-static"),
            "--disable-static",
            id="no-disable-static",
        ),
    ],
)
def test_autosetup_without_a_must_have_switch_is_refused(help_text: str, missing: str) -> None:
    with pytest.raises(DownloadError) as caught:
        config_for(build.AUTOSETUP, help_text, (3, 52, 0))
    assert missing in caught.value.message
    assert caught.value.exit_code == EXIT_DOWNLOAD


@pytest.mark.parametrize("era, help_text, version", ERAS)
def test_each_define_is_expected_in_the_compile_options(
    era: str, help_text: str, version: Tuple[int, ...]
) -> None:
    config = config_for(era, help_text, version)
    defines = re.findall(r"-DSQLITE_([A-Z0-9_]+)(?:=\S*)?", config.cflags)
    assert defines, config.cflags
    for name in defines:
        assert name in config.expected_options, name
    for name in ("ENABLE_COLUMN_METADATA", "ENABLE_FTS5", "ENABLE_RTREE", "SECURE_DELETE"):
        assert name in defines


@pytest.mark.parametrize("era, help_text, version", ERAS)
def test_env_cflags_come_last(era: str, help_text: str, version: Tuple[int, ...]) -> None:
    plain = config_for(era, help_text, version)
    mine = config_for(era, help_text, version, env_cflags="  -O0 -g  ")
    assert mine.cflags.split()[-2:] == ["-O0", "-g"]
    assert mine.cflags == f"{plain.cflags} -O0 -g"
    assert plain.cflags.split()[0] == "-O2"  # so the caller's -O0 overrides the default
    assert config_for(era, help_text, version, env_cflags=" \t").cflags == plain.cflags
    assert mine.configure_args == plain.configure_args
    assert mine.fingerprint()["cflags"] == mine.cflags


@pytest.mark.parametrize(
    "era, help_text, version, json1",
    [
        pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 24, 0), True, id="3.24.0"),
        pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 37, 2), True, id="3.37.2"),
        pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 38, 0), False, id="3.38.0"),
        pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 44, 2), False, id="3.44.2"),
        pytest.param(build.AUTOSETUP, AUTOSETUP_3_52_0_HELP, (3, 52, 0), False, id="3.52.0"),
    ],
)
def test_json1_define_only_before_3_38(
    era: str, help_text: str, version: Tuple[int, ...], json1: bool
) -> None:
    config = config_for(era, help_text, version)
    assert ("-DSQLITE_ENABLE_JSON1" in config.cflags) is json1
    assert ("ENABLE_JSON1" in config.expected_options) is json1


# --- era prediction and detection -----------------------------------------------------------------


@pytest.mark.parametrize(
    "version, era",
    [
        ((3, 24, 0), build.AUTOCONF),
        ((3, 44, 2), build.AUTOCONF),
        ((3, 48, 0), build.AUTOCONF),
        ((3, 48, 0, 1), build.AUTOCONF),
        ((3, 49, 0), build.AUTOSETUP),
        ((3, 49, 1), build.AUTOSETUP),
        ((3, 52, 0), build.AUTOSETUP),
        ((9999,), build.AUTOSETUP),  # "latest", unresolved in --dry-run
    ],
)
def test_predict_era_boundary(version: Tuple[int, ...], era: str) -> None:
    assert build.predict_era(version) == era


@pytest.mark.parametrize(
    "era, help_text, version",
    [
        pytest.param(build.AUTOCONF, AUTOCONF_3_44_2_HELP, (3, 44, 2), id="3.44.2"),
        pytest.param(build.AUTOSETUP, AUTOSETUP_3_49_0_LIKE_HELP, (3, 49, 0), id="3.49.0"),
        pytest.param(build.AUTOSETUP, AUTOSETUP_3_52_0_HELP, (3, 52, 0), id="3.52.0"),
    ],
)
def test_dry_run_prediction_matches_the_real_configure(
    era: str, help_text: str, version: Tuple[int, ...]
) -> None:
    """--dry-run shows flags predicted from the version; they must be the ones that run."""
    predicted = build.make_build_config(
        era=build.predict_era(version),
        prefix=PREFIX,
        version=version,
        supported=build.predicted_supported(build.predict_era(version), version),
        predicted=True,
    )
    real = config_for(era, help_text, version)
    assert predicted.era == real.era
    assert predicted.configure_args == real.configure_args
    assert predicted.cflags == real.cflags
    assert predicted.predicted and not real.predicted


def make_tree(root: Path, entries: List[str]) -> Path:
    root.mkdir()
    for entry in entries:
        if entry.endswith("/"):
            (root / entry).mkdir()
        else:
            (root / entry).write_text("x\n")
    return root


@pytest.mark.parametrize(
    "entries, era",
    [
        pytest.param(TREE_3_44_2, build.AUTOCONF, id="real-3.44.2-layout"),
        pytest.param(TREE_3_52_0, build.AUTOSETUP, id="real-3.52.0-layout"),
        pytest.param(["configure", "configure.ac", "sqlite3.c"], build.AUTOCONF, id="configure.ac"),
        pytest.param(["configure", "ltmain.sh", "sqlite3.c"], build.AUTOCONF, id="ltmain.sh"),
        pytest.param(["configure", "auto.def", "sqlite3.c"], build.AUTOSETUP, id="auto.def"),
        pytest.param(["configure", "autosetup/", "sqlite3.c"], build.AUTOSETUP, id="autosetup"),
    ],
)
def test_detect_era_on_fake_trees(tmp_path: Path, entries: List[str], era: str) -> None:
    assert build.detect_era(make_tree(tmp_path / "src", entries)) == era


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(["sqlite3.c", "sqlite3.h", "sqlite3ext.h", "shell.c"], id="amalgamation"),
        pytest.param(["configure", "sqlite3.c"], id="bare-configure"),
        pytest.param(["configure.ac", "ltmain.sh"], id="no-configure-script"),
        pytest.param(["configure/", "configure.ac/", "autosetup"], id="wrong-kinds"),
        pytest.param([], id="empty"),
    ],
)
def test_detect_era_refuses_other_trees(tmp_path: Path, entries: List[str]) -> None:
    tree = make_tree(tmp_path / "src", entries)
    with pytest.raises(DownloadError) as caught:
        build.detect_era(tree)
    assert str(tree) in caught.value.message
    assert caught.value.exit_code == EXIT_DOWNLOAD


# --- compile options ------------------------------------------------------------------------------


def test_known_compile_options_reads_the_table() -> None:
    known = build.known_compile_options(COMPILE_OPTION_TABLE_3_44_2)
    table_entries = set(re.findall(r'"([A-Z0-9_]+)[=",]', COMPILE_OPTION_TABLE_3_44_2))
    assert known == table_entries
    assert {"ENABLE_FTS5", "SECURE_DELETE", "THREADSAFE", "COMPILER", "OMIT_SHARED_CACHE"} <= known
    assert not [name for name in known if name.startswith("SQLITE_")]
    # JSON1 is built in from 3.38: 3.44.2 cannot report ENABLE_JSON1 at all.
    assert "ENABLE_JSON1" not in known
    assert build.known_compile_options("int main(void) { return 0; }\n") == frozenset()


def expected_for(version: Tuple[int, ...]) -> Tuple[str, ...]:
    return config_for(build.AUTOCONF, AUTOCONF_3_44_2_HELP, version).expected_options


def test_the_captured_rhel_build_has_every_expected_option() -> None:
    known: FrozenSet[str] = build.known_compile_options(COMPILE_OPTION_TABLE_3_44_2)
    assert build.missing_options(expected_for((3, 44, 2)), PRAGMA_3_44_2_RHEL, known) == []
    assert build.missing_options(expected_for((3, 44, 2)), PRAGMA_3_44_2_RHEL) == []
    assert build.forbidden_present(PRAGMA_3_44_2_RHEL) == []


def test_missing_options_ignores_names_the_release_cannot_report() -> None:
    known = build.known_compile_options(COMPILE_OPTION_TABLE_3_44_2)
    expected = list(expected_for((3, 37, 2)))
    assert "ENABLE_JSON1" in expected
    assert build.missing_options(expected, PRAGMA_3_44_2_RHEL) == ["ENABLE_JSON1"]
    assert build.missing_options(expected, PRAGMA_3_44_2_RHEL, known) == []


@pytest.mark.parametrize(
    "remove, add, missing",
    [
        pytest.param("ENABLE_FTS5", None, ["ENABLE_FTS5"], id="no-fts5"),
        pytest.param("SECURE_DELETE", None, ["SECURE_DELETE"], id="no-secure-delete"),
        pytest.param("THREADSAFE=1", "THREADSAFE=0", ["THREADSAFE=1"], id="single-thread"),
        pytest.param("THREADSAFE=1", "THREADSAFE=2", ["THREADSAFE=1"], id="multi-thread"),
    ],
)
def test_missing_options_finds_what_the_build_lost(
    remove: str, add: str, missing: List[str]
) -> None:
    known = build.known_compile_options(COMPILE_OPTION_TABLE_3_44_2)
    actual = [o for o in PRAGMA_3_44_2_RHEL if o != remove] + ([add] if add else [])
    assert build.missing_options(expected_for((3, 44, 2)), actual, known) == missing


def test_forbidden_present_names_the_omitted_apis() -> None:
    actual = [*PRAGMA_3_44_2_RHEL, "OMIT_DEPRECATED", "OMIT_SHARED_CACHE", "OMIT_LOAD_EXTENSION=1"]
    assert build.forbidden_present(actual) == [
        "OMIT_DEPRECATED",
        "OMIT_SHARED_CACHE",
        "OMIT_LOAD_EXTENSION=1",
    ]
    assert build.forbidden_present(["OMIT_PROGRESS_CALLBACK", "ENABLE_FTS5"]) == []
