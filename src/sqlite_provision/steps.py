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

from sqlite_provision import activate, build
from sqlite_provision.errors import CommandFailed, HostError, VerifyError
from sqlite_provision.facts import Facts
from sqlite_provision.features import Selected, provider_of, public_symbols
from sqlite_provision.hostlib import HostLibrary
from sqlite_provision.manifest import (
    Manifest,
    manifest_problems,
    read_manifest,
    scan_tree,
    write_manifest,
)
from sqlite_provision.options import PREVIOUS_LINK_NAME, Layout, Options
from sqlite_provision.runner import Log, Runner
from sqlite_provision.source import Source
from sqlite_provision.verify import ProbeResult, read_library, verify_python

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

    def installed_reason(self) -> Optional[str]:
        """Why no build is needed: this exact build is in the prefix and its files are intact."""
        if self.options.force:
            return None
        return installed_reason(self.layout, self.request)


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


@dataclass(frozen=True)
class Install(Step):
    prefix: Path
    name = "install"
    changes_host = True

    def describe(self) -> str:
        return f"move the staged tree into {self.prefix} in one rename"

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        return ctx.installed_reason()

    def run(self, ctx: Context) -> str:
        assert ctx.staged_prefix is not None  # noqa: S101
        prefix = ctx.layout.prefix
        backup: Optional[Path] = None
        if os.path.lexists(str(prefix)):
            # An older build of ours (checked by preflight): keep it until the run succeeds.
            backup = prefix.parent / f".{prefix.name}.previous-{os.getpid()}"
            os.rename(str(prefix), str(backup))
        os.rename(str(ctx.staged_prefix), str(prefix))
        activate.fsync_dir(prefix.parent)

        def undo() -> None:
            shutil.rmtree(str(prefix), ignore_errors=True)
            if backup is not None:
                os.rename(str(backup), str(prefix))

        ctx.undo.append((f"remove {prefix}", undo))
        if backup is not None:
            kept = backup
            ctx.cleanup.append(lambda: shutil.rmtree(str(kept), ignore_errors=True))
            return f"replaced the previous build in {prefix}"
        return f"installed into {prefix}"


@dataclass(frozen=True)
class LinkCurrent(Step):
    link: Path
    target: str
    name = "link"
    changes_host = True

    def describe(self) -> str:
        return f"point {self.link} at {self.target} (a new link renamed over the old)"

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        try:
            if os.readlink(str(self.link)) == self.target:
                return f"{self.link} already points at {self.target}"
        except OSError:
            pass
        return None

    def run(self, ctx: Context) -> str:
        old_target = read_link(self.link)
        undo_current = set_link(self.link, self.target)
        ctx.undo.append((f"restore {self.link}", undo_current))
        if old_target is not None and old_target != self.target:
            # `previous` remembers what `current` pointed at, for `sqlite-provision rollback`.
            undo_previous = set_link(self.link.parent / PREVIOUS_LINK_NAME, old_target)
            ctx.undo.append(("restore the previous link", undo_previous))
            return f"{self.link} -> {self.target} (previous: {old_target})"
        return f"{self.link} -> {self.target}"


def read_link(link: Path) -> Optional[str]:
    try:
        return os.readlink(str(link))
    except OSError:
        return None


def set_link(link: Path, target: Optional[str]) -> Callable[[], None]:
    """Point link at target (None removes it) atomically; return how to put it back."""
    before = read_link(link)
    if target is None:
        if before is not None:
            os.unlink(str(link))
    else:
        activate.swap_symlink(link, target)

    def undo() -> None:
        set_link(link, before)

    return undo


@dataclass(frozen=True)
class WriteActivation(Step):
    """Write one activation file atomically (profile snippets, systemd drop-ins, an env file,
    ld.so.conf.d), run its follow-up commands (daemon-reload, ldconfig), and undo both."""

    path: Path
    content: str
    lib_dir: Path
    name: str = "activate"
    purpose: str = "prepend {lib} to LD_LIBRARY_PATH"
    after: Tuple[Tuple[str, ...], ...] = ()
    mode: int = 0o644
    changes_host = True

    def describe(self) -> str:
        return (
            f"write {self.path} (mode {self.mode:04o}) to {self.purpose.format(lib=self.lib_dir)}"
        )

    def commands(self) -> List[Argv]:
        return [list(a) for a in self.after]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        if activate.read_bytes(self.path) == self.content.encode("utf-8"):
            return f"{self.path} is already up to date"
        return None

    def run(self, ctx: Context) -> str:
        previous = activate.read_bytes(self.path)
        # The undo puts back the old file as it was: its mode and owner too, not ours.
        mode: int = self.mode
        owner: Optional[Tuple[int, int]] = None
        if previous is not None:
            mode, owner = activate.file_metadata(self.path)
        created = make_parents(self.path.parent)
        activate.write_atomic(self.path, self.content.encode("utf-8"), self.mode)

        def undo() -> None:
            activate.restore(self.path, previous, mode, owner)
            remove_empty(created)
            self.run_after(ctx)

        ctx.undo.append((f"restore {self.path}", undo))
        self.run_after(ctx)
        return "{} {}".format("replaced" if previous is not None else "wrote", self.path)

    def run_after(self, ctx: Context) -> None:
        for argv in self.after:
            ctx.runner.run(list(argv), what=argv[0])


