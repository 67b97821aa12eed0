"""What each command does, between parsing (cli.py) and printing (output.py): returns a result
from results.py, or raises a ProvisionError that carries the log's path and the result so far.
It never prints; what a run says while it runs goes through `progress`.

Only this module runs the executor and takes the run lock.
"""

import dataclasses
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Callable,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from sqlite_provision import __version__
from sqlite_provision.config import (
    CURRENT_LINK_NAME,
    Environment,
    FetchPolicy,
    Options,
    make_layout,
)
from sqlite_provision.engine import lock
from sqlite_provision.engine.executor import execute
from sqlite_provision.errors import HostError, ProvisionError, UsageError, VerifyError
from sqlite_provision.results import (
    HostOs,
    InstalledVersion,
    PlanView,
    PrefixState,
    ProfileState,
    Progress,
    ReleaseRow,
    Releases,
    Report,
    RollbackResult,
    SelinuxState,
    StatusReport,
    StepRecord,
    SystemSqlite,
    UninstallResult,
    VenvBinding,
    VerifyReport,
)
from sqlite_provision.runner import Log, Runner

if TYPE_CHECKING:
    from sqlite_provision.host.pythons import Reach
    from sqlite_provision.plan.inputs import Inputs
    from sqlite_provision.plan.model import Command, Plan
    from sqlite_provision.store.recovery import Places

NO_SELINUX_WARNING = (
    "SELinux is enabled and --no-selinux was given: what is installed keeps the labels it "
    "gets, which confined services may be denied (restorecon -RF fixes them later)"
)
LD_SO_CONF_WARNING = (
    "--ld-so-conf puts the new library in front of the system one for EVERY process on this "
    "host, systemd and dnf included, from the next boot on"
)


@contextmanager
def open_run_log(command: str, env: Environment) -> Iterator[Runner]:
    """A runner writing to this run's log file. A failure leaves with the log's path on it; a
    filesystem failure the steps did not foresee becomes a HostError that says where."""
    name = "{}-{}-{}.log".format(command, time.strftime("%Y%m%d-%H%M%S"), os.getpid())
    log = Log(env.log_dir / name, deferred=True)
    try:
        log.write(f"sqlite-provision {__version__} {command}: {sys.argv[1:]}")
        yield Runner(env.variables, log)
    except ProvisionError as exc:
        # The log's lines come only with a failed command (errors.py).
        raise exc.with_context(log_path=log.path) from exc.__cause__
    except OSError as exc:
        # A disk full, a read-only filesystem, a permission: the run was rolled back.
        error = HostError(
            f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            hint="check free space (df -h) and permissions there, then re-run; "
            "the host was left as before the run",
        )
        raise error.with_context(log_path=log.path) from exc
    finally:
        log.close()


@contextmanager
def take_lock(
    runner: Runner, env: Environment, timeout: float, progress: Progress
) -> Iterator[None]:
    """The run lock, and from then on the log file: what came before is written into it."""
    with lock.held(env.lock_file, timeout, progress.note):
        start_log(runner.log, env.log_dir)
        yield


def recover_leftovers(
    places: "Places", runner: Runner, progress: Progress
) -> Tuple[StepRecord, ...]:
    """Put right what a killed run left (under the lock: that run is dead); say what."""
    from sqlite_provision.store.recovery import recover

    started = time.monotonic()
    done = recover(places)
    for line in done:
        runner.log.write("recover: " + line)
        progress.note("recovered: " + line)
    if not done:
        return ()
    seconds = round(time.monotonic() - started, 3)
    return (StepRecord("recover", "ok", seconds, "; ".join(done), changed=True),)


def start_log(log: Log, log_dir: Path) -> None:
    try:
        log.start()
    except OSError as exc:
        raise HostError(
            f"cannot write the log under {log_dir}: {exc}",
            hint="run as root, or set SQLITE_PROVISION_LOG_DIR to a writable directory",
        ) from exc


Fetch = Callable[[str], str]
In = TypeVar("In")  # what a command reads before the lock (plan.inputs)
R = TypeVar("R")  # what it resolves under the lock (plan.resolve, plan.resolve_revert)


