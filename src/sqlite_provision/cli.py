"""Click commands. No logic of their own: parse, call, render, and map errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TypeVar

import click

from sqlite_provision import __version__

if TYPE_CHECKING:
    from sqlite_provision.commands import Outcome
from sqlite_provision.errors import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    HostError,
    Interrupted,
    ProvisionError,
    UsageError,
)
from sqlite_provision.options import (
    DEFAULT_MIN_VERSION,
    DEFAULT_PREFIX_ROOT,
    DEFAULT_PROFILE_FILE,
    Options,
)

F = TypeVar("F", bound=Callable[..., Any])

EPILOG_INSTALL = """\b
Examples:
  sqlite-provision install                      # newest release, /opt/sqlite/current
  sqlite-provision install --version 3.46.1 --json
  sqlite-provision install --dry-run            # print the exact steps, change nothing
  sqlite-provision install --tarball ./sqlite-autoconf-3530400.tar.gz
  sqlite-provision install --mirror https://mirror.example.com/sqlite --min-version 3.35.0
  sqlite-provision install --prefix /opt/app/sqlite --no-profile --python /opt/app/venv/bin/python
  sqlite-provision install --systemd-unit myapp --env-file /etc/sysconfig/sqlite-provision
  sqlite-provision install --artifact /srv/dist/sqlite-3.53.4.tar.gz   # prebuilt, no compiler

