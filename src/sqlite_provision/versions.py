"""SQLite version text: its one valid form, and the tarball number it is packed into.

Facts from sqlite.org: for 3.X.Y the tarball is sqlite-autoconf-3XXYY00.tar.gz (3.39.2 ->
3390200), a branch release 3.X.Y.Z gives 3XXYYZZ. This is not SQLITE_VERSION_NUMBER, which is
X*1000000 + Y*1000 + Z.

Stdlib only, and no annotations newer than Python 3.6: every layer uses it.
"""

import re
from typing import Optional, Tuple

from sqlite_provision.errors import UsageError

# 3.X.Y or 3.X.Y.Z. Each part fits in two digits because the tarball name packs them into
# 3XXYYZZ; no leading zeros, so the text is canonical and "3.08.0" cannot alias "3.8.0".
# A branch release's fourth part starts at 1 ("3.8.11.0" would alias "3.8.11").
_VERSION_RE = re.compile(r"3\.(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)(?:\.([1-9][0-9]?))?")
_NUMBER_RE = re.compile(r"3([0-9]{2})([0-9]{2})([0-9]{2})")
_TARBALL_RE = re.compile(r"sqlite-autoconf-(3[0-9]{6})\.tar\.gz")

VERSION_FORM = "3.X.Y or 3.X.Y.Z (digits only, e.g. 3.53.4)"

Version = Tuple[int, ...]


def shown(text: str, limit: int = 60) -> str:
    """repr() of user text for a message, cut short so a pasted blob does not flood it."""
    if len(text) > limit:
        return repr(text[:limit]) + "..."
    return repr(text)


def parse_version(text: str) -> Version:
    """Parse "3.44.2" -> (3, 44, 2), "3.8.11.1" -> (3, 8, 11, 1); anything else: UsageError."""
    if not isinstance(text, str):
        raise UsageError(f"invalid SQLite version {text!r}: expected {VERSION_FORM}")
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise UsageError(f"invalid SQLite version {shown(text)}: expected {VERSION_FORM}")
    return (3, *tuple(int(part) for part in match.groups() if part is not None))


def is_version(text: str) -> bool:
    return _VERSION_RE.fullmatch(text) is not None


def loose_version(text: str) -> Version:
    """A version some program reported ("3.7.17", "3.46.1"), for comparisons; () if unreadable."""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def version_to_number(version: str) -> str:
    """The tarball's number: "3.39.2" -> "3390200", "3.8.11.1" -> "3081101"."""
    parts = parse_version(version)
    branch = parts[3] if len(parts) > 3 else 0
    return f"3{parts[1]:02d}{parts[2]:02d}{branch:02d}"


def number_to_version(number: str) -> str:
    """The inverse of version_to_number: "3390200" -> "3.39.2", "3081101" -> "3.8.11.1"."""
    match = _NUMBER_RE.fullmatch(number) if isinstance(number, str) else None
    if match is None:
        raise UsageError(
            f"invalid SQLite tarball number {shown(str(number))}: expected 3XXYYZZ, e.g. 3530400"
        )
    minor, patch, branch = (int(part) for part in match.groups())
    if branch:
        return f"3.{minor}.{patch}.{branch}"
    return f"3.{minor}.{patch}"


def version_from_tarball_name(name: str) -> Optional[str]:
    """The version of "sqlite-autoconf-3440200.tar.gz" ("3.44.2"); None for any other name."""
    match = _TARBALL_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        return None
    return number_to_version(match.group(1))
