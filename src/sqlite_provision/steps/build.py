"""From the tarball to a staged install: fetch, compiler, extract, the configure probe,
configure, make, stage.

The plan skips them, with its reason, when resolution found this exact build installed and
intact. Paths and command lines are decided by the plan (the build directory belongs to the run
lock, the staging directory sits beside the prefix, configure's options are predicted from the
release's era and checked against the tree by ProbeConfigure before anything is built), so
--dry-run shows the very commands that run.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from sqlite_provision.config import DEFAULT_FETCH_POLICY, FetchPolicy
from sqlite_provision.digests import HASH_ALGORITHMS, Checksum, file_digest, matches, mismatch
from sqlite_provision.errors import CommandFailed, HostError, UsageError, VerifyError
from sqlite_provision.files import NotRegularFile, make_parents, read_regular, remove_empty
from sqlite_provision.host.build_user import BuildUser, hand_over, take_back
from sqlite_provision.host.pythons import library_argv, read_library
from sqlite_provision.recipe import flags
from sqlite_provision.recipe.features import Selected
from sqlite_provision.steps.base import Argv, RunState, Step
from sqlite_provision.steps.packages import install_argv, install_packages
from sqlite_provision.steps.takeover import take_over
from sqlite_provision.store.manifest import Manifest, scan_tree, write_manifest
from sqlite_provision.versions import Version

CONFIGURE_HELP = ["./configure", "--help"]
DESTDIR_NAME = "destdir"  # inside the build directory: where the build user's make install writes
LOCAL_MISMATCH_HINT = (
    "check the file's origin, or pass --sha3-256/--sha256 if you built it yourself"
)


@dataclass(frozen=True)
class Fetch(Step):
    filename: str
    url: Optional[str]  # None for a local --tarball
    local: Optional[Path]
    checksum: Optional[Checksum]  # None only for `latest` in a dry run (the page has it)
    cache_dir: Path
    policy: FetchPolicy = DEFAULT_FETCH_POLICY  # attempts, timeouts, backoff, the CA bundle
    name = "fetch"

    def describe(self) -> str:
        checksum = self.checksum
        check = f"{checksum.label} {checksum.hexdigest}" if checksum else "its page's hash"
        if self.local is not None:
            return f"check {self.local} against {check}"
        return f"download {self.url} into {self.cache_dir} and check {check}"

    def run(self, state: RunState) -> str:
        from sqlite_provision.source import fetch

        checksum = self.checksum
        assert checksum is not None  # noqa: S101 - resolution never runs an unresolved source
        if self.local is not None:
            got = file_digest(self.local, checksum.algorithm)
            if not matches(got, checksum):
                raise mismatch(self.local.name, checksum, got, LOCAL_MISMATCH_HINT)
            state.tarball = self.local
            return f"{self.local} verified ({checksum.label})"
        assert self.url is not None  # noqa: S101 - a source is a file or a URL
        try:
            result = fetch.fetch_to_cache(
                self.url,
                self.cache_dir,
                self.filename,
                checksum,
                log=state.runner.log.write,
                progress=lambda done, total, finished: state.progress.download(
                    self.filename, done, total, finished
                ),
                policy=self.policy,
            )
        except fetch.RefusedRequest as exc:  # a URL or name no download can be made from
            raise UsageError(exc.message, hint=exc.hint) from None
        state.tarball = result.path
        if not result.downloaded:
            return f"cached {result.path} verified ({checksum.label}), no download"
        return f"{result.bytes} bytes from {self.url} verified ({checksum.label})"


@dataclass(frozen=True)
class InstallCompiler(Step):
    package_manager: str
    missing: Tuple[str, ...]
    name = "install-compiler"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [self.argv()] if self.missing else []

    def argv(self) -> Argv:
        return install_argv(self.package_manager, ("gcc", "make"))

    def describe(self) -> str:
        if not self.missing:
            return "gcc and make are present"
        return "install {} with {}".format(" and ".join(self.missing), self.package_manager)

    def run(self, state: RunState) -> str:
        hint = "fix the package repositories, or install gcc and make yourself and re-run"
        missing_hint = "check that your repositories provide gcc and make (on RHEL: the AppStream/BaseOS repos)"
        install_packages(
            state, self.package_manager, self.argv(), ("gcc", "make"), hint, missing_hint
        )
        return f"installed gcc and make with {self.package_manager}"


def as_builder(user: Optional[BuildUser], argv: Argv) -> Argv:
    """`argv` as the build runs it: as the build user when the tool is root, else as is."""
    return user.wrap(argv) if user is not None else list(argv)


def as_who(user: Optional[BuildUser]) -> str:
    """ " as nobody" in a step's description when the build user runs it, else ""."""
    return f" as {user.name}" if user is not None else ""


