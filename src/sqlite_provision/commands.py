"""What each command does, between parsing (cli.py) and rendering (render.py): gather facts,
resolve the source, build the plan, take the lock, execute, and return an Outcome."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Tuple

from sqlite_provision import __version__
from sqlite_provision.errors import HostError, ProvisionError, UsageError, VerifyError
from sqlite_provision.options import Options
from sqlite_provision.render import build_output, dry_run_output, report_output


def resolve_pythons(requested: Tuple[str, ...]) -> Tuple[str, ...]:
    import shutil

    from sqlite_provision.runner import capture

    if not requested:
        found = shutil.which("python3")
        if not found:
            raise HostError("no python3 on PATH to verify", hint="pass --python /path/to/python")
        return (found,)
    result = []
    for python in requested:
        path = shutil.which(python) if os.sep not in python else python
        if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise UsageError(
                f"--python {python}: no such executable",
                hint="pass the full path of a python interpreter",
            )
        answer = capture([path, "-c", "import sys; print(sys.version_info[0])"], timeout=30)
        if answer.returncode != 0 or answer.stdout.strip() not in ("2", "3"):
            raise UsageError(
                f"--python {python} is not a python interpreter",
                hint="pass the full path of a python interpreter",
            )
        result.append(path)
    return tuple(result)


def open_log(command: str) -> Any:
    from sqlite_provision.options import log_dir
    from sqlite_provision.runner import Log

    name = "{}-{}-{}.log".format(command, time.strftime("%Y%m%d-%H%M%S"), os.getpid())
    try:
        return Log(log_dir() / name)
    except OSError as exc:
        raise HostError(
            f"cannot write the log under {log_dir()}: {exc}",
            hint="run as root, or set SQLITE_PROVISION_LOG_DIR to a writable directory",
        ) from exc


def do_install(options: Options) -> Outcome:
    from sqlite_provision import facts as host
    from sqlite_provision import hostlib, lock
    from sqlite_provision.executor import StepRecord, execute
    from sqlite_provision.features import normalize
    from sqlite_provision.plan import build_plan
    from sqlite_provision.preflight import preflight
    from sqlite_provision.source import resolve_latest, resolve_source
    from sqlite_provision.steps import installed_reason

    for name in options.enable:
        normalize(name)
    facts = host.gather()
    metadata = None
    if options.artifact is not None:
        source, metadata = artifact_source(options)
    else:
        source = resolve_source(options)
    pythons = resolve_pythons(options.pythons)
    system = hostlib.probe(pythons[0])
    if options.ld_so_conf and not options.dry_run:
        sys.stderr.write(
            "WARNING: --ld-so-conf puts the new library in front of the system one for EVERY "
            "process on this host, systemd and dnf included, from the next boot on.\n"
        )
    if options.dry_run:
        plan = build_plan(options, facts, source, pythons, host=system, artifact_metadata=metadata)
        preflight(facts, options, plan.layout, needs_build=metadata is None)
        return Outcome(dry_run_output(plan, options), 0)
    log = open_log("install")
    outcome_log = log
    try:
        log.write(f"sqlite-provision {__version__} install: {sys.argv[1:]}")
        resolve_record = None
        with lock.held(lock.lock_path(), options.lock_timeout):
            if not source.resolved:
                from sqlite_provision.fetch import fetch_text

                # Host preconditions first: never download only to find we cannot install.
                draft = build_plan(options, facts, source, pythons, host=system)
                preflight(facts, options, draft.layout, needs_build=True)
                started = time.monotonic()
                source = resolve_latest(options, lambda url: fetch_text(url, log=log.write))
                resolve_record = StepRecord(
                    "resolve",
                    "ok",
                    round(time.monotonic() - started, 3),
                    f"latest is {source.version} ({source.origin})",
                )
            plan = build_plan(
                options, facts, source, pythons, host=system, artifact_metadata=metadata
            )
            needs_build = metadata is None and (
                options.force or installed_reason(plan.layout, plan.request) is None
            )
            preflight(facts, options, plan.layout, needs_build)
            report = execute(plan, options, facts, log, quiet=False)
        if resolve_record is not None:
            report.steps.insert(0, resolve_record)
        return Outcome(report_output(report, options.json), 0, report=report)
    except (ProvisionError, OSError) as exc:
        exc.log = outcome_log  # type: ignore[union-attr]
        raise
    finally:
        log.close()


def artifact_source(options: Options) -> Tuple[Any, Dict[str, Any]]:
    """The artifact's metadata (read locally; its checksum is checked by the unpack step)."""
    from sqlite_provision import artifact
    from sqlite_provision.fetch import Checksum
    from sqlite_provision.source import Source

    assert options.artifact is not None  # noqa: S101
    metadata = artifact.read_metadata(options.artifact)
    version = str(metadata.get("version"))
    from sqlite_provision.catalog import parse_version

    parse_version(version)
    expected = artifact.expected_sha256(options.artifact, options.sha256)
    source = Source(
        version=version,
        filename=options.artifact.name,
        url=None,
        local=options.artifact,
        checksum=Checksum("sha256", expected) if len(expected) == 64 else None,
        release=None,
        origin=f"--artifact {options.artifact}",
    )
    return source, metadata


