"""Click only: the commands and their option groups, parsing into Options, printing what app.py
returns through output.py, and turning errors into exit codes. No logic of its own."""

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, NoReturn, TypeVar

import click

from sqlite_provision import version_text
from sqlite_provision.config import (
    DEFAULT_FETCH_POLICY,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_MIN_VERSION,
    DEFAULT_PREFIX_ROOT,
    DEFAULT_PROFILE_FILE,
    REAL_HOST_PATHS,
    Environment,
    FetchPolicy,
    HostPaths,
    Options,
    read_environment,
    validate,
)
from sqlite_provision.errors import EXIT_INTERNAL, EXIT_USAGE, Interrupted, ProvisionError
from sqlite_provision.recipe import COMPAT_MODES

if TYPE_CHECKING:
    from sqlite_provision.results import Outcome, Result

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
  sqlite-provision install --rpm /srv/rpms/sqlite-provision-sqlite3_53_4-3.53.4-1.x86_64.rpm
  sqlite-provision install --rpm-package sqlite-provision-sqlite3_53_4  # from a dnf repository

\b
Exit codes: 0 ok, 1 internal error, 2 usage, 3 host precondition, 4 download or checksum,
5 a command failed, 6 verification failed, 130/143 interrupted.
"""

# Click's parameter names that differ from the fields of Options.
RENAMED = {"as_json": "json", "no_install_deps": "install_deps", "no_selinux": "selinux"}


def given_options(ctx: click.Context) -> FrozenSet[str]:
    """The options the user gave on the command line (or through the environment)."""
    from click.core import ParameterSource

    given = set()
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        # click 8.0 (the pyz's, for Python 3.6) reports a variadic argument that was not given,
        # `VERSION...` of uninstall, as COMMANDLINE with an empty tuple: that is not given.
        if value == () and is_variadic_argument(ctx, name):
            continue
        given.add(RENAMED.get(name, name))
    return frozenset(given)


def is_variadic_argument(ctx: click.Context, name: str) -> bool:
    return any(
        isinstance(p, click.Argument) and p.name == name and p.nargs == -1
        for p in ctx.command.params
    )


def make_options(kw: Dict[str, Any], env: Environment) -> Options:
    """Click's values into Options, as given (and $CFLAGS); config.validate checks them."""
    fields = {RENAMED.get(name, name): value for name, value in kw.items()}
    for name in ("install_deps", "selinux"):
        if name in fields:
            fields[name] = not fields[name]
    for name in ("pythons", "enable", "systemd_units", "versions", "venvs"):
        if name in fields:
            fields[name] = tuple(fields[name] or ())
    for name, default in (("version", ""), ("jobs", 0)):
        if name in fields and fields[name] is None:
            fields[name] = default
    if fields.get("profile_file") is None:
        fields.pop("profile_file", None)
    fields["env_cflags"] = env.cflags
    fields["given"] = given_options(click.get_current_context())
    return Options(**fields)


Body = Callable[[Options, Environment], "Result"]


def run(body: Body, kw: Dict[str, Any]) -> None:
    """Validate the options, run a command body with the environment `main` read, print its
    outcome and exit with its code: a result, or an error's message, hint and exit code (with
    --json, either way one JSON object on stdout)."""
    from sqlite_provision import output
    from sqlite_provision.results import Outcome

    env = click.get_current_context().find_object(Environment)
    assert env is not None  # noqa: S101 - main passes it as the context's object
    try:
        outcome: Outcome[Any] = Outcome(body(validate(make_options(kw, env)), env))
    except KeyboardInterrupt:
        outcome = output.failed(Interrupted(signal.SIGINT))
    except ProvisionError as error:
        outcome = output.failed(error)
    show(outcome, bool(kw.get("as_json")))


def show(outcome: "Outcome[Any]", json_out: bool) -> NoReturn:
    """Print an outcome (an error on stderr first) and exit with its code."""
    from sqlite_provision import output

    out, err = output.render(outcome, json_out)
    if err is not None:
        click.echo(err, err=True)
    if out is not None:
        click.echo(out)
    sys.exit(outcome.exit_code)


def progress() -> Any:
    from sqlite_provision.output import StderrProgress

    return StderrProgress()


# --- option groups -----------------------------------------------------------------------------