def fresh_dir(path: Path, owners: Sequence[int] = ()) -> None:
    """Create `path` (mode 0700) for this run, removing what a dead run of the same lock left
    there. Only a real directory of this user (or of `owners`, the build user's) is removed:
    never a link, never another's."""
    if os.path.islink(str(path)) or (path.exists() and not path.is_dir()):
        raise HostError(
            f"{path} exists and is not a directory",
            hint="remove it (it is not this tool's), or set TMPDIR to another directory",
        )
    if path.is_dir():
        if path.stat().st_uid not in (os.geteuid(), *owners):
            raise HostError(
                f"{path} exists and belongs to uid {path.stat().st_uid}",
                hint="remove it, or set TMPDIR to another directory",
            )
        shutil.rmtree(str(path))
    path.mkdir(mode=0o700)


@dataclass(frozen=True)
class Extract(Step):
    filename: str
    build_dir: Path
    build_user: Optional[BuildUser] = None
    name = "extract"

    def describe(self) -> str:
        owner = f", then hand it to {self.build_user.name}" if self.build_user else ""
        return f"unpack {self.filename} into {self.build_dir} (members checked first){owner}"

    def run(self, state: RunState) -> str:
        from sqlite_provision.source.archive import extract

        assert state.tarball is not None  # noqa: S101 - Fetch ran
        try:
            user = self.build_user
            fresh_dir(self.build_dir, [user.uid] if user else [])
            state.work_dirs.append(self.build_dir)
            state.srcdir = extract(state.tarball, self.build_dir)
            # The TMPDIR of configure and the compiler (build_env): their temporary files go
            # with the build directory whatever happens, an interrupt included.
            (self.build_dir / "tmp").mkdir(mode=0o700)
            state.shell_overlay = write_shell_overlay(state.srcdir)
            if user is not None:
                hand_over(self.build_dir, user)
        except OSError as exc:  # a full or read-only TMPDIR: say which directory
            raise HostError(
                f"cannot unpack {self.filename} into {self.build_dir}: {exc.strerror or exc}",
                hint=f"free space in {self.build_dir.parent} (df -h), or set TMPDIR to a "
                "directory with room on an exec mount, e.g. TMPDIR=/var/tmp",
            ) from exc
        return f"unpacked into {state.srcdir}"


def write_shell_overlay(srcdir: Path) -> bool:
    """The shell.c overlay make reads in the autosetup era, written now, before the tree is
    handed over (root writes nothing into the build user's tree): the overlay where the
    Makefile's template has the rule it replaces, an overlay that adds nothing elsewhere, so
    that make's command line is the planned one either way. True where it fits."""
    fits = flags.shell_overlay_fits(read_built_file(srcdir / "Makefile.in"))
    (srcdir / flags.SHELL_OVERLAY_NAME).write_text(flags.shell_overlay_text(fits))
    return fits


def read_built_file(path: Path) -> str:
    """A file of the build user's tree, read by root: never through a link, never a fifo (which
    would block), "" when absent."""
    hint = "the build left something unexpected in its tree; read the log"
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return ""
    except NotRegularFile:
        raise VerifyError(f"{path} of the build is not a regular file", hint=hint) from None
    except OSError as exc:
        raise VerifyError(
            f"cannot read {path} of the build: {exc.strerror or exc}", hint=hint
        ) from exc
    return data.decode("utf-8", errors="replace")


def run_in_tree(
    state: RunState,
    argv: Argv,
    build_dir: Path,
    user: Optional[BuildUser],
    what: str,
    hint: str,
    **overrides: str,
) -> None:
    """Run a command of the build in the unpacked tree, in the build's environment (build_env):
    configure, make, make install."""
    assert state.srcdir is not None  # noqa: S101 - Extract ran
    env = build_env(state.runner.environment, build_dir, user, **overrides)
    state.runner.run(argv, cwd=state.srcdir, env=env, what=what, hint=hint)


def build_env(
    base: Mapping[str, str], build_dir: Path, user: Optional[BuildUser], **overrides: str
) -> Dict[str, str]:
    """The environment of configure and make, from the tool's (`base`): TMPDIR inside the build
    directory, so that the temporary files of a configure or compiler that is interrupted are
    removed with it; as the build user, HOME there too (root's is not the build's)."""
    env = dict(base, **overrides)
    env["TMPDIR"] = str(build_dir / "tmp")
    if user is not None:
        env["HOME"] = str(build_dir)
        env["USER"] = env["LOGNAME"] = user.name
    return env