@dataclass(frozen=True)
class WriteProfile(WriteActivation):
    name: str = "profile"


@dataclass(frozen=True)
class Verify(Step):
    pythons: Tuple[str, ...]
    min_version: str
    name = "verify"

    def describe(self) -> str:
        return "start {} in a fresh environment and check it loads SQLite >= {} from the prefix".format(
            ", ".join(self.pythons), self.min_version
        )

    def run(self, ctx: Context) -> str:
        layout = ctx.layout
        results = [
            verify_python(
                python,
                prefix=layout.prefix,
                lib_dir=layout.active_lib_dir,
                profile_file=layout.profile_file,
                min_version=self.min_version,
                expected_version=ctx.source.version,
            )
            for python in ctx.pythons
        ]
        ctx.verified = results
        failed = [r for r in results if not r.ok]
        if failed:
            raise VerifyError(
                "verification failed: " + "; ".join(f"{r.python}: {r.problem}" for r in failed),
                hint="see 'Python still shows the old version' in the README; "
                "the previous state was restored",
            )
        return "; ".join(
            f"{r.python} (Python {r.python_version}) loads SQLite {r.sqlite_version} from {r.library}"
            for r in results
        )


@dataclass(frozen=True)
class AbiGate(Step):
    """Before anything is activated: the new library must export every public function the
    system library exports, and carry each of its feature options; otherwise a program linked to
    the system library dies with `undefined symbol` once the snippet reaches it."""

    host: HostLibrary
    allow_loss: bool
    name = "abi"

    def describe(self) -> str:
        if not self.host.path:
            return f"compare with the system library (none found: {self.host.problem})"
        return f"check the new library exports all {len(self.host.symbols)} public functions of {self.host.path} ({self.host.version})"

    def run(self, ctx: Context) -> str:
        from sqlite_provision.elf import exported_functions

        if not self.host.path or not self.host.symbols:
            ctx.warnings.append("ABI gate: no system library to compare with")
            return f"no system library to compare with ({self.host.problem})"
        root = ctx.staged_prefix or ctx.layout.prefix
        library = root / "lib" / "libsqlite3.so.0"
        new_symbols = public_symbols(exported_functions(library))
        missing = sorted(self.host.symbols - new_symbols)
        new_options = set(read_library(library)[1])
        lost_options = sorted(o for o in host_feature_options(self.host) if o not in new_options)
        if not missing and not lost_options:
            return f"exports all {len(self.host.symbols)} public functions of {self.host.path}; {len(new_symbols)} exported in all"
        message = abi_message(missing, lost_options, self.host)
        if not self.allow_loss:
            raise VerifyError(
                message,
                hint="build with --compat host (the default) or --enable the options named; "
                f"--allow-abi-loss overrides, at the risk of breaking programs linked to {self.host.path}",
            )
        ctx.warnings.append("--allow-abi-loss: " + message)
        import sys

        sys.stderr.write(f"warning: --allow-abi-loss: {message}\n")
        return "ABI LOSS ALLOWED: " + message


def host_feature_options(host: HostLibrary) -> List[str]:
    from sqlite_provision.features import host_features

    return host_features(host.options)


def abi_message(missing: List[str], lost_options: List[str], host: HostLibrary) -> str:
    by_option: dict = {}  # type: ignore[type-arg]
    for symbol in missing:
        by_option.setdefault(provider_of(symbol) or "no known option", []).append(symbol)
    parts = [
        "{} (from {})".format(", ".join(symbols), option)
        for option, symbols in sorted(by_option.items())
    ]
    text = "the new library lacks {} public function(s) that {} exports: {}".format(
        len(missing), host.path, "; ".join(parts) or "none"
    )
    if lost_options:
        text += "; and compile options {}".format(", ".join(lost_options))
    return text


@dataclass(frozen=True)
class SmokeTest(Step):
    """The host's package tools, run under exactly the environment the snippet gives: RHEL 9's
    rpm database is SQLite, and Fedora reverted 3.42.0 because dnf broke with it."""

    tools: Tuple[Tuple[str, ...], ...]
    name = "smoke"

    def describe(self) -> str:
        if not self.tools:
            return "no rpm, dnf or yum on this host to smoke-test"
        return "run {} with the new library".format(", ".join(" ".join(t) for t in self.tools))

    def commands(self) -> List[Argv]:
        return [list(t) for t in self.tools]

    def is_satisfied(self, ctx: Context) -> Optional[str]:
        if not self.tools:
            return "no rpm, dnf or yum on this host"
        if not ctx.changed:
            return "nothing changed since the install that passed it"
        return None

    def run(self, ctx: Context) -> str:
        from sqlite_provision.verify import activated_argv, probe_env

        layout = ctx.layout
        env = probe_env(layout.active_lib_dir, layout.profile_file)
        for tool in self.tools:
            argv = activated_argv(list(tool), layout.profile_file)
            result = ctx.runner.capture(argv, env=env, timeout=300)
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                raise VerifyError(
                    "`{}` fails with the new library (exit status {}): {}".format(
                        " ".join(tool), result.returncode, output[-1500:] or "no output"
                    ),
                    hint="this SQLite would break the host's package tools; the run was rolled "
                    "back. Try another release or --compat host",
                )
        return "passed: {}".format(", ".join(" ".join(t) for t in self.tools))


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


