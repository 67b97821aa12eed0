"""The known SQLite releases (the packaged catalog) and the download page's product data.

Facts used here come from sqlite.org (release dates, tarball names, the download page's
machine-readable block, the SHA3-256 values it publishes) and from independent packagers
(sha256 values); see scripts/build_catalog.py, which generates data/releases.csv.

Stdlib only: the CLI imports this module on every run, so it must import fast.
"""

import csv
import io
import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

from sqlite_provision.errors import DownloadError, ProvisionError, UsageError
from sqlite_provision.files import package_data
from sqlite_provision.versions import (
    is_version,
    parse_version,
    shown,
    version_from_tarball_name,
    version_to_number,
)

DEFAULT_BASE_URL = "https://www.sqlite.org"

DATA_RESOURCE = "data/releases.csv"

# sqlite.org: the first line of the HTML comment that holds the download page's CSV.
DOWNLOAD_BLOCK_TITLE = "Download product data for scripts to read"

_RELATIVE_URL_RE = re.compile(r"([0-9]{4})/sqlite-autoconf-3[0-9]{6}\.tar\.gz")
_ISO_DATE_RE = re.compile(r"([0-9]{4})-[0-9]{2}-[0-9]{2}")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")

_OVERRIDE_HINT = "for another release pass --url with --sha3-256/--sha256"


@dataclass(frozen=True)
class Release:
    version: str
    released: str
    sha3_256: Optional[str] = None
    sha256: Optional[str] = None
    withdrawn: bool = False
    note: str = ""
    relative_url: Optional[str] = None

    @property
    def number(self) -> str:
        return version_to_number(self.version)

    @property
    def tarball_name(self) -> str:
        return f"sqlite-autoconf-{self.number}.tar.gz"

    @property
    def year(self) -> int:
        # sqlite.org files a tarball under the calendar year of its release date
        # (3.37.1 of 2021-12-30 is under /2021/, 3.37.2 of 2022-01-06 under /2022/).
        match = _ISO_DATE_RE.fullmatch(self.released)
        if match is None and self.relative_url is not None:
            match = _RELATIVE_URL_RE.fullmatch(self.relative_url)
        if match is None:
            raise UsageError(
                f"the release year of SQLite {self.version} is unknown, so its download URL is too",
                hint=_OVERRIDE_HINT,
            )
        return int(match.group(1))

    @property
    def relative_path(self) -> str:
        if self.relative_url:
            return self.relative_url
        return f"{self.year}/{self.tarball_name}"

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        return base_url.rstrip("/") + "/" + self.relative_path

    @property
    def key(self) -> Tuple[int, ...]:
        return parse_version(self.version)


_catalog: Optional[List[Release]] = None
_by_key: Dict[Tuple[int, ...], Release] = {}


def _catalog_text() -> str:
    return package_data(DATA_RESOURCE).decode("utf-8")


def _read_catalog(text: str) -> List[Release]:
    releases: List[Release] = []
    for row in csv.DictReader(io.StringIO(text, newline="")):
        try:
            parse_version(row["version"])
        except (UsageError, KeyError):
            raise ProvisionError(
                f"the packaged release catalog {DATA_RESOURCE} is corrupt (row {row!r}); "
                "reinstall sqlite-provision"
            ) from None
        releases.append(
            Release(
                version=row["version"],
                released=row.get("released") or "",
                sha3_256=row.get("sha3_256") or None,
                sha256=row.get("sha256") or None,
                withdrawn=row.get("withdrawn") == "1",
                note=row.get("note") or "",
            )
        )
    releases.sort(key=lambda release: release.key, reverse=True)
    return releases


def load_catalog() -> List[Release]:
    """All known releases, newest first. The file is read once per process."""
    global _catalog
    if _catalog is None:
        releases = _read_catalog(_catalog_text())
        _by_key.clear()
        _by_key.update((release.key, release) for release in releases)
        _catalog = releases
    return list(_catalog)


def find_release(version: str) -> Optional[Release]:
    """The catalog entry for `version`, or None (also for text that is not a version)."""
    try:
        key = parse_version(version)
    except UsageError:
        return None
    load_catalog()
    return _by_key.get(key)


