"""`sqlite-provision status`: what this host has now, read-only."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sqlite_provision import facts as host
from sqlite_provision.manifest import read_manifest
from sqlite_provision.options import CURRENT_LINK_NAME, Options
from sqlite_provision.runner import capture, clean_env
from sqlite_provision.verify import read_library, system_probe, verify_python

_LDCONFIG_LINE = re.compile(r"^\s*(libsqlite3\.so\.0)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


def parse_ldconfig(text: str) -> List[Tuple[str, str]]:
    """(flags, path) of each libsqlite3.so.0 in `ldconfig -p` output, in the cache's order."""
    found = []
    for line in text.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match:
            found.append((match.group(2), match.group(3)))
    return found


def system_library() -> Optional[str]:
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        result = capture([ldconfig, "-p"], env=clean_env(), timeout=20)
        if result.returncode == 0:
            for flags, path in parse_ldconfig(result.stdout):
                if "x86-64" in flags or "64bit" in flags or os.uname().machine not in flags:
                    return path
            return None
    return None


def installed_versions(root: Path) -> List[Dict[str, Any]]:
    rows = []
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_symlink() or not child.is_dir():
                continue
            manifest = read_manifest(child)
            if manifest is not None:
                rows.append(
                    {
                        "version": manifest.version,
                        "prefix": str(child),
                        "features": manifest.build.get("features") or [],
                        "compile_options": manifest.build.get("compile_options") or [],
                    }
                )
    return rows


def gather_status(options: Options, pythons: Tuple[str, ...]) -> Dict[str, Any]:
    facts = host.gather()
    lib = system_library()
    system: Dict[str, Any] = {"path": lib, "version": None}
    if lib:
        try:
            system["version"] = read_library(Path(lib))[0]
        except (RuntimeError, ValueError) as exc:
            system["error"] = str(exc)
    current_link = options.prefix_root / CURRENT_LINK_NAME
    profile = options.profile_file
    explicit = read_manifest(options.prefix) if options.prefix else None
    return {
        "os": {
            "id": facts.os.id,
            "version": facts.os.version,
            "name": facts.os.name,
            "rhel_family": facts.os.rhel_family,
        },
        "root": facts.root,
        "tools": {"gcc": facts.gcc, "make": facts.make, "yum": facts.yum, "dnf": facts.dnf},
        "system_sqlite": system,
        "pythons": [system_probe(p).to_json() for p in pythons],
        "pythons_with_profile": [
            verify_python(
                p, prefix=None, lib_dir=None, profile_file=profile, min_version="0"
            ).to_json()
            for p in pythons
        ]
        if profile.exists()
        else [],
        "prefix_root": str(options.prefix_root),
        "installed": installed_versions(options.prefix_root),
        "current": host.installed_link_target(current_link),
        "prefix": {"path": str(options.prefix), "version": explicit.version if explicit else None}
        if options.prefix
        else None,
        "profile_file": {
            "path": str(profile),
            "present": profile.exists(),
            "managed": _managed(profile),
        },
    }


def _managed(path: Path) -> bool:
    try:
        return "Managed by sqlite-provision" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def render_status(data: Dict[str, Any]) -> str:
    tools = data["tools"]
    lines = [
        "OS:            {} ({}{})".format(
            data["os"]["name"],
            data["os"]["id"],
            ", RHEL family" if data["os"]["rhel_family"] else "",
        ),
        "root:          {}".format("yes" if data["root"] else "no"),
        "build tools:   "
        + ", ".join(
            "{} {}".format(name, "yes" if tools[name] else "missing") for name in sorted(tools)
        ),
        "system SQLite: {} {}".format(
            data["system_sqlite"]["version"] or "?", data["system_sqlite"]["path"] or "(not found)"
        ),
    ]
    for py in data["pythons"]:
        lines.append(
            "python:        {} (Python {}) loads SQLite {} from {} (without our environment)".format(
                py["python"], py["python_version"], py["sqlite_version"], py["library"]
            )
        )
    for py in data["pythons_with_profile"]:
        lines.append(
            "               ... and SQLite {} from {} after sourcing the snippet".format(
                py["sqlite_version"], py["library"]
            )
        )
    installed = ", ".join(row["version"] for row in data["installed"]) or "none"
    lines.append("installed:     {} under {}".format(installed, data["prefix_root"]))
    for row in data["installed"]:
        if row["features"]:
            lines.append(f"  {row['version']} built with:")
            for option, origin in row["features"]:
                lines.append(f"    {option:<28} {origin}")
    lines.append("current:       {}".format(data["current"] or "(no current link)"))
    if data["prefix"]:
        lines.append(
            "prefix:        {} ({})".format(
                data["prefix"]["path"], data["prefix"]["version"] or "not ours"
            )
        )
    profile = data["profile_file"]
    lines.append(
        "profile:       {} ({})".format(
            profile["path"],
            "managed by sqlite-provision"
            if profile["managed"]
            else ("present, not ours" if profile["present"] else "absent"),
        )
    )
    return "\n".join(lines)
