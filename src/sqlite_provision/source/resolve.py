"""Which tarball to build, from where, and which checksum it must match (fail closed)."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlparse

from sqlite_provision.config import LATEST, Options
from sqlite_provision.digests import Checksum
from sqlite_provision.errors import ChecksumError, UsageError
from sqlite_provision.source import catalog
from sqlite_provision.source.catalog import Release
from sqlite_provision.source.fetch import RefusedRequest
from sqlite_provision.versions import Version, parse_version, version_from_tarball_name


@dataclass(frozen=True)
class Source:
    version: str  # "3.44.2", or "latest" while unresolved (only in --dry-run)
    filename: str  # sqlite-autoconf-3440200.tar.gz
    url: Optional[str]  # None for --tarball
    local: Optional[Path]  # the --tarball file
    checksum: Optional[Checksum]  # None only while "latest" is unresolved
    origin: str  # where the version and hash came from, for humans

    @property
    def version_known(self) -> bool:
        return self.version != LATEST

    @property
    def version_key(self) -> Version:
        return parse_version(self.version) if self.version_known else (9999,)


def base_url(options: Options, env_mirror: Optional[str] = None) -> str:
    """--mirror, else $SQLITE_PROVISION_MIRROR (config.Environment.mirror), else sqlite.org."""
    return (options.mirror or env_mirror or catalog.DEFAULT_BASE_URL).rstrip("/")


def user_checksum(options: Options) -> Optional[Checksum]:
    """--sha3-256 or --sha256, already validated (config.validate)."""
    if options.sha3_256 is not None:
        return Checksum("sha3_256", options.sha3_256)
    if options.sha256 is not None:
        return Checksum("sha256", options.sha256)
    return None


def release_checksum(release: Optional[Release]) -> Optional[Checksum]:
    if release is None:
        return None
    known = catalog.preferred_checksum(release)
    return Checksum(known[0], known[1]) if known else None


def require_checksum(
    checksum: Optional[Checksum], what: str, version: Optional[str] = None
) -> Checksum:
    if checksum is None:
        raise ChecksumError(
            "no known checksum for {}{}; refusing to build an unverified tarball".format(
                what, f" ({version})" if version else ""
            ),
            hint="pass --sha3-256 HEX (sqlite.org publishes it on its download page) or --sha256 HEX",
        )
    return checksum


def check_withdrawn(release: Optional[Release], options: Options) -> None:
    if release is not None and release.withdrawn and not options.allow_withdrawn:
        # resolve_version words the refusal; calling it keeps one message for every path.
        catalog.resolve_version(release.version, allow_withdrawn=False)


def version_for_file(name: str, options: Options, what: str) -> str:
    from_name = version_from_tarball_name(name)
    if from_name:
        if options.version and options.version not in (from_name, LATEST):
            raise UsageError(
                f"--version {options.version} disagrees with {what} {name}",
                hint="drop --version, or rename the file",
            )
        return from_name
    if options.version and options.version != LATEST:
        return options.version
    raise UsageError(
        f"cannot tell the SQLite version of {what} {name}",
        hint="name it sqlite-autoconf-XXXXXXX.tar.gz or pass --version X.Y.Z",
    )


def resolve_source(options: Options, env_mirror: Optional[str] = None) -> Source:
    """Everything that needs no network. `latest` stays a placeholder here."""
    if options.tarball is not None:
        return named_file_source(options, options.tarball.name, "--tarball", local=options.tarball)
    if options.url is not None:
        name = os.path.basename(urlparse(options.url).path)
        return named_file_source(options, name, "--url", url=options.url)
    if options.version == LATEST:
        return Source(
            version=LATEST,
            filename="sqlite-autoconf-(latest).tar.gz",
            url=base_url(options, env_mirror) + "/download.html",
            local=None,
            checksum=user_checksum(options),
            origin="the download page, read at run time",
        )
    release = (
        catalog.resolve_version(options.version, options.allow_withdrawn)
        if options.version
        else catalog.default_release()
    )
    return from_release(release, options, "catalog", env_mirror)


def named_file_source(
    options: Options,
    name: str,
    what: str,
    local: Optional[Path] = None,
    url: Optional[str] = None,
) -> Source:
    """A --tarball or --url: the version from its name (or --version), the hash from the user
    or, when the name is a catalog release, from the catalog."""
    version = version_for_file(name, options, what)
    release = catalog.find_release(version)
    check_withdrawn(release, options)
    checksum = user_checksum(options) or release_checksum(release)
    return Source(
        version=version,
        filename=name,
        url=url,
        local=local,
        checksum=require_checksum(checksum, str(local or url), version),
        origin=what,
    )


def from_release(
    release: Release, options: Options, origin: str, env_mirror: Optional[str] = None
) -> Source:
    checksum = user_checksum(options) or release_checksum(release)
    return Source(
        version=release.version,
        filename=release.tarball_name,
        url=release.url(base_url(options, env_mirror)),
        local=None,
        checksum=require_checksum(checksum, release.tarball_name, release.version),
        origin=origin,
    )


def resolve_latest(
    options: Options, fetch_text: Callable[[str], str], env_mirror: Optional[str] = None
) -> Source:
    page_url = base_url(options, env_mirror) + "/download.html"
    try:
        page = fetch_text(page_url)
    except RefusedRequest as exc:  # $SQLITE_PROVISION_MIRROR is no http(s) URL
        raise UsageError(exc.message, hint=exc.hint) from None
    release = catalog.parse_download_page(page)
    check_withdrawn(release, options)
    return from_release(release, options, f"download page {page_url}", env_mirror)