\b
Exit codes: 0 ok, 1 internal error, 2 usage, 3 host precondition, 4 download or checksum,
5 a command failed, 6 verification failed, 130/143 interrupted.
"""


def commands() -> Any:
    """The command bodies, imported only when a command runs (--help stays fast)."""
    from sqlite_provision import commands as bodies

    return bodies


def outcome(text: str, code: int) -> Outcome:
    from sqlite_provision.commands import Outcome

    return Outcome(text, code)


def validate_version(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Any:
    if value is None or value == "latest":
        return value
    from sqlite_provision.catalog import parse_version

    try:
        parse_version(value)
    except ProvisionError as exc:
        raise click.BadParameter(exc.message) from exc
    return value


def validate_min_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    result = validate_version(ctx, param, value)
    if result == "latest":
        raise click.BadParameter("must be a version such as 3.35.0")
    return str(result)


def validate_http_url(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Any:
    if value is None:
        return None
    from urllib.parse import urlparse

    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL; for a local file use --tarball FILE"
        )
    return value


def python_options(f: F) -> F:
    f = click.option(
        "--python",
        "pythons",
        multiple=True,
        metavar="EXE",
        help="A python to verify (repeatable). Default: the python3 on PATH.",
    )(f)
    f = click.option(
        "--min-version",
        default=DEFAULT_MIN_VERSION,
        show_default=True,
        callback=validate_min_version,
        metavar="X.Y.Z",
        help="The lowest SQLite version the pythons must report.",
    )(f)
    return f


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout."
    )(f)


def lock_option(f: F) -> F:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=600.0,
        show_default=True,
        metavar="SECONDS",
        help="Wait this long for another run's lock, then exit 3.",
    )(f)


def root_options(profile_help: str) -> Callable[[F], F]:
    """--prefix-root and --profile-file, for the commands that act on what install left."""

    def decorate(f: F) -> F:
        f = click.option(
            "--profile-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=DEFAULT_PROFILE_FILE,
            show_default=True,
            help=profile_help,
        )(f)
        return click.option(
            "--prefix-root",
            type=click.Path(file_okay=False, path_type=Path),
            default=DEFAULT_PREFIX_ROOT,
            show_default=True,
            help="Where versions live side by side.",
        )(f)

    return decorate


def location_options(f: F) -> F:
    f = click.option(
        "--no-profile",
        is_flag=True,
        help="Write no profile snippet (activate it yourself; see the README).",
    )(f)
    f = click.option(
        "--profile-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"The profile snippet to write.  [default: {DEFAULT_PROFILE_FILE}]",
    )(f)
    f = click.option(
        "--prefix-root",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_PREFIX_ROOT,
        show_default=True,
        help="Where versions live side by side, with a `current` link.",
    )(f)
    f = click.option(
        "--prefix",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Install exactly here instead (no `current` link); the snippet points at PREFIX/lib.",
    )(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sqlite-provision")
def cli() -> None:
    """Give this host a current, verified SQLite under its Python, without breaking the host.

    \b
    Builds the official sqlite-autoconf tarball (checksum verified), installs it beside the
    system library under /opt/sqlite, and activates it for login shells through
    /etc/profile.d. It never prompts: made for root shells, Ansible and cloud-init.

    \b
    Examples:
      sqlite-provision install --dry-run
      sqlite-provision install --json
      sqlite-provision verify --min-version 3.35.0
      sqlite-provision status
    """


def source_options(f: F) -> F:
    """Which tarball, and its checksum: shared by install and build."""
    for decorator in reversed([
        click.option(
            "--version", "version", default=None, callback=validate_version,
            metavar="X.Y.Z|latest",
            help="The release to build. Default: the newest non-withdrawn release in the "
            "catalog; `latest` reads the download page.",
        ),
        click.option(
            "--tarball", type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Build this local sqlite-autoconf tarball instead of downloading.",
        ),
        click.option("--url", callback=validate_http_url, metavar="URL",
                     help="Download the tarball from this URL."),
        click.option(
            "--mirror", callback=validate_http_url, metavar="BASE_URL",
            help="A server laid out like sqlite.org (also $SQLITE_PROVISION_MIRROR).",
        ),
        click.option("--sha3-256", "sha3_256", metavar="HEX",
                     help="The tarball's SHA3-256 (overrides the catalog)."),
        click.option("--sha256", "sha256", metavar="HEX",
                     help="The tarball's (or, with --artifact, the artifact's) SHA-256."),
        click.option("--allow-withdrawn", is_flag=True,
                     help="Build a release withdrawn upstream (3.52.0)."),
    ]):  # fmt: skip
        f = decorator(f)
    return f


def build_options(f: F) -> F:
    """How to build: shared by install and build."""
    for decorator in reversed([
        click.option(
            "--compat", type=click.Choice(["host", "rhel", "none"]), default="host",
            show_default=True,
            help="Feature options: host = every option the system library has, on top of Red "
            "Hat's; rhel = Red Hat's only; none = upstream defaults (the ABI gate will likely "
            "refuse it).",
        ),
        click.option(
            "--enable", multiple=True, metavar="OPTION",
            help="Build with this SQLite option too, e.g. SESSION or ENABLE_GEOPOLY (repeatable).",
        ),
        click.option(
            "--jobs", type=click.IntRange(min=1), default=None,
            help="Parallel make jobs.  [default: the number of CPUs]",
        ),
        click.option("--no-install-deps", is_flag=True,
                     help="Never run yum; exit 3 if gcc or make is missing."),
        click.option("--keep-failed", is_flag=True,
                     help="On failure keep the build and staging directories for debugging."),
        lock_option,
        click.option("--dry-run", is_flag=True,
                     help="Print the exact steps; no network, no writes."),
    ]):  # fmt: skip
        f = decorator(f)
    return f


def activation_options(f: F) -> F:
    for decorator in reversed([
        click.option(
            "--systemd-unit", "systemd_units", multiple=True, metavar="NAME",
            help="Also write a drop-in giving NAME.service the library (repeatable); systemd "
            "does not read /etc/profile.d.",
        ),
        click.option(
            "--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
            help="Also write LD_LIBRARY_PATH=... to this file, for EnvironmentFile= or cron.",
        ),
        click.option(
            "--ld-so-conf", is_flag=True,
            help="Also add the library to /etc/ld.so.conf.d and run ldconfig. DANGER: this "
            "reaches every process, boot included; written only after the smoke test passes.",
        ),
        click.option(
            "--allow-abi-loss", is_flag=True,
            help="Activate even if the new library lacks functions the system library exports "
            "(warns).",
        ),
    ]):  # fmt: skip
        f = decorator(f)
    return f


@cli.command(epilog=EPILOG_INSTALL)
@source_options
@click.option(
    "--artifact",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Install this prebuilt artifact (from `sqlite-provision build`); no compiler needed. "
    "Its checksum comes from --sha256 or ARTIFACT.sha256.",
)
@location_options
@python_options
@build_options
@activation_options
@click.option("--force", is_flag=True, help="Rebuild even when this build is already installed.")
@json_option
def install(**kwargs: Any) -> None:
    """Download, verify, build, install, activate and verify SQLite.

    Idempotent: a second run changes nothing, says so, and takes well under a second.
    """
    as_json = bool(kwargs["as_json"])
    run_command(lambda: commands().do_install(make_options(kwargs)), as_json)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision build --artifact /srv/dist/sqlite-3.53.4.tar.gz
  sqlite-provision build --version 3.46.1 --compat rhel --artifact out.tar.gz --json
  # then, on each host (no compiler needed):
  sqlite-provision install --artifact /srv/dist/sqlite-3.53.4.tar.gz
"""
)
@source_options
@click.option(
    "--artifact",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the artifact (.tar.gz); its .sha256 is written beside it.",
)
@click.option(
    "--prefix",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The prefix the hosts will install it to (they may relocate it).",
)
@click.option(
    "--prefix-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PREFIX_ROOT,
    show_default=True,
    help="Where versions live side by side on the hosts.",
)
@build_options
@json_option
def build(**kwargs: Any) -> None:
    """Build once, deploy many: build and pack a staged install with its metadata.

    The artifact holds the files, their sha256, the version, flags and compile options, the
    exported symbols, the arch and the minimum glibc. Nothing is installed on this host.
    """
    as_json = bool(kwargs["as_json"])
    out = Path(os.path.abspath(str(kwargs.pop("artifact"))))
    run_command(lambda: commands().do_build(make_options(kwargs), out), as_json)