def preflight(facts: Facts, options: Options, layout: Layout, needs_build: bool) -> None:
    """Host preconditions, checked before any download (exit 3). --dry-run skips the one that
    must create a file (the noexec probe of TMPDIR)."""
    manifest = read_manifest(layout.prefix)
    if manifest is None and layout.prefix.is_dir() and any(layout.prefix.iterdir()):
        raise HostError(
            f"{layout.prefix} exists and was not installed by sqlite-provision",
            hint="choose an empty or new --prefix; this tool never overwrites files it did not "
            "install",
        )
    for path in [layout.prefix] + ([layout.profile_file] if layout.profile_file else []):
        existing = nearest_existing(path)
        if not os.access(str(existing), os.W_OK):
            raise not_writable(path, existing, facts.root)
    if needs_build:
        check_compiler(facts, options)
        if not options.dry_run:
            check_tmp_exec()


def not_writable(path: Path, existing: Path, root: bool) -> HostError:
    """Why `path` cannot be written, in terms the operator can act on: root cannot fix a
    read-only filesystem or an immutable directory by being root."""
    elsewhere = (
        "pass --prefix-root (or --prefix) and --profile-file (or --no-profile) on a "
        "writable filesystem"
    )
    try:
        read_only = bool(os.statvfs(str(existing)).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return HostError(
            f"cannot write {path}: {existing} is on a read-only filesystem",
            hint=f"remount it read-write, or {elsewhere}",
        )
    if root:
        return HostError(
            f"cannot write {path}: {existing} is not writable, even for root",
            hint=f"check its attributes (lsattr -d {existing}) and its mount, or {elsewhere}",
        )
    return HostError(
        f"cannot write {path} ({existing} is not writable and you are not root)",
        hint="run as root, or pass --prefix and --profile-file (or --no-profile) in "
        "places you can write",
    )


def check_tmp_exec() -> None:
    """configure compiles and runs test programs in the build directory, under TMPDIR: a noexec
    mount makes it fail in confusing ways, so detect it up front (as python-build does)."""
    from sqlite_provision.runner import capture

    tmp = Path(tempfile.gettempdir())
    try:
        fd, name = tempfile.mkstemp(prefix="sqlite-provision-exec-", suffix=".sh", dir=str(tmp))
    except OSError as exc:
        raise HostError(
            f"cannot create files in the temporary directory {tmp}: {exc.strerror}",
            hint="set TMPDIR to a writable directory with free space, e.g. TMPDIR=/var/tmp",
        ) from exc
    try:
        os.write(fd, b"#!/bin/sh\nexit 0\n")
        os.fchmod(fd, 0o700)
        os.close(fd)
        result = capture([name], timeout=30)
    finally:
        os.unlink(name)
    if result.returncode != 0:
        raise HostError(
            f"cannot run programs in the temporary directory {tmp} (mounted noexec?)",
            hint="configure runs test programs there: set TMPDIR to a directory on an exec "
            "mount, e.g. TMPDIR=/var/tmp",
        )


def check_compiler(facts: Facts, options: Options) -> None:
    """gcc and make present, or a way to install them (exit 3 with the command otherwise)."""
    if not facts.compiler_missing:
        return
    missing = " and ".join(facts.compiler_missing)
    command = "{} install -y gcc make".format(facts.package_manager or "yum")
    if not options.install_deps:
        raise HostError(
            f"{missing} missing and --no-install-deps was given",
            hint=f"run `{command}` first, or drop --no-install-deps",
        )
    if not facts.os.rhel_family or facts.package_manager is None:
        raise HostError(
            f"{missing} missing, and {facts.os.name} is not a RHEL-family host with yum",
            hint=foreign_compiler_hint(facts),
        )
    if not facts.root:
        raise HostError(
            f"{missing} missing and only root can install them",
            hint=f"run `sudo {command}`, or run sqlite-provision as root",
        )


def foreign_compiler_hint(facts: Facts) -> str:
    """Where the tool will not run a package manager itself, it still names the exact command."""
    if {"debian", "ubuntu"}.intersection((facts.os.id, *facts.os.like)):
        return "run `apt-get install -y gcc make` as root, then re-run"
    return "install a C compiler and make with your package manager, then re-run"


def nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current