def apply(decorators: Any) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return decorate


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout."
)
lock_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for another run's lock, then exit 3.",
)
venv_option = click.option(
    "--venv", "venvs", multiple=True, metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A virtual environment whose pythons load the new SQLite with no environment at all "
    "(services, cron, sudo, env -i): a .pth hook in its site-packages (repeatable).",
)  # fmt: skip
python_options = apply([
    click.option("--min-version", default=DEFAULT_MIN_VERSION, show_default=True, metavar="X.Y.Z",
                 help="The lowest SQLite version the pythons must report."),
    click.option("--python", "pythons", multiple=True, metavar="EXE",
                 help="A python to verify (repeatable). Default: the python3 on PATH."),
])  # fmt: skip


def root_options(profile_help: str) -> Callable[[F], F]:
    """--prefix-root and --profile-file, for the commands that act on what install left."""
    return apply([
        click.option("--prefix-root", type=click.Path(file_okay=False, path_type=Path),
                     default=DEFAULT_PREFIX_ROOT, show_default=True,
                     help="Where versions live side by side."),
        click.option("--profile-file", type=click.Path(dir_okay=False, path_type=Path),
                     default=DEFAULT_PROFILE_FILE, show_default=True, help=profile_help),
    ])  # fmt: skip


location_options = apply([
    click.option("--prefix", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="Install exactly here instead (no `current` link); the snippet points at "
                 "PREFIX/lib."),
    click.option("--prefix-root", type=click.Path(file_okay=False, path_type=Path),
                 default=DEFAULT_PREFIX_ROOT, show_default=True,
                 help="Where versions live side by side, with a `current` link."),
    click.option("--profile-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help=f"The profile snippet to write.  [default: {DEFAULT_PROFILE_FILE}]"),
    click.option("--no-profile", is_flag=True,
                 help="Write no profile snippet (activate it yourself; see the README)."),
])  # fmt: skip

source_options = apply([
    click.option("--version", "version", default=None, metavar="X.Y.Z|latest",
                 help="The release to build. Default: the newest non-withdrawn release in the "
                 "catalog; `latest` reads the download page."),
    click.option("--tarball", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Build this local sqlite-autoconf tarball instead of downloading."),
    click.option("--url", metavar="URL", help="Download the tarball from this URL."),
    click.option("--mirror", metavar="BASE_URL",
                 help="A server laid out like sqlite.org (also $SQLITE_PROVISION_MIRROR)."),
    click.option("--sha3-256", "sha3_256", metavar="HEX",
                 help="The tarball's SHA3-256 (overrides the catalog)."),
    click.option("--sha256", "sha256", metavar="HEX",
                 help="The tarball's (or, with --artifact, the artifact's) SHA-256."),
    click.option("--allow-withdrawn", is_flag=True,
                 help="Build a release withdrawn upstream (3.52.0)."),
])  # fmt: skip

build_options = apply([
    click.option("--compat", type=click.Choice(COMPAT_MODES), default="host", show_default=True,
                 help="Feature options: host = every option the system library has, on top of "
                 "Red Hat's; rhel = Red Hat's only; none = upstream defaults (the ABI gate will "
                 "likely refuse it)."),
    click.option("--enable", multiple=True, metavar="OPTION",
                 help="Build with this SQLite option too, e.g. SESSION or ENABLE_GEOPOLY "
                 "(repeatable)."),
    click.option("--jobs", type=click.IntRange(min=1), default=None,
                 help="Parallel make jobs.  [default: the number of CPUs]"),
    click.option("--build-user", metavar="USER", default=None,
                 help="As root, run configure and make as this unprivileged user (through "
                 "setpriv); root only installs packages and takes the result over.  "
                 "[default: nobody]"),
    click.option("--no-install-deps", is_flag=True,
                 help="Never run yum; exit 3 if gcc or make is missing."),
    click.option("--keep-failed", is_flag=True,
                 help="On failure keep the build and staging directories for debugging."),
    lock_option,
    click.option("--dry-run", is_flag=True, help="Print the exact steps; no network, no writes."),
])  # fmt: skip
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print the exact steps; change nothing."
)

activation_options = apply([
    click.option("--systemd-unit", "systemd_units", multiple=True, metavar="NAME",
                 help="Also write a drop-in giving NAME.service the library (repeatable); "
                 "systemd does not read /etc/profile.d."),
    click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Also write LD_LIBRARY_PATH=... to this file, for EnvironmentFile= or "
                 "cron."),
    click.option("--ld-so-conf", is_flag=True,
                 help="Also add the library to /etc/ld.so.conf.d and run ldconfig. DANGER: this "
                 "reaches every process, boot included; written only after the smoke test "
                 "passes."),
    click.option("--allow-abi-loss", is_flag=True,
                 help="Activate even if the new library lacks functions the system library "
                 "exports (warns)."),
    click.option("--no-selinux", is_flag=True,
                 help="Where SELinux is enabled, leave the labels of what is installed as they "
                 "are (no restorecon, no semanage rule; warns)."),
])  # fmt: skip