def make_options(kw: Dict[str, Any]) -> Options:
    if kw.get("tarball") is not None and kw.get("url") is not None:
        raise UsageError("--tarball and --url are mutually exclusive", hint="pass one of them")
    if kw.get("profile_file") is not None and kw.get("no_profile"):
        raise UsageError(
            "--profile-file and --no-profile are mutually exclusive", hint="pass one of them"
        )
    if kw.get("version") == "latest" and (kw.get("tarball") or kw.get("url")):
        raise UsageError(
            "--version latest reads the download page; it cannot name a --tarball or --url",
            hint="pass --version X.Y.Z, or drop it",
        )
    if kw.get("artifact") is not None:
        for other in ("tarball", "url", "version", "sha3_256", "mirror"):
            if kw.get(other):
                raise UsageError(
                    "--artifact and --{} are mutually exclusive".format(other.replace("_", "-")),
                    hint="the artifact already holds one built version",
                )
    for name in ("prefix", "prefix_root", "profile_file", "tarball", "env_file", "artifact"):
        if kw.get(name) is not None:
            kw[name] = Path(os.path.abspath(str(kw[name])))
    return Options(
        version=kw.get("version") or "",
        tarball=kw.get("tarball"),
        url=kw.get("url"),
        mirror=kw.get("mirror"),
        sha3_256=kw.get("sha3_256"),
        sha256=kw.get("sha256"),
        allow_withdrawn=bool(kw.get("allow_withdrawn")),
        prefix=kw.get("prefix"),
        prefix_root=kw.get("prefix_root") or DEFAULT_PREFIX_ROOT,
        profile_file=kw.get("profile_file") or DEFAULT_PROFILE_FILE,
        no_profile=bool(kw.get("no_profile")),
        min_version=kw.get("min_version") or DEFAULT_MIN_VERSION,
        pythons=tuple(kw.get("pythons") or ()),
        jobs=kw.get("jobs") or 0,
        install_deps=not kw.get("no_install_deps"),
        force=bool(kw.get("force")),
        dry_run=bool(kw.get("dry_run")),
        json=bool(kw.get("as_json")),
        env_cflags=os.environ.get("CFLAGS", ""),
        compat=kw.get("compat") or "host",
        enable=tuple(kw.get("enable") or ()),
        allow_abi_loss=bool(kw.get("allow_abi_loss")),
        keep_failed=bool(kw.get("keep_failed")),
        lock_timeout=float(kw.get("lock_timeout") or 0.0) if "lock_timeout" in kw else 600.0,
        systemd_units=tuple(kw.get("systemd_units") or ()),
        env_file=kw.get("env_file"),
        ld_so_conf=bool(kw.get("ld_so_conf")),
        artifact=kw.get("artifact"),
    )