def do_build(options: Options, out: Path) -> Outcome:
    import dataclasses

    from sqlite_provision import facts as host
    from sqlite_provision import hostlib, lock
    from sqlite_provision.executor import execute
    from sqlite_provision.plan import build_artifact_plan
    from sqlite_provision.source import resolve_latest, resolve_source

    # Always build: an install of the same version on this host is no reason to skip.
    options = dataclasses.replace(options, force=True, no_profile=True)
    facts = host.gather()
    source = resolve_source(options)
    import shutil

    python = shutil.which("python3") or sys.executable
    system = hostlib.probe(python)
    if options.dry_run:
        plan = build_artifact_plan(options, facts, source, out, host=system)
        return Outcome(dry_run_output(plan, options), 0)
    log = open_log("build")
    try:
        with lock.held(lock.lock_path(), options.lock_timeout):
            if not source.resolved:
                from sqlite_provision.fetch import fetch_text

                source = resolve_latest(options, lambda url: fetch_text(url, log=log.write))
            plan = build_artifact_plan(options, facts, source, out, host=system)
            preflight_build(facts, options, out)
            report = execute(plan, options, facts, log, quiet=False)
        report.prefix = str(plan.layout.prefix)
        report.library = None
        report.profile_file = None
        return Outcome(build_output(report, out, options.json), 0, report=report)
    except (ProvisionError, OSError) as exc:
        exc.log = log  # type: ignore[union-attr]
        raise
    finally:
        log.close()


def preflight_build(facts: Any, options: Options, out: Path) -> None:
    from sqlite_provision.preflight import check_compiler, nearest_existing

    if not os.access(str(nearest_existing(out.parent)), os.W_OK):
        raise HostError(
            f"cannot write the artifact {out}",
            hint="choose an --artifact path in a directory you can write",
        )
    check_compiler(facts, options)


class Outcome:
    def __init__(self, text: str, code: int, report: Any = None) -> None:
        self.text = text
        self.code = code
        self.report = report


def do_verify(options: Options) -> Outcome:
    from sqlite_provision.manifest import read_manifest
    from sqlite_provision.options import CURRENT_LINK_NAME, make_layout
    from sqlite_provision.verify import verify_python

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
            python,
            prefix=layout.prefix,
            lib_dir=layout.active_lib_dir,
            profile_file=profile,
            min_version=options.min_version,
            expected_version=manifest.version if manifest else None,
        )
        for python in resolve_pythons(options.pythons)
    ]
    ok = all(r.ok for r in results)
    payload: Dict[str, Any] = {
        "ok": ok,
        "changed": False,
        "prefix": str(layout.prefix),
        "version": manifest.version if manifest else None,
        "profile_file": str(profile) if profile else None,
        "verified": [r.to_json() for r in results],
    }
    if options.json:
        text = json.dumps(payload, indent=2)
    else:
        text = "\n".join(
            "{} {} (Python {}): SQLite {} from {}{}".format(
                "ok  " if r.ok else "FAIL",
                r.python,
                r.python_version,
                r.sqlite_version,
                r.library,
                "" if r.ok else " -- " + str(r.problem),
            )
            for r in results
        )
    if not ok:
        error = VerifyError(
            "verification failed: "
            + "; ".join(f"{r.python}: {r.problem}" for r in results if not r.ok),
            hint="see 'Python still shows the old version' in the README",
        )
        if options.json:
            # report_error prints the one JSON object, merged with the error's fields.
            error.report = payload  # type: ignore[attr-defined]
        else:
            print(text)
        raise error
    return Outcome(text, 0)


def do_status(options: Options) -> Outcome:
    from sqlite_provision.status import gather_status, render_status

    data = gather_status(options, resolve_pythons(options.pythons))
    return Outcome(json.dumps(data, indent=2) if options.json else render_status(data), 0)