# --- commands ----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version_text(), prog_name="sqlite-provision", message="%(prog)s %(version)s")
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


def install_body(options: Options, env: Environment) -> "Result":
    from sqlite_provision import app

    return app.install(options, env, progress())


def build_body(options: Options, env: Environment) -> "Result":
    from sqlite_provision import app

    return app.build(options, env, progress())


def rollback_body(options: Options, env: Environment) -> "Result":
    from sqlite_provision import app

    return app.rollback(options, env, progress())


def uninstall_body(options: Options, env: Environment) -> "Result":
    from sqlite_provision import app

    return app.uninstall(options, env, progress())


@cli.command(epilog=EPILOG_INSTALL)
@source_options
@click.option(
    "--artifact",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Install this prebuilt artifact (from `sqlite-provision build`); no compiler needed. "
    "Its checksum comes from --sha256 or ARTIFACT.sha256.",
)
@click.option(
    "--rpm",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Install this RPM (from `build --rpm`) with dnf, yum or rpm, check it with rpm -V, "
    "then gate and activate it as --artifact does. Its checksum: --sha256 or RPM.sha256.",
)
@click.option(
    "--rpm-package",
    metavar="NAME",
    help="Activate this package of `build --rpm` by name (sqlite-provision-sqlite3_53_4): "
    "installed already, or installed now with dnf or yum from the enabled repositories, which "
    "check it against the repository's metadata (and gpg key where gpgcheck=1), so no --sha256. "
    "Then as --rpm: rpm -V, gate, activate. A failed run removes only a package it installed.",
)
@location_options
@python_options
@build_options
@venv_option
@activation_options
@click.option("--force", is_flag=True, help="Rebuild even when this build is already installed.")
@json_option
def install(**kwargs: Any) -> None:
    """Download, verify, build, install, activate and verify SQLite.

    Idempotent: a second run changes nothing, says so, and takes well under a second.
    """
    run(install_body, kwargs)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision build --artifact /srv/dist/sqlite-3.53.4.tar.gz
  sqlite-provision build --version 3.46.1 --compat rhel --artifact out.tar.gz --json
  sqlite-provision build --rpm /srv/rpms --sign 'Build Key' --json
  # then, on each host (no compiler needed):
  sqlite-provision install --artifact /srv/dist/sqlite-3.53.4.tar.gz
"""
)
@source_options
@click.option(
    "--artifact",
    "artifact_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the artifact (.tar.gz); its .sha256 is written beside it.",
)
@click.option(
    "--rpm",
    "rpm_out",
    metavar="OUT_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Build an RPM instead (rpmbuild, as the build user): OUT_DIR/NAME.rpm and its .sha256.",
)
@click.option(
    "--sign",
    "sign_key",
    metavar="KEY",
    default=None,
    help="With --rpm: sign the package with rpmsign and this gpg key (id or user id).",
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
    run(build_body, kwargs)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision verify
  sqlite-provision verify --min-version 3.35.0 --python /usr/bin/python3.11 --json
"""
)
@location_options
@python_options
@venv_option
@json_option
def verify(**kwargs: Any) -> None:
    """Check that each python loads the provisioned SQLite (exit 6 if not)."""
    from sqlite_provision import app

    run(app.verify, kwargs)


@cli.command(epilog="\b\nExamples:\n  sqlite-provision status\n  sqlite-provision status --json\n")
@location_options
@python_options
@venv_option
@json_option
def status(**kwargs: Any) -> None:
    """Show the OS, the build tools, the system SQLite, what each python loads, and installs."""
    from sqlite_provision import app

    run(app.status, kwargs)


