#!/usr/bin/env python3
# Typing style: typing.Optional/List/Tuple, because the tool supports Python 3.7.
"""Generate src/sqlite_provision/data/releases.csv from the shared release reference.

Usage (from the repository root):

    python scripts/build_catalog.py [SOURCE_CSV] [--output PATH]

SOURCE_CSV defaults to ../shared/reference/sqlite-releases.csv relative to the repository
root. The script refuses to write anything if a single row fails validation: a wrong hash in
the catalog would make the tool "verify" a tarball against the wrong value, so it is better
to stop the build of the catalog than to ship it.

Stdlib only, deliberately independent of sqlite_provision.catalog, so that the unit tests
cross-check two implementations of the version and URL rules.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "reference" / "sqlite-releases.csv"
DEFAULT_OUTPUT = REPO_ROOT / "src" / "sqlite_provision" / "data" / "releases.csv"

OUTPUT_COLUMNS = ("version", "released", "sha3_256", "sha256", "withdrawn", "note")
SOURCE_COLUMNS = ("version", "released", "url", "sha256", "sha3_256", "withdrawn", "note")

_VERSION_RE = re.compile(r"3\.(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)(?:\.([1-9][0-9]?))?")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")

# Values that circulate for these releases but are wrong (shared/reference/README.md): the
# first is simply wrong, the other two are the sqlite.org SHA3-256 recorded as a sha256.
KNOWN_WRONG_SHA256_PREFIXES: Dict[str, str] = {
    "3.51.0": "2c37c3678df7",
    "3.51.2": "e0f7ae1c",
    "3.53.1": "36ca1436",
}

_WITHDRAWN_VALUES = {"": "", "yes": "1", "1": "1"}


class CatalogSourceError(Exception):
    """The source CSV failed validation; nothing was written."""


def version_key(version: str) -> Tuple[int, ...]:
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise CatalogSourceError(f"bad version {version!r}: expected 3.X.Y or 3.X.Y.Z")
    return (3, *tuple(int(part) for part in match.groups() if part is not None))


def tarball_number(version: str) -> str:
    parts = version_key(version)[1:]
    minor, patch = parts[0], parts[1]
    branch = parts[2] if len(parts) > 2 else 0
    return f"3{minor:02d}{patch:02d}{branch:02d}"


def expected_url(version: str, released: str) -> str:
    # sqlite.org files each tarball under the calendar year of its release date.
    return f"https://www.sqlite.org/{released[:4]}/sqlite-autoconf-{tarball_number(version)}.tar.gz"


def _check_hash(where: str, column: str, value: str) -> None:
    if value and not _HEX64_RE.fullmatch(value):
        raise CatalogSourceError(f"{where}: {column} {value!r} is not 64 lowercase hex digits")


def validate_row(row: Dict[str, str], line: int) -> Dict[str, str]:
    """Return the output row for one source row, or raise CatalogSourceError."""
    where = f"line {line}"
    cells = {name: (row.get(name) or "").strip() for name in SOURCE_COLUMNS}
    version = cells["version"]
    try:
        version_key(version)
    except CatalogSourceError as exc:
        raise CatalogSourceError(f"{where}: {exc}") from None
    where = f"{where} ({version})"

    released = cells["released"]
    try:
        datetime.date.fromisoformat(released)
    except ValueError:
        raise CatalogSourceError(
            f"{where}: released {released!r} is not an ISO date YYYY-MM-DD"
        ) from None

    want = expected_url(version, released)
    if cells["url"] != want:
        raise CatalogSourceError(
            "{}: url {!r} should be {!r} (year directory = year of the release date)".format(
                where, cells["url"], want
            )
        )

    sha256, sha3 = cells["sha256"], cells["sha3_256"]
    _check_hash(where, "sha256", sha256)
    _check_hash(where, "sha3_256", sha3)
    if sha256 and sha256 == sha3:
        raise CatalogSourceError(
            f"{where}: sha256 equals the sha3_256; that is the SHA3-256 recorded as a sha256"
        )
    wrong = KNOWN_WRONG_SHA256_PREFIXES.get(version)
    if wrong is not None and sha256.startswith(wrong):
        raise CatalogSourceError(
            f"{where}: sha256 {sha256} is a known-wrong value that circulates for this release"
        )

    withdrawn = cells["withdrawn"].lower()
    if withdrawn not in _WITHDRAWN_VALUES:
        raise CatalogSourceError(
            "{}: withdrawn must be empty or 'yes', not {!r}".format(where, cells["withdrawn"])
        )

    return {
        "version": version,
        "released": released,
        "sha3_256": sha3,
        "sha256": sha256,
        "withdrawn": _WITHDRAWN_VALUES[withdrawn],
        "note": cells["note"],
    }


def read_source(source: Path) -> List[Dict[str, str]]:
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in SOURCE_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise CatalogSourceError("{}: missing column(s) {}".format(source, ", ".join(missing)))
        rows: List[Dict[str, str]] = []
        seen: Dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            out = validate_row(row, line)
            if out["version"] in seen:
                raise CatalogSourceError(
                    "line {}: {} is already on line {}".format(
                        line, out["version"], seen[out["version"]]
                    )
                )
            seen[out["version"]] = line
            rows.append(out)
    if not rows:
        raise CatalogSourceError(f"{source}: no releases")
    rows.sort(key=lambda r: version_key(r["version"]), reverse=True)
    return rows


def write_catalog(rows: Sequence[Dict[str, str]], output: Path) -> None:
    """Write atomically, so that a failed run never leaves half a catalog behind."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".releases-", suffix=".csv", dir=str(output.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=OUTPUT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600; the wheel must ship it readable
        os.replace(tmp_name, str(output))
    except BaseException:
        os.unlink(tmp_name)
        raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help="the shared release CSV (default: ../shared/reference/sqlite-releases.csv)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the catalog (default: src/sqlite_provision/data/releases.csv)",
    )
    args = parser.parse_args(argv)
    try:
        rows = read_source(args.source)
    except (CatalogSourceError, OSError) as exc:
        print(f"build_catalog: {exc}; nothing written", file=sys.stderr)
        return 1
    write_catalog(rows, args.output)
    print(f"build_catalog: wrote {len(rows)} releases to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
