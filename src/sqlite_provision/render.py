"""Human text and JSON for plans and reports: stdout gets the result, one JSON object with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Tuple

from sqlite_provision.options import Options


def build_output(report: Any, out: Path, as_json: bool) -> str:
    if as_json:
        data = report.to_json()
        data["artifact"] = str(out)
        data["sha256_file"] = str(out) + ".sha256"
        return json.dumps(data, indent=2)
    return "\n".join([
        f"Built SQLite {report.version} for {report.prefix} into {out}",
        f"  checksum: {out}.sha256",
        f"  install it on each host: sqlite-provision install --artifact {out}",
        f"  log: {report.log_file}",
    ])  # fmt: skip


def dry_run_output(plan: Any, options: Options) -> str:
    if options.json:
        return json.dumps(
            {
                "dry_run": True,
                "changed": False,
                "version": plan.source.version,
                "source": {
                    "url": plan.source.url,
                    "tarball": str(plan.source.local) if plan.source.local else None,
                    "checksum": f"{plan.source.checksum.algorithm}:{plan.source.checksum.hexdigest}"
                    if plan.source.checksum
                    else None,
                    "origin": plan.source.origin,
                },
                "prefix": str(plan.layout.prefix),
                "profile_file": str(plan.layout.profile_file) if plan.layout.profile_file else None,
                "pythons": list(plan.pythons),
                "features": [{"option": o, "origin": w} for o, w in plan_features(plan)],
                "steps": plan.to_json(),
            },
            indent=2,
        )
    lines = [
        f"sqlite-provision install --dry-run: SQLite {plan.source.version} from {plan.source.origin}",
        "nothing will be downloaded or written; the real run does these steps:",
    ]
    for index, step in enumerate(plan.to_json(), 1):
        lines.append("{:>2}. {}: {}".format(index, step["name"], step["description"]))
        for command in step["commands"]:
            lines.append(f"      $ {command}")
    features = plan_features(plan)
    if features:
        lines.append("SQLite options built in, and why:")
        for option, origin in features:
            lines.append(f"      {option:<28} {origin}")
    lines.append("Steps already satisfied at run time are skipped with their reason.")
    return "\n".join(lines)


def plan_features(plan: Any) -> List[Tuple[str, str]]:
    """(option, where it came from) of the build in the plan: rhel baseline, host library,
    --enable, or required by another option."""
    from sqlite_provision.steps import Configure

    for step in plan.steps:
        if isinstance(step, Configure):
            return [(s.feature.option, s.origin) for s in step.features]
    return []


def report_output(report: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.to_json(), indent=2)
    lines = []
    if report.changed:
        lines.append(f"SQLite {report.version} installed in {report.prefix} and verified.")
        for step in report.steps:
            if step.changed:
                lines.append(f"  changed: {step.detail}")
    else:
        lines.append(
            f"Nothing to change: SQLite {report.version} in {report.prefix} is installed and verified."
        )
    for result in report.verified:
        lines.append(
            "  {} (Python {}) loads SQLite {} from {}".format(
                result["python"],
                result["python_version"],
                result["sqlite_version"],
                result["library"],
            )
        )
    if report.profile_file:
        lines.append(
            f"  new login shells get it from {report.profile_file}; in this shell run: . {report.profile_file}"
        )
    lines.append("  services, cron and sudo do not read /etc/profile.d: see the README.")
    if report.log_file:
        lines.append(f"  log: {report.log_file}")
    return "\n".join(lines)