@cli.command(
    epilog="\b\nExamples:\n  sqlite-provision versions\n  sqlite-provision versions --json\n"
)
@json_option
def versions(**kwargs: Any) -> None:
    """List the releases in the built-in catalog; withdrawn ones are marked."""
    from sqlite_provision import app

    run(lambda options, env: app.versions(), kwargs)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision rollback
  sqlite-provision rollback --dry-run --json     # the exact steps, nothing changed
  sqlite-provision rollback --json --python /opt/app/venv/bin/python
"""
)
@root_options("The snippet to verify through (left unchanged: it points at `current`).")
@python_options
@venv_option
@lock_option
@dry_run_option
@json_option
def rollback(**kwargs: Any) -> None:
    """Switch `current` back to the previous version and re-verify (undone if it fails)."""
    run(rollback_body, kwargs)


@cli.command(
    epilog="""\b
Examples:
  sqlite-provision uninstall 3.44.2
  sqlite-provision uninstall --all --dry-run     # the exact steps, nothing removed
  sqlite-provision uninstall --all --json
"""
)
@click.argument("versions", nargs=-1, metavar="[VERSION]...")
@click.option(
    "--all", "remove_all", is_flag=True, help="Remove every version, the links and the snippet."
)
@root_options("The snippet --all removes (only if this tool wrote it).")
@click.option(
    "--venv",
    "venvs",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Unbind this virtual environment: remove the hook install --venv wrote (repeatable).",
)
@lock_option
@dry_run_option
@json_option
def uninstall(**kwargs: Any) -> None:
    """Remove installed versions: exactly the files in each manifest, nothing else.

    The current version is refused unless --all. Files this tool did not install are left in
    place and reported.
    """
    run(uninstall_body, kwargs)


def ascii_locale_on_python36() -> Dict[str, str]:
    """Python 3.6 in a C or POSIX locale (cloud-init, `env -i`, cron on RHEL 7) reports ASCII as
    the locale's encoding, and click 8.0 (the last release for 3.6) then refuses to run. Python
    3.7 coerces that locale to UTF-8 (PEP 538); do the same here, with the first UTF-8 locale the
    host has, and return the LC_ALL the tool's commands then run with.

    click's check asks the environment's locale again (`getpreferredencoding` calls
    `setlocale(LC_CTYPE, "")`), so it would still refuse: it is switched off. That is safe: the
    tool writes through click.echo, which puts UTF-8 on a stream whose encoding is ASCII, its
    JSON is ASCII, and its log is written as UTF-8 with errors replaced."""
    import codecs
    import locale

    if codecs.lookup(locale.getpreferredencoding()).name != "ascii":
        return {}
    import click.core

    if hasattr(click.core, "_verify_python_env"):  # click < 8.1
        setattr(click.core, "_verify_python_env", lambda: None)  # noqa: B010
    for name in ("C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8"):
        try:
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            continue
        return {"LC_ALL": name}
    return {}


def main(paths: HostPaths = REAL_HOST_PATHS, fetch: FetchPolicy = DEFAULT_FETCH_POLICY) -> None:
    """The tool's start: the environment is read here, once, and passed down. `paths` and
    `fetch` are the real ones unless a caller passes others (the tests' launcher,
    tests/support/launch.py); nothing the shipped tool reads changes them."""
    env = read_environment(paths, fetch, tool_sets=ascii_locale_on_python36())
    # Files and directories are world-readable whatever the caller's umask: a root umask of 077
    # would leave /opt/sqlite unreadable to users, whose programs would quietly keep the old
    # library. Modes that must differ are set explicitly where the file is written.
    os.umask(0o022)
    try:
        cli.main(prog_name="sqlite-provision", standalone_mode=False, obj=env)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(Interrupted(signal.SIGINT).exit_code)
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
        if "--json" in sys.argv[1:]:  # a machine asked for one JSON object: it gets one
            from sqlite_provision import output
            from sqlite_provision.results import Failure, Outcome

            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "sqlite-provision COMMAND"
            usage = Failure(exc.format_message(), f"see `{where} --help`", code)
            click.echo(output.render(Outcome(None, usage), True)[0])
        sys.exit(code)
    except SystemExit:
        raise
    except Exception as exc:  # an internal error: say so plainly, with the traceback in debug
        if env.debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("  please report it; set SQLITE_PROVISION_DEBUG=1 for a traceback", err=True)
        sys.exit(EXIT_INTERNAL)