def default_release() -> Release:
    """The newest release that was not withdrawn upstream."""
    for release in load_catalog():
        if not release.withdrawn:
            return release
    raise ProvisionError("the packaged release catalog lists no usable release")


def resolve_version(text: str, allow_withdrawn: bool) -> Release:
    """The catalog entry for a user-given version; UsageError if unknown or withdrawn."""
    parse_version(text)
    release = find_release(text)
    if release is None:
        raise UsageError(
            f"unknown SQLite version {text}; `sqlite-provision versions` lists the known ones; "
            f"{_OVERRIDE_HINT}"
        )
    if release.withdrawn and not allow_withdrawn:
        replacement = default_release()
        reason = withdrawal_reason(release.note)
        raise UsageError(
            f"SQLite {release.version} was withdrawn upstream"
            + (f" ({reason})" if reason else "")
            + f"; use {replacement.version} instead",
            hint=f"ask for {replacement.version} (the newest release), "
            f"or pass --allow-withdrawn to build {release.version} anyway",
        )
    return release


_WITHDRAWN_WORDS = re.compile(r"\s*\bwithdrawn\b(\s+upstream\b)?", re.IGNORECASE)


def withdrawal_reason(note: str) -> str:
    """A withdrawn release's catalog note as the reason, without saying "withdrawn" again (the
    message says it once): 'WITHDRAWN upstream ("Due to ... withdrawn")' -> '"Due to ..."'."""
    reason = _WITHDRAWN_WORDS.sub("", note).strip(" ;,")
    if reason.startswith("(") and reason.endswith(")") and "(" not in reason[1:-1]:
        reason = reason[1:-1].strip()
    return reason


def preferred_checksum(release: Release) -> Optional[Tuple[str, str]]:
    """("sha3_256", hex) when sqlite.org's own hash is known, else ("sha256", hex), else None.

    None means no hash is known: the caller must demand one from the user (fail closed).
    """
    if release.sha3_256:
        return ("sha3_256", release.sha3_256)
    if release.sha256:
        return ("sha256", release.sha256)
    return None


# ---------------------------------------------------------------------------------------------
# The download page


def _comment_bodies(html: str) -> List[str]:
    """The text of each complete <!-- ... --> comment, in order (linear time)."""
    bodies: List[str] = []
    pos = 0
    while True:
        start = html.find("<!--", pos)
        if start < 0:
            break
        end = html.find("-->", start + 4)
        if end < 0:
            break
        bodies.append(html[start + 4 : end])
        pos = end + 3
    return bodies


def _download_block(html: str) -> Optional[List[str]]:
    """The lines after the title line of the product-data comment, or None."""
    for body in _comment_bodies(html):
        lines = body.lstrip().splitlines()
        if lines and lines[0].strip() == DOWNLOAD_BLOCK_TITLE:
            return lines[1:]
    return None


def _csv_rows(lines: List[str]) -> List[List[str]]:
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(lines)]
    except csv.Error as exc:
        raise DownloadError(
            f"the download page's product data is not valid CSV: {exc}",
            hint=_OVERRIDE_HINT,
        ) from None


@dataclass(frozen=True)
class _Columns:
    """Where VERSION, RELATIVE-URL and SHA3-HASH stand in the product data's rows."""

    version: int
    relative_url: int
    sha3: int


def _product_table(html: str) -> Tuple[_Columns, List[List[str]]]:
    """The product data's column places and its rows after the header; DownloadError when
    the page has no product data or its header is not the one expected."""
    if not isinstance(html, str):
        raise DownloadError("the download page is not text", hint=_OVERRIDE_HINT)
    lines = _download_block(html)
    if lines is None:
        raise DownloadError(
            f"the download page has no '{DOWNLOAD_BLOCK_TITLE}' block; "
            "sqlite.org may have changed its layout",
            hint=_OVERRIDE_HINT,
        )
    rows = [row for row in _csv_rows(lines) if any(row)]
    header = rows[0] if rows else []
    needed = ("VERSION", "RELATIVE-URL", "SHA3-HASH")
    if not header or header[0] != "PRODUCT" or any(name not in header for name in needed):
        raise DownloadError(
            "the download page's product data has an unexpected header {}; expected "
            "PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES,SHA3-HASH".format(shown(",".join(header))),
            hint=_OVERRIDE_HINT,
        )
    columns = _Columns(
        version=header.index("VERSION"),
        relative_url=header.index("RELATIVE-URL"),
        sha3=header.index("SHA3-HASH"),
    )
    return columns, rows[1:]