@dataclass(frozen=True)
class ProbeConfigure(Step):
    """Run this tree's `configure --help` and check that the configure it calls for is the
    planned one (`config`, predicted from the release's era): a tree that differs stops the run
    here, before anything is built, rather than run another command than --dry-run showed."""

    config: flags.BuildConfig  # the planned configure
    version: Version
    features: Tuple[Selected, ...]
    env_cflags: str
    build_dir: Path
    build_user: Optional[BuildUser] = None
    name = "probe-configure"

    def describe(self) -> str:
        return (
            f"read this tree's configure options{as_who(self.build_user)}; "
            "stop unless it takes the planned ones"
        )

    def commands(self) -> List[Argv]:
        return [as_builder(self.build_user, CONFIGURE_HELP)]

    def run(self, state: RunState) -> str:
        assert state.srcdir is not None  # noqa: S101 - Extract ran
        era = flags.detect_era(state.srcdir)
        [argv] = self.commands()
        helped = state.runner.capture(
            argv,
            cwd=state.srcdir,
            env=build_env(state.runner.environment, self.build_dir, self.build_user),
        )
        if helped.returncode != 0:
            raise CommandFailed(
                f"`configure --help` failed with exit status {helped.returncode}",
                hint="read the log; a missing compiler piece (cc) or a noexec TMPDIR is the usual "
                "cause",
                argv=argv,
                returncode=helped.returncode,
                tail=state.runner.log.tail(),
            )
        found = flags.make_build_config(
            era=era,
            prefix=self.config.prefix,
            version=self.version,
            supported=flags.parse_configure_help(helped.stdout),
            env_cflags=self.env_cflags,
            features=self.features,
        )
        if found.configure_argv() != self.config.configure_argv():
            raise CommandFailed(
                "this tree's configure differs from the plan: "
                + flags.config_differences(self.config, found),
                hint="the release's build system is not the one sqlite-provision knows for its "
                "era; use a release from `sqlite-provision versions`, or report it with the log",
                argv=argv,
                returncode=0,
            )
        return f"{era} tree: its configure takes the planned options"


@dataclass(frozen=True)
class Configure(Step):
    """Configure with the planned options, which ProbeConfigure checked this tree takes."""

    config: flags.BuildConfig
    build_dir: Path
    build_user: Optional[BuildUser] = None
    name = "configure"

    def describe(self) -> str:
        return (
            f"configure the {self.config.era} tree{as_who(self.build_user)}: "
            f"CFLAGS={self.config.cflags!r}"
        )

    def commands(self) -> List[Argv]:
        return [as_builder(self.build_user, self.config.configure_argv())]

    def run(self, state: RunState) -> str:
        [argv] = self.commands()
        run_in_tree(
            state,
            argv,
            self.build_dir,
            self.build_user,
            what="configure",
            hint="read the log; a missing compiler piece (as, ld) or a bad CFLAGS is the usual cause",
            CFLAGS=self.config.cflags,
        )
        return "{} era: {}".format(self.config.era, " ".join(self.config.configure_args[1:]))


@dataclass(frozen=True)
class Make(Step):
    jobs: int
    era: str
    build_dir: Path
    build_user: Optional[BuildUser] = None
    name = "make"

    @property
    def overlay(self) -> bool:
        """The autosetup era's make reads the shell.c overlay Extract wrote (it adds nothing
        where the Makefile does not fit it)."""
        return self.era == flags.AUTOSETUP

    def describe(self) -> str:
        who = as_who(self.build_user)
        if self.overlay:
            return (
                f"compile{who} with {self.jobs} parallel jobs, shell.c beside sqlite3.c "
                f"({flags.SHELL_OVERLAY_NAME}, where the Makefile fits it)"
            )
        return f"compile{who} with {self.jobs} parallel jobs"

    def commands(self) -> List[Argv]:
        return [as_builder(self.build_user, flags.make_argv(self.jobs, overlay=self.overlay))]

    def run(self, state: RunState) -> str:
        [argv] = self.commands()
        run_in_tree(
            state,
            argv,
            self.build_dir,
            self.build_user,
            what="make",
            hint="read the log's last lines above; a full disk or a bad CFLAGS is the usual cause",
        )
        return f"built with make -j{self.jobs}" + (
            ", shell.c compiled in parallel" if self.overlay and state.shell_overlay else ""
        )


def staged_prefix(staging: Path, prefix: Path) -> Path:
    """Where `make install DESTDIR=staging` puts the tree of `prefix`."""
    return staging / str(prefix).lstrip("/")


def staged_library(staging: Path, prefix: Path) -> Path:
    return staged_prefix(staging, prefix) / "lib" / "libsqlite3.so.0"


def new_staging(state: RunState, staging: Path, beside_prefix: bool) -> None:
    """The staging directory: beside the prefix, on its filesystem, so that the install is one
    rename (its missing parents are created, and removed by the undo); or, for `build`, inside
    the build directory."""
    if beside_prefix:
        created = make_parents(staging.parent)
        state.undo.append((f"remove created {staging.parent}", lambda: remove_empty(created)))
    fresh_dir(staging)
    state.work_dirs.append(staging)