def run_command(action: Callable[[], Outcome], as_json: bool) -> None:
    """Run a command body; print its result; turn errors into a message, a hint and an exit code."""
    try:
        outcome = action()
    except ProvisionError as exc:
        report_error(exc, as_json)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        report_error(Interrupted(2), as_json)
        sys.exit(130)
    except OSError as exc:
        # A filesystem failure the steps did not foresee (disk full, read-only, permissions):
        # the run was rolled back; say what and where.
        error = HostError(
            f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            hint="check free space (df -h) and permissions there, then re-run; "
            "the host was left as before the run",
        )
        error.log = getattr(exc, "log", None)  # type: ignore[attr-defined]
        report_error(error, as_json)
        sys.exit(error.exit_code)
    click.echo(outcome.text)
    sys.exit(outcome.code)


def report_error(exc: ProvisionError, as_json: bool) -> None:
    log = getattr(exc, "log", None)
    tail = getattr(exc, "tail", "") or (log.tail() if log is not None else "")
    click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"  fix: {exc.hint}", err=True)
    if tail:
        click.echo("--- last lines of the log ---", err=True)
        click.echo(tail.rstrip("\n"), err=True)
    if log is not None and log.path is not None:
        click.echo(f"full log: {log.path}", err=True)
    if as_json:
        report = getattr(exc, "report", None)
        if isinstance(report, dict):
            data: Dict[str, Any] = dict(report)
        else:
            data = report.to_json() if report is not None else {}
        data.update(
            {
                "ok": False,
                "changed": False,
                "error": exc.message,
                "hint": exc.hint,
                "exit_code": exc.exit_code,
                "log_file": str(log.path) if log is not None and log.path else None,
            }
        )
        click.echo(json.dumps(data, indent=2))


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision verify
  sqlite-provision verify --min-version 3.35.0 --python /usr/bin/python3.11 --json
