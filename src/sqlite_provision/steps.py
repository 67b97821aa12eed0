"""The steps of an install. Each is a small frozen dataclass: `describe()` and `commands()` for
--dry-run, `is_satisfied(ctx)` to skip with a reason (what makes re-runs idempotent), and
`run(ctx)`, which registers how to undo whatever it changed on the host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from sqlite_provision import build
from sqlite_provision.errors import CommandFailed, HostError, VerifyError
from sqlite_provision.facts import Facts
from sqlite_provision.features import Selected
from sqlite_provision.manifest import (
    Manifest,
    manifest_problems,
    read_manifest,
    scan_tree,
    write_manifest,
)
from sqlite_provision.options import Layout, Options
from sqlite_provision.runner import Log, Runner
from sqlite_provision.source import Source
from sqlite_provision.verify import ProbeResult, read_library

Argv = List[str]


@dataclass
class Context:
    """What a run carries from step to step. Created by the executor, never by --dry-run."""

    options: Options
    facts: Facts
    source: Source
    layout: Layout
    pythons: Tuple[str, ...]
    jobs: int
    request: dict  # type: ignore[type-arg]
    runner: Runner
    log: Log
    undo: List[Tuple[str, Callable[[], None]]] = field(default_factory=list)
    cleanup: List[Callable[[], None]] = field(default_factory=list)
    work_dirs: List[Path] = field(default_factory=list)  # build and staging dirs (--keep-failed)
    tarball: Optional[Path] = None
    srcdir: Optional[Path] = None
    config: Optional[build.BuildConfig] = None
    staged_prefix: Optional[Path] = None
    verified: List[ProbeResult] = field(default_factory=list)
    changed: bool = False  # set by the executor once a step that changes the host has run
    warnings: List[str] = field(default_factory=list)
    _installed: Optional[Tuple[Optional[str]]] = None

    def installed_reason(self) -> Optional[str]:
        """Why no build is needed: this exact build is in the prefix and its files are intact.
        Every build step asks; the files are hashed once per run (the lock keeps other runs
        out, and only the Install step, which asks first, changes the prefix)."""
        if self.options.force:
            return None
        if self._installed is None:
            self._installed = (installed_reason(self.layout, self.request),)
        return self._installed[0]


def installed_reason(layout: Layout, request: dict) -> Optional[str]:  # type: ignore[type-arg]
    manifest = read_manifest(layout.prefix)
    if manifest is None or not same_request(manifest, request):
        return None
    if manifest_problems(layout.prefix, manifest):
        return None
    return f"SQLite {manifest.version} already installed in {layout.prefix} (manifest verified)"


def same_request(manifest: Manifest, request: dict) -> bool:  # type: ignore[type-arg]
    """The manifest's build is the one requested. The same tarball may be named by another hash
    (a pinned version has the catalog's SHA-256, `latest` the download page's SHA3-256): the
    manifest records every digest of the tarball it was built from, so either one matches."""
    if manifest.request == request:
        return True
    digests = manifest.build.get("source_hashes") or []
    return request.get("source_hash") in digests and dict(
        manifest.request, source_hash=None
    ) == dict(request, source_hash=None)


class Step:
    name = "step"
    changes_host = False  # does running it count as `changed`?

    def describe(self) -> str:
        raise NotImplementedError

    def commands(self) -> List[Argv]:
        return []

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return None

    def run(self, ctx: Context) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Fetch(Step):
    source: Source
    cache_dir: Path
    name = "fetch"

    def describe(self) -> str:
        checksum = self.source.checksum
        check = f"{checksum.label} {checksum.hexdigest}" if checksum else "its page's hash"
        if self.source.local is not None:
            return f"check {self.source.local} against {check}"
        return f"download {self.source.url} into {self.cache_dir} and check {check}"

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        from sqlite_provision import fetch

        checksum = ctx.source.checksum
        assert checksum is not None  # noqa: S101 - resolve_source guarantees it
        if ctx.source.local is not None:
            if not fetch.verify_file(ctx.source.local, checksum):
                got = fetch.file_digest(ctx.source.local, checksum.algorithm)
                raise fetch_mismatch(ctx.source.local.name, checksum.label, checksum.hexdigest, got)
            ctx.tarball = ctx.source.local
            return f"{ctx.source.local} verified ({checksum.label})"
        assert ctx.source.url is not None  # noqa: S101
        result = fetch.fetch_to_cache(
            ctx.source.url,
            self.cache_dir,
            ctx.source.filename,
            checksum,
            log=ctx.log.write,
            progress=_stderr_is_tty(),
        )
        ctx.tarball = result.path
        if not result.downloaded:
            return f"cached {result.path} verified ({checksum.label}), no download"
        return f"{result.bytes} bytes from {ctx.source.url} verified ({checksum.label})"


def fetch_mismatch(name: str, label: str, expected: str, got: str) -> Exception:
    from sqlite_provision.errors import ChecksumError

    return ChecksumError(
        f"checksum mismatch for {name}: expected {label} {expected}, got {got}",
        hint="check the file's origin, or pass --sha3-256/--sha256 if you built it yourself",
    )


def _stderr_is_tty() -> bool:
    import sys

    return sys.stderr.isatty()


@dataclass(frozen=True)
class InstallCompiler(Step):
    package_manager: str
    missing: Tuple[str, ...]
    name = "compiler"
    changes_host = True

    def commands(self) -> List[Argv]:
        return [self.argv()] if self.missing else []

    def argv(self) -> Argv:
        return [self.package_manager, "install", "-y", "gcc", "make"]

    def describe(self) -> str:
        if not self.missing:
            return "gcc and make are present"
        return "install {} with {}".format(" and ".join(self.missing), self.package_manager)

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        if not self.missing:
            return "gcc and make are present"
        reason = ctx.installed_reason()
        if reason:
            return reason
        if shutil.which("gcc") and shutil.which("make"):
            return "gcc and make are present"
        return None

    def run(self, ctx: Context) -> str:
        argv = self.argv()
        ctx.runner.run(
            argv,
            what=self.package_manager,
            hint="fix the package repositories, or install gcc and make yourself and re-run",
        )
        still = [n for n in ("gcc", "make") if not shutil.which(n)]
        if still:
            raise CommandFailed(
                "{} reported success but {} is still missing".format(
                    self.package_manager, " and ".join(still)
                ),
                hint="check that your repositories provide gcc and make "
                "(on RHEL: the AppStream/BaseOS repos)",
                argv=argv,
                returncode=0,
                tail=ctx.log.tail(),
            )
        return f"installed gcc and make with {self.package_manager}"


@dataclass(frozen=True)
class Extract(Step):
    filename: str
    name = "extract"

    def describe(self) -> str:
        return (
            f"unpack {self.filename} into a new temporary build directory (members checked first)"
        )

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        from sqlite_provision.archive import extract

        assert ctx.tarball is not None  # noqa: S101
        build_dir = Path(tempfile.mkdtemp(prefix="sqlite-provision-build-"))
        ctx.work_dirs.append(build_dir)
        try:
            ctx.srcdir = extract(ctx.tarball, build_dir)
            # The TMPDIR of configure and the compiler (build_env): their temporary files go
            # with the build directory whatever happens, an interrupt included.
            (build_dir / "tmp").mkdir(mode=0o700)
        except OSError as exc:  # a full or read-only TMPDIR: say which directory
            raise HostError(
                f"cannot unpack {ctx.tarball.name} into {build_dir}: {exc.strerror or exc}",
                hint=f"free space in {build_dir.parent} (df -h), or set TMPDIR to a directory "
                "with room on an exec mount, e.g. TMPDIR=/var/tmp",
            ) from exc
        return f"unpacked into {ctx.srcdir}"


def build_env(ctx: Context, **overrides: str) -> Dict[str, str]:
    """The environment of configure and make: TMPDIR inside the build directory, so that the
    temporary files of a configure or compiler that is interrupted are removed with it."""
    env = dict(os.environ, **overrides)
    if ctx.srcdir is not None:
        env["TMPDIR"] = str(ctx.srcdir.parent / "tmp")
    return env


@dataclass(frozen=True)
class Configure(Step):
    predicted: build.BuildConfig
    features: Tuple[Selected, ...]
    name = "configure"

    def describe(self) -> str:
        return f"configure the {self.predicted.era} tree: CFLAGS={self.predicted.cflags!r}"

    def commands(self) -> List[Argv]:
        return [self.predicted.configure_argv()]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        assert ctx.srcdir is not None  # noqa: S101
        era = build.detect_era(ctx.srcdir)
        helped = ctx.runner.capture(["./configure", "--help"], cwd=ctx.srcdir, env=build_env(ctx))
        config = build.make_build_config(
            era=era,
            prefix=str(ctx.layout.prefix),
            version=ctx.source.version_key,
            supported=build.parse_configure_help(helped.stdout),
            env_cflags=ctx.options.env_cflags,
            features=self.features,
        )
        env = build_env(ctx, CFLAGS=config.cflags)
        ctx.runner.run(
            config.configure_argv(),
            cwd=ctx.srcdir,
            env=env,
            what="configure",
            hint="read the log; a missing compiler piece (as, ld) or a bad CFLAGS is the usual cause",
        )
        ctx.config = config
        return "{} era: {}".format(era, " ".join(config.configure_args[1:]))


@dataclass(frozen=True)
class Make(Step):
    jobs: int
    era: str = build.AUTOCONF
    name = "make"

    def describe(self) -> str:
        if self.era == build.AUTOSETUP:
            return (
                f"compile with {self.jobs} parallel jobs, shell.c beside sqlite3.c "
                f"({build.SHELL_OVERLAY_NAME}, where the Makefile fits it)"
            )
        return f"compile with {self.jobs} parallel jobs"

    def commands(self) -> List[Argv]:
        return [build.make_argv(self.jobs, overlay=self.era == build.AUTOSETUP)]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        assert ctx.srcdir is not None  # noqa: S101
        makefile = ctx.srcdir / "Makefile"
        text = makefile.read_text(encoding="utf-8", errors="replace") if makefile.exists() else ""
        overlay = build.shell_overlay_fits(text)
        if overlay:
            (ctx.srcdir / build.SHELL_OVERLAY_NAME).write_text(build.SHELL_OVERLAY)
        ctx.runner.run(
            build.make_argv(ctx.jobs, overlay=overlay),
            cwd=ctx.srcdir,
            env=build_env(ctx),
            what="make",
            hint="read the log's last lines above; a full disk or a bad CFLAGS is the usual cause",
        )
        return f"built with make -j{ctx.jobs}" + (
            ", shell.c compiled in parallel" if overlay else ""
        )


@dataclass(frozen=True)
class Stage(Step):
    prefix: Path
    beside_prefix: bool = True  # False for `build`: nothing is written near the prefix
    name = "stage"

    def describe(self) -> str:
        return (
            f"make install into a staging directory beside {self.prefix}, check the library's version and "
            "compile options, write the manifest"
        )

    def commands(self) -> List[Argv]:
        return [build.install_argv(f"{self.prefix.parent}/.sqlite-provision-stage-XXXX")]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        assert ctx.srcdir is not None and ctx.config is not None  # noqa: S101
        staging = new_staging(ctx, self.beside_prefix)
        parent = staging.parent
        ctx.runner.run(
            build.install_argv(str(staging)),
            cwd=ctx.srcdir,
            env=build_env(ctx),
            what="make install",
            hint=f"check free space and permissions under {parent}",
        )
        staged = staging / str(ctx.layout.prefix).lstrip("/")
        library = staged / "lib" / "libsqlite3.so.0"
        if not library.exists():
            raise VerifyError(
                "the build installed no lib/libsqlite3.so.0, the name Python's _sqlite3 loads",
                hint="this tarball's configure may lack --soname=legacy; use another release",
            )
        options = self.check_library(ctx, library)
        write_manifest(
            staged,
            Manifest(
                version=ctx.source.version,
                request=ctx.request,
                build=dict(
                    ctx.config.fingerprint(),
                    compile_options=options,
                    source_hashes=source_hashes(ctx.tarball),
                ),
                files=scan_tree(staged),
            ),
        )
        ctx.staged_prefix = staged
        return f"staged in {staging}; library {library.name} has every requested option"

    @staticmethod
    def check_library(ctx: Context, library: Path) -> List[str]:
        assert ctx.config is not None and ctx.srcdir is not None  # noqa: S101
        try:
            version, options = read_library(library)
        except RuntimeError as exc:
            raise VerifyError(str(exc), hint="read the log; the build is broken") from exc
        if version != ctx.source.version:
            raise VerifyError(
                f"the built library reports SQLite {version}, expected {ctx.source.version}",
                hint="the tarball does not hold the release its name says",
            )
        known = build.known_compile_options(
            (ctx.srcdir / "sqlite3.c").read_text(encoding="utf-8", errors="replace")
        )
        missing = build.missing_options(ctx.config.expected_options, options, known)
        forbidden = build.forbidden_present(options)
        if missing or forbidden:
            raise VerifyError(
                "the built library's compile options are wrong: missing {}; forbidden {}".format(
                    ", ".join(missing) or "none", ", ".join(forbidden) or "none"
                ),
                hint="remove conflicting -D flags from CFLAGS (configure ignores some mistakes)",
            )
        return options


def source_hashes(tarball: Optional[Path]) -> List[str]:
    from sqlite_provision.fetch import HASH_ALGORITHMS, file_digest

    if tarball is None:
        return []
    return [f"{name}:{file_digest(tarball, name)}" for name in sorted(HASH_ALGORITHMS)]


def new_staging(ctx: Context, beside_prefix: bool) -> Path:
    """A staging dir on the prefix's filesystem, so the install is one rename (or, for `build`,
    a plain temporary directory)."""
    if not beside_prefix:
        staging = Path(tempfile.mkdtemp(prefix="sqlite-provision-stage-"))
    else:
        parent = ctx.layout.prefix.parent
        created = make_parents(parent)
        ctx.undo.append((f"remove created {parent}", lambda: remove_empty(created)))
        staging = Path(tempfile.mkdtemp(prefix=".sqlite-provision-stage-", dir=str(parent)))
    ctx.work_dirs.append(staging)
    return staging


def make_parents(path: Path) -> List[Path]:
    """mkdir -p that reports what it created, so a rollback can remove exactly that."""
    created: List[Path] = []
    current = path
    while not current.exists():
        created.append(current)
        current = current.parent
    for directory in reversed(created):
        directory.mkdir(mode=0o755)
    return created


def remove_empty(created: List[Path]) -> None:
    for directory in created:  # deepest first
        try:
            directory.rmdir()
        except OSError:
            return