def _autoconf_release(row: List[str], columns: _Columns) -> Optional[Release]:
    """The sqlite-autoconf release a product row announces; None for any other product (a
    snapshot, the amalgamation, tools, docs); DownloadError for a row that contradicts itself."""
    if row[0] != "PRODUCT" or len(row) <= max(columns.version, columns.relative_url):
        return None
    version = row[columns.version]
    if not is_version(version):
        return None  # a snapshot row: its VERSION is a timestamp such as "2023-05-02 16:34 UTC"
    relative_url = row[columns.relative_url]
    name_version = version_from_tarball_name(relative_url.rsplit("/", 1)[-1])
    if name_version is None:
        return None  # amalgamation, tools, docs, ...
    if name_version != version:
        raise DownloadError(
            f"the download page lists {shown(relative_url)} as version {version}, "
            f"but its name says {name_version}",
            hint=_OVERRIDE_HINT,
        )
    if not _RELATIVE_URL_RE.fullmatch(relative_url):
        raise DownloadError(
            f"the download page's RELATIVE-URL {shown(relative_url)} is not of the form "
            "YYYY/sqlite-autoconf-NNNNNNN.tar.gz",
            hint=_OVERRIDE_HINT,
        )
    sha3 = row[columns.sha3] if len(row) > columns.sha3 else ""
    if not _HEX64_RE.fullmatch(sha3):
        raise DownloadError(
            f"the download page's SHA3-HASH for {relative_url} is {shown(sha3)}, not 64 hex digits",
            hint=_OVERRIDE_HINT,
        )
    return Release(version=version, released="", sha3_256=sha3.lower(), relative_url=relative_url)


def _the_only_release(found: List[Release]) -> Release:
    """The one sqlite-autoconf release the page announces (the same row may repeat);
    DownloadError for none, or for several that differ."""
    if not found:
        raise DownloadError(
            "the download page's product data has no sqlite-autoconf-NNNNNNN.tar.gz row",
            hint=_OVERRIDE_HINT,
        )
    if any(other != found[0] for other in found[1:]):
        raise DownloadError(
            "the download page lists several sqlite-autoconf tarballs ({}); refusing to "
            "guess".format(", ".join(sorted({r.relative_path for r in found}))),
            hint=_OVERRIDE_HINT,
        )
    return found[0]


def _checked_against_catalog(page: Release) -> Release:
    """The page's release, completed from the packaged catalog when it knows the version;
    DownloadError when the two disagree on the SHA3-256."""
    known = find_release(page.version)
    if known is None:
        return page
    if known.sha3_256 is not None and known.sha3_256 != page.sha3_256:
        raise DownloadError(
            f"the download page gives SHA3-256 {page.sha3_256} for SQLite {page.version}, "
            f"but the built-in catalog has {known.sha3_256}: the page or the connection "
            "was tampered with, or a mirror is stale",
            hint="check the network path to sqlite.org; " + _OVERRIDE_HINT,
        )
    return replace(known, sha3_256=page.sha3_256, relative_url=page.relative_url)


def parse_download_page(html: str) -> Release:
    """The current sqlite-autoconf release announced by sqlite.org's download.html.

    The page has an HTML comment whose first line is DOWNLOAD_BLOCK_TITLE, followed by CSV
    with the header PRODUCT,VERSION,RELATIVE-URL,SIZE-IN-BYTES,SHA3-HASH (columns may be added
    on the right). Raises DownloadError, and only ProvisionError subclasses, for any input.
    """
    columns, rows = _product_table(html)
    found = [
        release
        for release in (_autoconf_release(row, columns) for row in rows)
        if release is not None
    ]
    return _checked_against_catalog(_the_only_release(found))