"""
)
@location_options
@python_options
@json_option
def verify(**kwargs: Any) -> None:
    """Check that each python loads the provisioned SQLite (exit 6 if not)."""
    as_json = bool(kwargs["as_json"])
    run_command(lambda: commands().do_verify(make_options(kwargs)), as_json)


@cli.command(epilog="\b\nExamples:\n  sqlite-provision status\n  sqlite-provision status --json\n")
@location_options
@python_options
@json_option
def status(**kwargs: Any) -> None:
    """Show the OS, the build tools, the system SQLite, what each python loads, and installs."""
    as_json = bool(kwargs["as_json"])
    run_command(lambda: commands().do_status(make_options(kwargs)), as_json)


@cli.command(
    epilog="\b\nExamples:\n  sqlite-provision versions\n  sqlite-provision versions --json\n"
)
@json_option
def versions(as_json: bool) -> None:
    """List the releases in the built-in catalog; withdrawn ones are marked."""

    def body() -> Outcome:
        from sqlite_provision.catalog import default_release, load_catalog

        default = default_release().version
        rows: List[Dict[str, Any]] = [
            {
                "version": r.version,
                "released": r.released,
                "url": r.url(),
                "sha3_256": r.sha3_256,
                "sha256": r.sha256,
                "withdrawn": r.withdrawn,
                "default": r.version == default,
                "note": r.note,
            }
            for r in load_catalog()
        ]
        if as_json:
            return outcome(json.dumps(rows, indent=2), 0)
        lines = ["{:<10} {:<11} {:<9} {}".format("VERSION", "RELEASED", "HASH", "NOTE")]
        for row in rows:
            flags = []
            if row["default"]:
                flags.append("default")
            if row["withdrawn"]:
                flags.append("WITHDRAWN upstream")
            hash_kind = "sha3-256" if row["sha3_256"] else ("sha256" if row["sha256"] else "none")
            note = "; ".join(flags + ([row["note"]] if row["note"] else []))
            lines.append(
                "{:<10} {:<11} {:<9} {}".format(
                    row["version"], row["released"], hash_kind, note
                ).rstrip()
            )
        return outcome("\n".join(lines), 0)

    run_command(body, as_json)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision rollback
  sqlite-provision rollback --json --python /opt/app/venv/bin/python
"""
)
@root_options("The snippet to verify through (left unchanged: it points at `current`).")
@python_options
@lock_option
@json_option
def rollback(**kwargs: Any) -> None:
    """Switch `current` back to the previous version and re-verify (undone if it fails)."""
    as_json = bool(kwargs["as_json"])

    def body() -> Outcome:
        from sqlite_provision import installs, lock

        root = Path(os.path.abspath(str(kwargs["prefix_root"])))
        profile = Path(os.path.abspath(str(kwargs["profile_file"])))
        pythons = commands().resolve_pythons(tuple(kwargs["pythons"]))
        with lock.held(lock.lock_path(), float(kwargs["lock_timeout"])):
            old, new, results = installs.rollback(root, profile, pythons, kwargs["min_version"])
        if as_json:
            return outcome(
                json.dumps(
                    {
                        "ok": True,
                        "changed": True,
                        "from": old,
                        "version": new,
                        "verified": [r.to_json() for r in results],
                    },
                    indent=2,
                ),
                0,
            )
        lines = [f"Rolled back: current now points at {new} (was {old})."]
        lines += [
            f"  {r.python} (Python {r.python_version}) loads SQLite {r.sqlite_version}"
            for r in results
        ]
        return outcome("\n".join(lines), 0)

    run_command(body, as_json)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision uninstall 3.44.2
  sqlite-provision uninstall --all --json
"""
)
@click.argument("versions", nargs=-1, metavar="[VERSION]...")
@click.option(
    "--all", "remove_all", is_flag=True, help="Remove every version, the links and the snippet."
)
@root_options("The snippet --all removes (only if this tool wrote it).")
@lock_option
@json_option
def uninstall(**kwargs: Any) -> None:
    """Remove installed versions: exactly the files in each manifest, nothing else.

    The current version is refused unless --all. Files this tool did not install are left in
    place and reported.
    """
    as_json = bool(kwargs["as_json"])

    def body() -> Outcome:
        from sqlite_provision import installs, lock

        for version in kwargs["versions"]:
            validate_version(click.get_current_context(), None, version)  # type: ignore[arg-type]
        root = Path(os.path.abspath(str(kwargs["prefix_root"])))
        profile = Path(os.path.abspath(str(kwargs["profile_file"])))
        with lock.held(lock.lock_path(), float(kwargs["lock_timeout"])):
            result = installs.uninstall(
                root, list(kwargs["versions"]), bool(kwargs["remove_all"]), profile
            )
        if as_json:
            return outcome(json.dumps(dict(result.to_json(), ok=True), indent=2), 0)
        lines = [
            "Removed SQLite {} ({} files).".format(
                ", ".join(result.removed_versions), result.removed_files
            )
        ]
        for path in result.removed_activation:
            lines.append(f"  removed {path}")
        for path in result.kept_foreign:
            lines.append(f"  kept {path}: not installed by sqlite-provision")
        for path in result.changed_since_install:
            lines.append(f"  note: {path} had changed since the install")
        return outcome("\n".join(lines), 0)

    run_command(body, as_json)


def main() -> None:
    # Files and directories are world-readable whatever the caller's umask: a root umask of 077
    # would leave /opt/sqlite unreadable to users, whose programs would quietly keep the old
    # library. Modes that must differ are set explicitly where the file is written.
    os.umask(0o022)
    try:
        cli.main(prog_name="sqlite-provision", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # an internal error: say so plainly, with the traceback in debug
        if os.environ.get("SQLITE_PROVISION_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("  please report it; set SQLITE_PROVISION_DEBUG=1 for a traceback", err=True)
        sys.exit(EXIT_INTERNAL)