def planned_run(
    command: "Command",
    options: Options,
    env: Environment,
    progress: Progress,
    read: Callable[[Options, Runner], In],
    places: Callable[[In], "Places"],
    resolve: Callable[[In, Runner, Optional[Fetch], Tuple[StepRecord, ...]], R],
    make_plan: Callable[[R], "Plan"],
) -> Union[PlanView, Tuple[R, Report]]:
    """Read, resolve, plan once, then show the plan (--dry-run) or run it: under the lock,
    after putting right what a killed run left. What every command that changes the host
    shares: install, build, rollback and uninstall."""
    if options.dry_run:
        runner = Runner(env.variables)
        return make_plan(resolve(read(options, runner), runner, None, ())).view()
    with open_run_log(command.value, env) as runner:
        inputs = read(options, runner)
        with take_lock(runner, env, options.lock_timeout, progress):
            done = recover_leftovers(places(inputs), runner, progress)
            res = resolve(inputs, runner, page_reader(runner, env.fetch), done)
            plan = make_plan(res)
            report = plan.new_report(runner.log.path)
            return res, execute(plan.steps, report, runner, progress, options.keep_failed)


def page_reader(runner: Runner, policy: FetchPolicy) -> Fetch:
    """How resolving reads a page (`latest`'s download page), logged, as `policy` says; the
    network code is imported only if a page is read."""

    def read(url: str) -> str:
        from sqlite_provision.source.fetch import fetch_text

        return fetch_text(url, log=runner.log.write, policy=policy)

    return read


def install(options: Options, env: Environment, progress: Progress) -> Union[Report, PlanView]:
    from sqlite_provision.plan.model import Command

    if options.ld_so_conf and not options.dry_run:
        progress.warning(LD_SO_CONF_WARNING)
    return install_or_build(Command.INSTALL, options, env, progress)


def build(options: Options, env: Environment, progress: Progress) -> Union[Report, PlanView]:
    """Build and pack an artifact. Always builds: an install of the same version on this host is
    no reason to skip, and nothing is activated here."""
    from sqlite_provision.plan.model import Command

    check_build_output(options)
    options = dataclasses.replace(options, force=True, no_profile=True)
    return install_or_build(Command.BUILD, options, env, progress)


def check_build_output(options: Options) -> None:
    """`build` writes one thing: an artifact (--artifact FILE) or an RPM (--rpm OUT_DIR)."""
    if (options.artifact_out is None) == (options.rpm_out is None):
        raise UsageError(
            "build needs exactly one of --artifact FILE and --rpm OUT_DIR",
            hint="pass --artifact out.tar.gz for an artifact, or --rpm DIR for an RPM",
        )
    if options.sign_key is not None and options.rpm_out is None:
        raise UsageError("--sign signs an RPM: it needs --rpm OUT_DIR", hint="add --rpm OUT_DIR")


def install_or_build(
    command: "Command", options: Options, env: Environment, progress: Progress
) -> Union[Report, PlanView]:
    from sqlite_provision.plan.build import build_plan
    from sqlite_provision.plan.inputs import read_inputs, recovery_places
    from sqlite_provision.plan.resolve import resolve

    def read(o: Options, runner: Runner) -> "Inputs":
        inputs = read_inputs(command, o, env, runner)
        if inputs.selinux.enabled and not o.selinux and not o.dry_run:
            progress.warning(NO_SELINUX_WARNING)
        return inputs

    outcome = planned_run(
        command, options, env, progress, read,
        lambda inputs: recovery_places(inputs, options),
        lambda inputs, runner, fetch, done: resolve(inputs, options, runner, fetch, done),
        build_plan,
    )  # fmt: skip
    return outcome if isinstance(outcome, PlanView) else outcome[1]


def reaches(
    runner: Runner, options: Options, lib_dir: Path, profile: Optional[Path]
) -> List["Reach"]:
    from sqlite_provision.plan.inputs import python_reaches

    return python_reaches(runner, options, lib_dir, profile)


def verify(options: Options, env: Environment) -> VerifyReport:
    """Each python, started as a fresh login would, loads the provisioned library (exit 6)."""
    from sqlite_provision.host.pythons import verification_failed, verify_python
    from sqlite_provision.store.manifest import read_manifest

    runner = Runner(env.variables)
    layout = make_layout(options, CURRENT_LINK_NAME)
    profile = layout.profile_file
    if profile is not None and not profile.exists():
        raise VerifyError(
            f"the profile snippet {profile} does not exist",
            hint="run `sqlite-provision install`, or pass --no-profile to check the prefix alone",
        )
    manifest = read_manifest(layout.prefix)
    results = [
        verify_python(
            runner,
            reach,
            prefix=layout.prefix,
            min_version=options.min_version,
            expected_version=manifest.version if manifest else None,
        )
        for reach in reaches(runner, options, layout.active_lib_dir, profile)
    ]
    report = VerifyReport(
        ok=all(r.ok for r in results),
        prefix=str(layout.prefix),
        version=manifest.version if manifest else None,
        profile_file=str(profile) if profile else None,
        verified=tuple(results),
    )
    if not report.ok:
        error = verification_failed(results, hint="see 'Who sees the new library' in the README")
        raise error.with_context(partial=report)
    return report