@dataclass(frozen=True)
class Stage(Step):
    """From `make install` to a staged tree with its manifest, one job per helper: install into
    the build directory as the build user, copy the tree out as root, check the library, write
    the manifest."""

    prefix: Path
    staging: Path
    version: str
    request: Dict[str, object]
    config: flags.BuildConfig  # the configure that ran: the manifest records it
    build_dir: Path
    beside_prefix: bool = True  # False for `build`: nothing is written near the prefix
    build_user: Optional[BuildUser] = None
    name = "stage"

    @property
    def destdir(self) -> Path:
        return self.build_dir / DESTDIR_NAME

    def describe(self) -> str:
        where = f"beside {self.prefix}" if self.beside_prefix else "in the build directory"
        who = as_who(self.build_user)
        owned = " as root:root" if self.build_user else ""
        return (
            f"make install{who} into the build directory, copy the tree into a staging "
            f"directory {where}{owned} with nothing writable by group or others, check the "
            "library's version and compile options, write the manifest"
        )

    def commands(self) -> List[Argv]:
        return [
            as_builder(self.build_user, flags.install_argv(str(self.destdir))),
            library_argv(staged_library(self.staging, self.prefix)),
        ]

    def run(self, state: RunState) -> str:
        assert state.srcdir is not None  # noqa: S101 - Extract ran
        built = self.make_install(state)
        staged = self.copy_out(state, built)
        library = staged_library(self.staging, self.prefix)
        options = self.check_library(state, library, state.srcdir)
        self.write_manifest(staged, options, state.tarball)
        state.staged = staged
        return f"staged in {self.staging}; library {library.name} has every requested option"

    def make_install(self, state: RunState) -> Path:
        """`make install` into the build directory, as the build user; then root takes the
        build directory back. Returns the installed tree."""
        user = self.build_user
        run_in_tree(
            state,
            self.commands()[0],
            self.build_dir,
            user,
            what="make install",
            hint=f"check free space under {self.build_dir.parent}",
        )
        if user is not None:
            take_back(self.build_dir)
        built = staged_prefix(self.destdir, self.prefix)
        if not built.is_dir():
            raise VerifyError(
                f"make install wrote nothing under {built}",
                hint="read the log; this tarball's make install ignores DESTDIR",
            )
        return built

    def copy_out(self, state: RunState, built: Path) -> Path:
        """Copy the installed tree into a new staging directory, as root's own. Returns the
        staged prefix."""
        new_staging(state, self.staging, self.beside_prefix)
        staged = staged_prefix(self.staging, self.prefix)
        staged.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            take_over(self.build_dir, built, staged)
        except OSError as exc:
            raise HostError(
                f"cannot copy the built tree into {self.staging}: {exc.strerror or exc}",
                hint=f"check free space under {self.staging.parent} (df -h)",
            ) from exc
        return staged

    def check_library(self, state: RunState, library: Path, srcdir: Path) -> List[str]:
        """The staged library exists, is this release, has every planned compile option and
        none of the forbidden ones. Returns its compile options."""
        if not library.exists():
            raise VerifyError(
                "the build installed no lib/libsqlite3.so.0, the name Python's _sqlite3 loads",
                hint="this tarball's configure may lack --soname=legacy; use another release",
            )
        try:
            version, options = read_library(state.runner, library)
        except RuntimeError as exc:
            raise VerifyError(str(exc), hint="read the log; the build is broken") from exc
        if version != self.version:
            raise VerifyError(
                f"the built library reports SQLite {version}, expected {self.version}",
                hint="the tarball does not hold the release its name says",
            )
        known = flags.known_compile_options(read_built_file(srcdir / "sqlite3.c"))
        missing = flags.missing_options(self.config.expected_options, options, known)
        forbidden = flags.forbidden_present(options)
        if missing or forbidden:
            raise VerifyError(
                "the built library's compile options are wrong: missing {}; forbidden {}".format(
                    ", ".join(missing) or "none", ", ".join(forbidden) or "none"
                ),
                hint="remove conflicting -D flags from CFLAGS (configure ignores some mistakes)",
            )
        return options

    def write_manifest(self, staged: Path, options: List[str], tarball: Optional[Path]) -> None:
        """The manifest, last into the staged tree: a half tree is never taken for an install."""
        build = dict(
            self.config.fingerprint(), compile_options=options, source_hashes=source_hashes(tarball)
        )
        manifest = Manifest(self.version, dict(self.request), build, scan_tree(staged))
        write_manifest(staged, manifest)


def source_hashes(tarball: Optional[Path]) -> List[str]:
    if tarball is None:
        return []
    return [f"{name}:{file_digest(tarball, name)}" for name in sorted(HASH_ALGORITHMS)]