def status(options: Options, env: Environment) -> StatusReport:
    """What this host has now, read-only."""
    from sqlite_provision.files import read_link
    from sqlite_provision.host.facts import gather
    from sqlite_provision.host.processes import stale_processes
    from sqlite_provision.host.pythons import (
        login_reach,
        resolve_pythons,
        system_probe,
        verify_python,
    )
    from sqlite_provision.store.manifest import read_manifest

    runner = Runner(env.variables)
    pythons = resolve_pythons(runner, options.pythons)
    facts = gather(env)
    system = system_sqlite(runner)
    profile = options.profile_file
    explicit = read_manifest(options.prefix) if options.prefix else None
    layout = make_layout(options, CURRENT_LINK_NAME)
    stale, unreadable = stale_processes(layout.active_lib_dir / "libsqlite3.so.0")
    with_profile = [
        verify_python(
            runner, login_reach(p, layout.active_lib_dir, profile), prefix=None, min_version="0"
        )
        for p in (pythons if profile.exists() else [])
    ]
    installed, selinux = labelled_versions(runner, env, options.prefix_root)
    return StatusReport(
        os=HostOs(facts.os.id, facts.os.version, facts.os.name, facts.os.rhel_family),
        root=facts.root,
        tools=(("gcc", facts.gcc), ("make", facts.make), ("yum", facts.yum), ("dnf", facts.dnf)),
        system_sqlite=system,
        pythons=tuple(system_probe(runner, p) for p in pythons),
        pythons_with_profile=tuple(with_profile),
        prefix_root=str(options.prefix_root),
        installed=installed,
        current=read_link(options.prefix_root / CURRENT_LINK_NAME),
        prefix=PrefixState(str(options.prefix), explicit.version if explicit else None)
        if options.prefix
        else None,
        profile_file=profile_state(profile),
        venvs=tuple(venv_binding(runner, path, layout.prefix) for path in options.venvs),
        stale_processes=tuple(stale),
        unreadable_processes=unreadable,
        selinux=selinux,
    )


def system_sqlite(runner: Runner) -> SystemSqlite:
    """The system libsqlite3 the loader finds, and the version it reports (or why not)."""
    from sqlite_provision.host.library import system_library
    from sqlite_provision.host.pythons import read_library

    lib = system_library(runner)
    if not lib:
        return SystemSqlite(lib)
    try:
        return SystemSqlite(lib, read_library(runner, Path(lib))[0])
    except (RuntimeError, ValueError) as exc:
        return SystemSqlite(lib, error=str(exc))


def labelled_versions(
    runner: Runner, env: Environment, root: Path
) -> Tuple[Tuple[InstalledVersion, ...], Optional[SelinuxState]]:
    """The versions installed under `root`, each with its library's SELinux type (its own
    `security.selinux`); where SELinux is enabled, a warning for each library whose type is not
    the policy's default for its path (or that has no label)."""
    import shutil

    from sqlite_provision.host import selinux
    from sqlite_provision.store.installs import installed_versions

    enabled = selinux.is_enabled(runner, env.search_path)
    matchpathcon = shutil.which("matchpathcon", path=env.search_path) if enabled else None
    rows: List[InstalledVersion] = []
    warnings: List[str] = []
    for row in installed_versions(root):
        library = Path(os.path.realpath(str(row.prefix / "lib" / "libsqlite3.so.0")))
        found = selinux.file_type(library)
        wanted = selinux.default_type(runner, matchpathcon, library) if matchpathcon else None
        if enabled and (found is None or (wanted is not None and found != wanted)):
            warnings.append(f"{library} has the SELinux type {found or '(unlabelled)'}, the "
                            f"policy's default for its path is {wanted or '(unknown)'}: confined "
                            f"services may be denied it; run `restorecon -RF {row.prefix}`")  # fmt: skip
        rows.append(InstalledVersion(
            version=row.version, prefix=str(row.prefix),
            features=tuple(tuple(pair) for pair in row.manifest.build.get("features") or []),
            compile_options=tuple(row.manifest.build.get("compile_options") or []),
            selinux_type=found or ("unlabelled" if enabled else None),
            rpm=row.manifest.rpm_package,
            damaged=rpm_damage(runner, row.manifest.rpm_package),
        ))  # fmt: skip
    return tuple(rows), SelinuxState(True, tuple(warnings)) if enabled else None


def rpm_damage(runner: Runner, package: Optional[str]) -> Tuple[str, ...]:
    """What `rpm -V` says of an RPM-owned version: each changed or missing file (or that rpm
    no longer knows the package); nothing for a version the tool installed itself."""
    if not package:
        return ()
    from sqlite_provision.host import rpmdb

    try:
        report = rpmdb.verify(runner, package)
    except ProvisionError as error:
        return (f"rpm -V {package} failed: {error}",)
    if not report.installed:
        return (f"{package} is not in the rpm database",)
    return tuple(problem.describe() for problem in report.problems)


def profile_state(profile: Path) -> ProfileState:
    from sqlite_provision.store.records import is_managed

    return ProfileState(str(profile), profile.exists(), is_managed(profile))


def venv_binding(runner: Runner, path: Path, prefix: Path) -> VenvBinding:
    """Whether a venv is bound: its python, started with no environment, loads the library
    under the prefix that its hook names; if not, why."""
    from sqlite_provision.errors import UsageError
    from sqlite_provision.host.pythons import inside, venv_reach, verify_python
    from sqlite_provision.host.venvs import hook_target, read_venv
    from sqlite_provision.store.records import is_managed

    try:
        venv = read_venv(runner, path)
    except UsageError as exc:
        return VenvBinding(str(path), False, exc.message)
    seen = verify_python(runner, venv_reach(venv.python), prefix=prefix, min_version="0")
    target = hook_target(venv.hook)
    reason: Optional[str] = None
    if not venv.hook.exists() or not is_managed(venv.hook) or target is None:
        reason = f"no hook of sqlite-provision in {venv.site_packages}"
    elif not os.path.exists(target):
        reason = f"its hook names {target}, which does not exist: python loads the system library"
    elif not inside(seen.library, prefix):
        reason = f"its python loads {seen.library or 'no shared libsqlite3'}, not {target}"
    return VenvBinding(str(path), reason is None, reason, str(venv.hook), seen)


def versions() -> Releases:
    """The releases of the built-in catalog, newest first."""
    from sqlite_provision.source.catalog import default_release, load_catalog

    default = default_release().version
    rows = [
        ReleaseRow(
            version=r.version,
            released=r.released,
            url=r.url(),
            sha3_256=r.sha3_256,
            sha256=r.sha256,
            withdrawn=r.withdrawn,
            default=r.version == default,
            note=r.note,
        )
        for r in load_catalog()
    ]
    return Releases(tuple(rows))


def rollback(
    options: Options, env: Environment, progress: Progress
) -> Union[RollbackResult, PlanView]:
    """Switch `current` back to `previous` and re-verify; on failure the executor switches it
    back (exit 6)."""
    from sqlite_provision.plan.inputs import read_rollback_inputs, revert_places
    from sqlite_provision.plan.model import Command
    from sqlite_provision.plan.resolve_revert import resolve_rollback
    from sqlite_provision.plan.revert import rollback_plan

    outcome = planned_run(
        Command.ROLLBACK, options, env, progress, read_rollback_inputs,
        lambda inputs: revert_places(inputs, env),
        lambda inputs, runner, fetch, done: resolve_rollback(inputs, done), rollback_plan,
    )  # fmt: skip
    if isinstance(outcome, PlanView):
        return outcome
    res, report = outcome
    return RollbackResult(res.current, res.version, report.verified)


def uninstall(
    options: Options, env: Environment, progress: Progress
) -> Union[UninstallResult, PlanView]:
    """Remove installed versions (exactly the files in each manifest), and unbind venvs."""
    from sqlite_provision.plan.inputs import read_uninstall_inputs, revert_places
    from sqlite_provision.plan.model import Command
    from sqlite_provision.plan.resolve_revert import resolve_uninstall
    from sqlite_provision.plan.revert import uninstall_plan, uninstall_result

    outcome = planned_run(
        Command.UNINSTALL, options, env, progress,
        lambda o, runner: read_uninstall_inputs(o, env, runner),
        lambda inputs: revert_places(inputs, env),
        lambda inputs, runner, fetch, done: resolve_uninstall(inputs, done), uninstall_plan,
    )  # fmt: skip
    if isinstance(outcome, PlanView):
        return outcome
    return uninstall_result(outcome[0])
